//go:build unix

package testenv

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const counterPage = `<!doctype html>
<html><head><title>loading</title></head>
<body>
<button id="inc" data-role="counter">+1</button> <span id="count">0</span>
<script>
let n = 0;
document.getElementById("inc").addEventListener("click", () => {
	document.getElementById("count").textContent = String(++n);
});
fetch("/greeting").then(r => r.text()).then(t => { document.title = t; });
</script>
</body></html>`

const throwingPage = `<!doctype html>
<html><body><script>
console.error("bad thing", 42);
throw new Error("boom");
</script></body></html>`

func chromiumServer(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, body)
		}
	}
	mux.HandleFunc("GET /{$}", page(counterPage))
	mux.HandleFunc("GET /throws", page(throwingPage))
	mux.HandleFunc("GET /greeting", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond) // so the title changes after the load event
		_, _ = io.WriteString(w, "hello from the server")
	})
	mux.HandleFunc("GET /favicon.ico", http.NotFound)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestChromiumCounterPage(t *testing.T) {
	srv := chromiumServer(t)
	start := time.Now()
	b := StartChromium(t)
	t.Logf("chromium started and connected in %v", time.Since(start))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	start = time.Now()
	p, err := b.Open(ctx, srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("page opened and loaded in %v", time.Since(start))
	if err := p.WaitFor(ctx, `document.title === "hello from the server"`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.Click(ctx, "#inc"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := p.Text(ctx, "#count"); err != nil || got != "2" {
		t.Fatalf("Text(#count) = %q, %v; want 2", got, err)
	}
	if got, err := p.Attr(ctx, "#inc", "data-role"); err != nil || got != "counter" {
		t.Fatalf("Attr(#inc, data-role) = %q, %v; want counter", got, err)
	}
	var sum struct{ A, B int }
	if err := p.Eval(ctx, `Promise.resolve({A: 1 + 1, B: Number(document.getElementById("count").textContent)})`, &sum); err != nil || sum.A != 2 || sum.B != 2 {
		t.Fatalf("Eval = %+v, %v; want {A:2 B:2}", sum, err)
	}

	// Mistakes in a test come back as errors that say what went wrong.
	if err := p.Click(ctx, "#nope"); err == nil || !strings.Contains(err.Error(), "no element matches #nope") {
		t.Errorf("Click(#nope) = %v, want an error naming the selector", err)
	}
	if _, err := p.Attr(ctx, "#inc", "href"); err == nil || !strings.Contains(err.Error(), "no attribute href") {
		t.Errorf("Attr(#inc, href) = %v, want a missing-attribute error", err)
	}
	if err := p.Eval(ctx, `throw new TypeError("oops")`, nil); err == nil || !strings.Contains(err.Error(), "TypeError: oops") {
		t.Errorf("Eval(throw) = %v, want the exception's text", err)
	}
	if err := p.Eval(ctx, `undefined`, new(int)); err == nil {
		t.Error("Eval(undefined) into an int: no error")
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if err := p.WaitFor(short, `document.title === "never"`); err == nil || !strings.Contains(err.Error(), `document.title === "never"`) {
		t.Errorf("WaitFor(never) = %v, want a timeout naming the condition", err)
	}
	if err := p.WaitFor(ctx, `document.title`); err == nil {
		t.Error("WaitFor(non-boolean): no error")
	}

	if errs := p.ConsoleErrors(); len(errs) != 0 {
		t.Errorf("ConsoleErrors = %q, want none", errs)
	}
	t.Logf("whole test in %v", time.Since(start))
}

func TestChromiumConsoleErrors(t *testing.T) {
	srv := chromiumServer(t)
	b := StartChromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p, err := b.Open(ctx, srv.URL+"/throws")
	if err != nil {
		t.Fatal(err)
	}
	// The events come on their own; give them a moment after the load event.
	var errs []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if errs = p.ConsoleErrors(); len(errs) >= 2 {
			break
		}
	}
	all := strings.Join(errs, "\n")
	if len(errs) != 2 || !strings.Contains(all, "console.error: bad thing 42") || !strings.Contains(all, "Error: boom") {
		t.Fatalf("ConsoleErrors = %q, want the console.error and the uncaught Error: boom", errs)
	}
	t.Logf("ConsoleErrors: %q", errs)

	// A second tab of the same browser has errors of its own.
	p2, err := b.Open(ctx, srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	if errs := p2.ConsoleErrors(); len(errs) != 0 {
		t.Errorf("second tab: ConsoleErrors = %q, want none", errs)
	}
	if err := p2.Close(ctx); err != nil {
		t.Error(err)
	}
}

func TestChromiumOpenError(t *testing.T) {
	b := StartChromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	if _, err := b.Open(ctx, "http://"+addr+"/"); err == nil || !strings.Contains(err.Error(), "ERR_CONNECTION_REFUSED") {
		t.Fatalf("Open(closed port) = %v, want ERR_CONNECTION_REFUSED", err)
	}
}

func TestChromiumFind(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	_, act, msg := findChromium(env(EnvChromium, "/nonexistent/chromium"))
	if act != skip || !strings.Contains(msg, "/nonexistent/chromium") || !strings.Contains(msg, "package chromium") ||
		!strings.Contains(msg, "scripts/services.sh") {
		t.Errorf("missing binary: %v %q", act, msg)
	}
	if _, act, _ := findChromium(env(EnvChromium, "/nonexistent/chromium", EnvRequireServices, "1")); act != fail {
		t.Errorf("missing binary with %s=1: %v, want fail", EnvRequireServices, act)
	}
	if p, act, msg := findChromium(env(EnvChromium, "/bin/sh")); act != use || p != "/bin/sh" {
		t.Errorf("%s=/bin/sh: %q %v %q", EnvChromium, p, act, msg)
	}
}

// TestChromiumWebSocket covers what Chromium rarely does: a message in several frames,
// with a ping between them, and a close from the server.
func TestChromiumWebSocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	serverErr := make(chan error, 1)
	go func() {
		serverErr <- func() error {
			conn, err := l.Accept()
			if err != nil {
				return err
			}
			defer func() { _ = conn.Close() }()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			req, err := http.ReadRequest(br)
			if err != nil {
				return err
			}
			sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + wsGUID))
			_, _ = io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(sum[:])+"\r\n\r\n")
			// "hello, " + ping + "world" as text, continuation (FIN); then a close.
			_, _ = conn.Write([]byte{0x01, 7})
			_, _ = io.WriteString(conn, "hello, ")
			_, _ = conn.Write([]byte{0x89, 2, 'h', 'i'})
			_, _ = conn.Write([]byte{0x80, 5})
			_, _ = io.WriteString(conn, "world")
			for _, want := range []byte{wsPong, wsText, wsClose} {
				hdr := make([]byte, 6)
				if _, err := io.ReadFull(br, hdr); err != nil {
					return err
				}
				if hdr[0] != 0x80|want || hdr[1]&0x80 == 0 {
					return fmt.Errorf("frame header %x, want a masked final frame of opcode %#x", hdr[:2], want)
				}
				payload := make([]byte, hdr[1]&0x7F)
				if _, err := io.ReadFull(br, payload); err != nil {
					return err
				}
				for i := range payload {
					payload[i] ^= hdr[2+i&3]
				}
				switch want {
				case wsPong:
					if string(payload) != "hi" {
						return fmt.Errorf("pong payload %q, want hi", payload)
					}
				case wsText:
					if string(payload) != "ok" {
						return fmt.Errorf("text payload %q, want ok", payload)
					}
					_, _ = conn.Write([]byte{0x88, 2, 0x03, 0xE8})
				}
			}
			return nil
		}()
	}()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := dialWebSocket(ctx, "ws://"+l.Addr().String()+"/x")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.conn.Close() }()
	msg, err := c.readMessage()
	if err != nil || string(msg) != "hello, world" {
		t.Fatalf("readMessage = %q, %v; want hello, world", msg, err)
	}
	if err := c.writeText([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.readMessage(); err != errWSClosed {
		t.Fatalf("readMessage after close = %v, want %v", err, errWSClosed)
	}
	if err := <-serverErr; err != nil {
		t.Fatalf("server: %v", err)
	}
}
