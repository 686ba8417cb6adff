package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// A minimal RFC 6455 WebSocket client, just enough to speak the Chrome DevTools
// protocol to a browser on loopback without a dependency: no extensions, no TLS.

const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA

	wsGUID         = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" // RFC 6455, section 1.3
	wsMaxMessage   = 64 << 20                               // a guard against a corrupt length, far above any CDP reply
	wsWriteTimeout = 10 * time.Second                       // a browser that stops reading is hung
)

// wsConn is a client WebSocket connection. readMessage must be called from one goroutine
// at a time; writes may come from any goroutine.
type wsConn struct {
	conn net.Conn
	br   *bufio.Reader
	wmu  sync.Mutex // one frame at a time on the wire: callers and the reader (pong, close) both write
}

// dialWebSocket opens a ws:// URL. ctx bounds the dial and the handshake only.
func dialWebSocket(ctx context.Context, rawURL string) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("websocket: unsupported scheme in %q", rawURL)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("websocket: %w", err)
	}
	// A cancelled ctx interrupts a handshake the server never answers.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}

	var nonce [16]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n"
	fail := func(err error) (*wsConn, error) {
		_ = conn.Close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("websocket handshake with %s: %w", u.Host, err)
	}
	if _, err := io.WriteString(conn, req); err != nil {
		return fail(err)
	}
	br := bufio.NewReader(conn)
	// A 101 response has no body, so ReadResponse leaves the first frames in br.
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return fail(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fail(fmt.Errorf("status %s", resp.Status))
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return fail(fmt.Errorf("upgrade header %q", resp.Header.Get("Upgrade")))
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		return fail(fmt.Errorf("Sec-WebSocket-Accept %q, want %q", got, want))
	}
	if !stop() {
		return fail(ctx.Err()) // the deadline was already set to the past
	}
	_ = conn.SetDeadline(time.Time{})
	return &wsConn{conn: conn, br: br}, nil
}

// writeFrame sends one final frame. Client frames are always masked (RFC 6455, 5.3).
func (c *wsConn) writeFrame(op byte, payload []byte) error {
	n := len(payload)
	frame := make([]byte, 0, 14+n)
	frame = append(frame, 0x80|op) // FIN
	switch {
	case n < 126:
		frame = append(frame, 0x80|byte(n))
	case n <= 0xFFFF:
		frame = append(frame, 0x80|126)
		frame = binary.BigEndian.AppendUint16(frame, uint16(n))
	default:
		frame = append(frame, 0x80|127)
		frame = binary.BigEndian.AppendUint64(frame, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i&3])
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	_, err := c.conn.Write(frame)
	return err
}

func (c *wsConn) writeText(msg []byte) error { return c.writeFrame(wsText, msg) }

// readFrame reads one frame from the server, which never masks.
func (c *wsConn) readFrame() (fin bool, op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return false, 0, nil, err
	}
	fin, op = hdr[0]&0x80 != 0, hdr[0]&0x0F
	if hdr[0]&0x70 != 0 {
		return false, 0, nil, errors.New("websocket: reserved bits set, but no extension was negotiated")
	}
	if hdr[1]&0x80 != 0 {
		return false, 0, nil, errors.New("websocket: masked frame from the server")
	}
	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return false, 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return false, 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > wsMaxMessage {
		return false, 0, nil, fmt.Errorf("websocket: frame of %d bytes", n)
	}
	if op >= wsClose && (!fin || n > 125) {
		return false, 0, nil, errors.New("websocket: fragmented or oversized control frame")
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return false, 0, nil, err
	}
	return fin, op, payload, nil
}

// errWSClosed is what readMessage returns after the server's close frame.
var errWSClosed = errors.New("websocket: closed by the server")

// readMessage returns the next complete text or binary message, joining continuation
// frames and answering the control frames that may come between them.
func (c *wsConn) readMessage() ([]byte, error) {
	var msg []byte
	inMessage := false
	for {
		fin, op, payload, err := c.readFrame()
		if err != nil {
			return nil, err
		}
		switch op {
		case wsPing:
			if err := c.writeFrame(wsPong, payload); err != nil {
				return nil, err
			}
			continue
		case wsPong:
			continue
		case wsClose:
			// Echo the status code, as the protocol asks, then report the end.
			if len(payload) > 2 {
				payload = payload[:2]
			}
			_ = c.writeFrame(wsClose, payload)
			return nil, errWSClosed
		case wsText, wsBinary:
			if inMessage {
				return nil, errors.New("websocket: new message before the last one ended")
			}
			msg, inMessage = payload, true
		case wsContinuation:
			if !inMessage {
				return nil, errors.New("websocket: continuation frame outside a message")
			}
			if len(msg)+len(payload) > wsMaxMessage {
				return nil, fmt.Errorf("websocket: message over %d bytes", wsMaxMessage)
			}
			msg = append(msg, payload...)
		default:
			return nil, fmt.Errorf("websocket: unknown opcode %#x", op)
		}
		if fin {
			return msg, nil
		}
	}
}

// close sends a normal-closure frame (best effort) and closes the connection, which ends
// a readMessage in progress.
func (c *wsConn) close() error {
	_ = c.writeFrame(wsClose, []byte{0x03, 0xE8}) // 1000: normal closure
	return c.conn.Close()
}
