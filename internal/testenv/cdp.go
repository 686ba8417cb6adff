package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// cdpMessage is every message of the Chrome DevTools protocol: a command we send (ID,
// Method, Params), its response (ID, Result or Error) or an event (Method, Params). With
// flattened sessions, commands and events of an attached target carry its SessionID.
type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *cdpError       `json:"error,omitempty"`
}

// cdpError is an error the browser answered a command with.
type cdpError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data,omitempty"`
}

func (e *cdpError) Error() string {
	if e.Data != "" {
		return fmt.Sprintf("%s (%s, code %d)", e.Message, e.Data, e.Code)
	}
	return fmt.Sprintf("%s (code %d)", e.Message, e.Code)
}

// cdpHandler receives the events of one session. It runs on the reader goroutine, so it
// must not block and must not send commands (their responses would wait behind it).
type cdpHandler func(method string, params json.RawMessage)

// cdpConn is one DevTools connection to the browser. A single reader goroutine matches
// responses to callers by id and hands events to the handler of their session; it ends
// when the connection does.
type cdpConn struct {
	ws   *wsConn
	done chan struct{} // closed when the reader has ended; err is set by then

	mu       sync.Mutex
	nextID   int64
	pending  map[int64]chan *cdpMessage
	handlers map[string]cdpHandler // by session id
	err      error                 // why the connection ended
}

func newCDPConn(ws *wsConn) *cdpConn {
	c := &cdpConn{
		ws:       ws,
		done:     make(chan struct{}),
		pending:  make(map[int64]chan *cdpMessage),
		handlers: make(map[string]cdpHandler),
	}
	go c.read()
	return c
}

func (c *cdpConn) read() {
	var err error
	for {
		var data []byte
		if data, err = c.ws.readMessage(); err != nil {
			break
		}
		var m cdpMessage
		if err = json.Unmarshal(data, &m); err != nil {
			err = fmt.Errorf("bad devtools message %.200q: %w", data, err)
			break
		}
		c.mu.Lock()
		if m.ID != 0 {
			ch := c.pending[m.ID]
			delete(c.pending, m.ID)
			c.mu.Unlock()
			if ch != nil { // else its caller gave up
				ch <- &m // buffered
			}
			continue
		}
		h := c.handlers[m.SessionID]
		c.mu.Unlock()
		if h != nil && m.Method != "" {
			h(m.Method, m.Params)
		}
	}
	_ = c.ws.conn.Close()
	c.mu.Lock()
	c.err = fmt.Errorf("devtools connection ended: %w", err)
	c.mu.Unlock()
	close(c.done)
}

// call sends method to the browser (sessionID "") or to an attached target and decodes
// the result into result, unless it is nil.
func (c *cdpConn) call(ctx context.Context, sessionID, method string, params, result any) error {
	msg := cdpMessage{Method: method, SessionID: sessionID}
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		msg.Params = b
	}
	ch := make(chan *cdpMessage, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("%s: %w", method, err)
	}
	c.nextID++
	msg.ID = c.nextID
	c.pending[msg.ID] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, msg.ID)
		c.mu.Unlock()
	}

	data, err := json.Marshal(msg)
	if err == nil {
		err = c.ws.writeText(data)
	}
	if err != nil {
		forget()
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case resp := <-ch:
		if resp.Error != nil {
			return fmt.Errorf("%s: %w", method, resp.Error)
		}
		if result != nil {
			if err := json.Unmarshal(resp.Result, result); err != nil {
				return fmt.Errorf("%s: decode result: %w", method, err)
			}
		}
		return nil
	case <-ctx.Done():
		forget()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	case <-c.done:
		return fmt.Errorf("%s: %w", method, c.err)
	}
}

// handle routes the events of sessionID to h (nil removes the route).
func (c *cdpConn) handle(sessionID string, h cdpHandler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h == nil {
		delete(c.handlers, sessionID)
	} else {
		c.handlers[sessionID] = h
	}
}

// close ends the connection and waits for the reader goroutine to finish.
func (c *cdpConn) close() {
	_ = c.ws.close()
	<-c.done
}
