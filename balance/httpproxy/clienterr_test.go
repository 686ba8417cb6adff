package httpproxy

// Real-time tests in this file: TestClientGoneMidResponse and
// TestTruncatedBodiesNotChargedToBackends (real clients that hang up on a
// real proxy; they wait for the proxy's Done calls with generous bounds
// and assert no duration).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
)

// clientErrorSetup is three clones behind a Health over a round robin
// that counts ejections, and a sticky proxy on a real loopback server,
// with one sticky cookie per clone.
type clientErrorSetup struct {
	health  *balance.Health
	inner   *ejectionLog
	done    *doneLog
	addr    string       // the proxy's listening address
	cookies []string     // one per clone
	pinned  []string     // the clone each cookie pins to
	client  *http.Client // a client of the proxy's
	url     string
}

func newClientErrorSetup(t *testing.T, hc balance.HealthConfig) *clientErrorSetup {
	cs := clones(t, 3)
	hc.PanicThreshold = 1e-9 // ejections show until every backend is out
	inner := &ejectionLog{RoundRobin: balance.NewRoundRobin(), ejected: map[string]bool{}}
	h, err := balance.NewHealth(inner, hc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	require.NoError(t, h.Update(backendsOf(cs...)))
	p, done := newProxy(t, h, Config{StickyCookie: "lb"})
	url, client := serve(t, p)
	s := &clientErrorSetup{health: h, inner: inner, done: done, addr: strings.TrimPrefix(url, "http://"), client: client, url: url}
	for range cs {
		resp, err := client.Get(url + "/")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		var value string
		for _, c := range resp.Cookies() {
			if c.Name == "lb" {
				value = c.Value
			}
		}
		require.NotEmpty(t, value)
		s.cookies = append(s.cookies, value)
		s.pinned = append(s.pinned, resp.Header.Get("X-Clone"))
	}
	require.ElementsMatch(t, []string{"clone-1", "clone-2", "clone-3"}, s.pinned)
	return s
}

// ejectionLog is a round robin that records the backends Health takes
// out of its set, ejected (in panic mode, Eligible would show every
// backend again once all are ejected).
type ejectionLog struct {
	*balance.RoundRobin
	mu      sync.Mutex
	last    map[string]bool
	ejected map[string]bool
}

func (l *ejectionLog) Update(bs []balance.Backend) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := map[string]bool{}
	for _, b := range bs {
		next[b.Addr] = true
	}
	for addr := range l.last {
		if !next[addr] {
			l.ejected[addr] = true
		}
	}
	l.last = next
	return l.RoundRobin.Update(bs)
}

func (l *ejectionLog) ejections() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ejected)
}

// check fails the test unless every backend is still eligible, every
// cookie still pins to its clone (without a new cookie), and no Done
// call reported a failure.
func (s *clientErrorSetup) check(t *testing.T, what string) {
	t.Helper()
	require.Zero(t, s.inner.ejections(), "%s: backends ejected", what)
	for i, v := range s.cookies {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/", nil)
		req.AddCookie(&http.Cookie{Name: "lb", Value: v})
		resp, err := s.client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, s.pinned[i], resp.Header.Get("X-Clone"), "%s: a sticky client moved", what)
		require.Empty(t, resp.Header.Values("Set-Cookie"), "%s: a sticky client was given a new cookie", what)
	}
	for _, c := range s.done.snapshot() {
		if c.err != nil && !errors.Is(c.err, balance.ErrAborted) {
			t.Fatalf("%s: Done(%v) charged to %s", what, c.err, c.addr)
		}
	}
}

// TestTruncatedBodiesNotChargedToBackends: 1,000 POSTs whose client
// declares a Content-Length and closes the connection after a few bytes,
// spread over the backends, half of them sticky: the broken bodies are
// the clients' fault, so no backend is ejected and no sticky client
// moves.
func TestTruncatedBodiesNotChargedToBackends(t *testing.T) {
	s := newClientErrorSetup(t, balance.HealthConfig{})
	const n = 1000
	for i := range n {
		conn, err := net.Dial("tcp", s.addr)
		require.NoError(t, err)
		cookie := ""
		if i%2 == 0 {
			cookie = "Cookie: lb=" + s.cookies[i/2%len(s.cookies)] + "\r\n"
		}
		_, err = fmt.Fprintf(conn, "POST /headers HTTP/1.1\r\nHost: farm\r\nContent-Length: 1000\r\n%s\r\n0123456789", cookie)
		require.NoError(t, err)
		// Wait for the proxy to have sent the request on (it answers, or
		// waits for the rest of the body), then hang up.
		time.Sleep(100 * time.Microsecond)
		require.NoError(t, conn.Close())
	}
	require.Eventually(t, func() bool { return len(s.done.snapshot()) >= n }, 10*time.Second, 10*time.Millisecond,
		"Done calls: %d", len(s.done.snapshot()))
	t.Logf("%d truncated POSTs: %d of 3 backends ejected", n, s.inner.ejections())
	s.check(t, "after truncated POSTs")
}

// TestClientGoneMidResponse: clients that hang up while a response
// streams are not the backend's fault either, even under a Health that
// ejects on the first failure.
func TestClientGoneMidResponse(t *testing.T) {
	s := newClientErrorSetup(t, balance.HealthConfig{MaxFailures: 1})
	before := len(s.done.snapshot())
	const n = 30
	for i := range n {
		conn, err := net.Dial("tcp", s.addr)
		require.NoError(t, err)
		_, err = fmt.Fprintf(conn, "GET /stream HTTP/1.1\r\nHost: farm\r\nCookie: lb=%s\r\n\r\n", s.cookies[i%len(s.cookies)])
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		_, err = io.ReadFull(resp.Body, make([]byte, 40<<10))
		require.NoError(t, err)
		require.NoError(t, conn.Close())
	}
	require.Eventually(t, func() bool { return len(s.done.snapshot()) >= before+n }, 10*time.Second, 10*time.Millisecond)
	s.check(t, "after clients hung up mid-response")
}

// TestBrokenBodyAnswered400: a client that stays to read the answer after
// sending a malformed body gets 400, not a 502 that blames the backends,
// and no backend is charged.
func TestBrokenBodyAnswered400(t *testing.T) {
	s := newClientErrorSetup(t, balance.HealthConfig{MaxFailures: 1})
	conn, err := net.Dial("tcp", s.addr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /headers HTTP/1.1\r\nHost: farm\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\nzz\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "bad request\n", string(body))
	s.check(t, "after a malformed chunked body")
}
