package httpclient

// Real-time tests in this file: the Transport in front of real loopback
// backends (its dialing, retries and body handling are the point). Only
// TestAttemptTimeout asserts a duration: an attempt timeout of 100 ms
// moves a GET off a backend that answers in 5 s, within 3 s.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/internal/testenv"
)

func TestNewConfig(t *testing.T) {
	lb := balance.NewRoundRobin()
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"no retries", Config{Retries: -1}, true},
		{"negative attempt timeout", Config{AttemptTimeout: -1}, false},
		{"negative dial timeout", Config{DialTimeout: -1}, false},
		{"negative idle conns", Config{IdleConnsPerBackend: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(lb, tc.cfg)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrInvalidConfig)
				require.ErrorIs(t, err, balance.ErrInvalidConfig)
			}
		})
	}
	_, err := New(nil, Config{})
	require.ErrorIs(t, err, ErrInvalidConfig)
}

// TestSpread: requests go round the clones, with the Host header the
// caller addressed and the body intact, and each Choice is Done once, nil.
func TestSpread(t *testing.T) {
	cs := clones(t, 3)
	tr, done := newTransport(t, newRR(t, backendsOf(cs...)), Config{})
	client := &http.Client{Transport: tr}
	seen := map[string]int{}
	for range 9 {
		resp, err := client.Post("http://users:8080/echo", "text/plain", strings.NewReader("payload"))
		require.NoError(t, err)
		var e echo
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
		resp.Body.Close()
		require.Equal(t, "users:8080", e.Host, "the Host header is the service's name")
		require.Equal(t, "payload", e.Body)
		seen[e.Clone]++
	}
	require.Equal(t, map[string]int{"clone-1": 3, "clone-2": 3, "clone-3": 3}, seen)
	calls := done.snapshot()
	require.Len(t, calls, 9, "one Done per request")
	for _, c := range calls {
		require.NoError(t, c.err)
	}
}

// TestDoneAtEOF: a body read to its end reports Done before Close, so a
// caller that closes late does not hold the backend's in-flight count.
func TestDoneAtEOF(t *testing.T) {
	c := newClone(t, "c")
	tr, done := newTransport(t, newRR(t, backendsOf(c)), Config{})
	resp, err := (&http.Client{Transport: tr}).Get("http://svc/")
	require.NoError(t, err)
	require.Empty(t, done.snapshot(), "Done before the body was read")
	_, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Len(t, done.snapshot(), 1, "Done at EOF")
	resp.Body.Close()
	require.Len(t, done.snapshot(), 1, "Done once")
}

// TestFailureStatus: a 5xx reaches the caller as a response and the
// balancer as a failure; it is not retried.
func TestFailureStatus(t *testing.T) {
	cs := clones(t, 2)
	tr, done := newTransport(t, newRR(t, backendsOf(cs...)), Config{})
	status, _ := get(t, &http.Client{Transport: tr}, "http://svc/fail")
	require.Equal(t, http.StatusInternalServerError, status)
	calls := done.snapshot()
	require.Len(t, calls, 1, "a response is not retried")
	require.ErrorIs(t, calls[0].err, ErrBackendStatus)
	require.Equal(t, int64(1), cs[0].hits.Load()+cs[1].hits.Load())
}

// closer accepts connections, reads the request, body included, and
// closes without an answer: a backend that dies with the request in hand.
func closer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// All the client sends comes at once; a pause ends it.
			buf := make([]byte, 64<<10)
			for {
				_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if _, err := c.Read(buf); err != nil {
					break
				}
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

// onlyReader hides a body's type, so that http.NewRequest cannot set
// GetBody: a stream that cannot be replayed.
type onlyReader struct{ io.Reader }

// TestRetryPolicy checks which failed attempts go to another backend.
func TestRetryPolicy(t *testing.T) {
	live := newClone(t, "live")
	dead := testenv.RefusedAddr(t)
	broken := closer(t)
	for _, tc := range []struct {
		name    string
		first   string // the first attempt's backend
		method  string
		body    func() io.Reader
		header  string // an Idempotency-Key, when set
		retried bool
	}{
		{"GET refused", dead, "GET", nil, "", true},
		{"POST replayable refused", dead, "POST", func() io.Reader { return strings.NewReader("payload") }, "", true},
		{"POST stream refused", dead, "POST", func() io.Reader { return onlyReader{strings.NewReader("payload")} }, "", true},
		{"GET broken", broken, "GET", nil, "", true},
		{"POST replayable broken", broken, "POST", func() io.Reader { return strings.NewReader("payload") }, "", false},
		{"POST idempotency key broken", broken, "POST", func() io.Reader { return strings.NewReader("payload") }, "k1", true},
		{"PUT stream with key broken", broken, "PUT", func() io.Reader { return onlyReader{strings.NewReader("payload")} }, "k2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, done := newTransport(t, &scripted{order: []string{tc.first, live.addr}}, Config{})
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			req, err := http.NewRequest(tc.method, "http://svc/echo", body)
			require.NoError(t, err)
			if tc.header != "" {
				req.Header.Set("Idempotency-Key", tc.header)
			}
			resp, err := tr.RoundTrip(req)
			calls := done.snapshot()
			if !tc.retried {
				require.Error(t, err, "not retried")
				t.Logf("err %v calls %v", err, calls)
				require.Len(t, calls, 1)
				require.Error(t, calls[0].err, "the broken backend is told of")
				return
			}
			require.NoError(t, err, "retried on the live backend")
			var e echo
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
			resp.Body.Close()
			require.Equal(t, "live", e.Clone)
			if tc.body != nil {
				require.Equal(t, "payload", e.Body, "the body went whole with the retry")
			}
			calls = done.snapshot()
			require.Len(t, calls, 2)
			require.Equal(t, tc.first, calls[0].addr)
			require.Error(t, calls[0].err)
			require.NoError(t, calls[1].err)
		})
	}
}

// trackedBody records whether it was read and closed.
type trackedBody struct {
	r      io.Reader
	mu     sync.Mutex
	closed int
}

func (b *trackedBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *trackedBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed++
	return nil
}
func (b *trackedBody) closes() int { b.mu.Lock(); defer b.mu.Unlock(); return b.closed }

// TestStreamBodyClosedOnce: a body that cannot be replayed is closed once
// whatever happens to the request (RoundTripper's contract), and only
// after the last attempt that may send it.
func TestStreamBodyClosedOnce(t *testing.T) {
	live := newClone(t, "live")
	dead := testenv.RefusedAddr(t)
	for _, tc := range []struct {
		name  string
		order []string
		ok    bool
	}{
		{"refused then sent", []string{dead, live.addr}, true},
		{"sent", []string{live.addr}, true},
		{"refused everywhere", []string{dead}, false},
		{"no backend", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, _ := newTransport(t, &scripted{order: tc.order}, Config{})
			b := &trackedBody{r: strings.NewReader("payload")}
			req, err := http.NewRequest(http.MethodPost, "http://svc/echo", b)
			require.NoError(t, err)
			require.Nil(t, req.GetBody)
			resp, err := tr.RoundTrip(req)
			if tc.ok {
				require.NoError(t, err)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			} else {
				require.Error(t, err)
			}
			require.Eventually(t, func() bool { return b.closes() == 1 }, 5*time.Second, time.Millisecond, "closes: %d", b.closes())
			time.Sleep(10 * time.Millisecond)
			require.Equal(t, 1, b.closes())
		})
	}
}

// TestAttemptTimeout: a GET leaves a backend that does not answer within
// AttemptTimeout for another; a POST fails with ErrAttemptTimeout, which
// http.Client reports as a timeout.
func TestAttemptTimeout(t *testing.T) {
	slow, fast := newClone(t, "slow"), newClone(t, "fast")
	slow.delay.Store(int64(5 * time.Second))
	tr, done := newTransport(t, &scripted{order: []string{slow.addr, fast.addr}}, Config{AttemptTimeout: 100 * time.Millisecond})
	start := time.Now()
	status, body := get(t, &http.Client{Transport: tr}, "http://svc/")
	took := time.Since(start)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "hello from fast", body)
	require.Less(t, took, 3*time.Second, "the slow backend's 5 s was not waited for")
	calls := done.snapshot()
	require.Len(t, calls, 2)
	require.ErrorIs(t, calls[0].err, ErrAttemptTimeout)

	tr, _ = newTransport(t, &scripted{order: []string{slow.addr, fast.addr}}, Config{AttemptTimeout: 100 * time.Millisecond})
	_, err := (&http.Client{Transport: tr}).Post("http://svc/", "text/plain", strings.NewReader("x"))
	require.ErrorIs(t, err, ErrAttemptTimeout)
	var ue *url.Error
	require.ErrorAs(t, err, &ue)
	require.True(t, ue.Timeout(), "http.Client sees a timeout")

	// The attempt timeout does not cut a body that streams after its
	// header came in time.
	slow.delay.Store(0)
	tr, _ = newTransport(t, &scripted{order: []string{slow.addr}}, Config{AttemptTimeout: 50 * time.Millisecond})
	resp, err := (&http.Client{Transport: tr}).Get("http://svc/")
	require.NoError(t, err)
	time.Sleep(150 * time.Millisecond)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, "hello from slow", string(b))
}

// TestCallerCancel: a request its caller cancels is reported aborted,
// not as a failure of the backend, and is not retried.
func TestCallerCancel(t *testing.T) {
	slow := newClone(t, "slow")
	slow.delay.Store(int64(5 * time.Second))
	other := newClone(t, "other")
	tr, done := newTransport(t, &scripted{order: []string{slow.addr, other.addr}}, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc/", nil)
	_, err := tr.RoundTrip(req)
	require.ErrorIs(t, err, context.Canceled)
	calls := done.snapshot()
	require.Len(t, calls, 1)
	require.ErrorIs(t, calls[0].err, balance.ErrAborted)
	require.Zero(t, other.hits.Load())
}

// TestHost: with Config.Host, requests for another host are not
// balanced: they go where their URL says.
func TestHost(t *testing.T) {
	c := newClone(t, "backend")
	elsewhere := newClone(t, "elsewhere")
	tr, done := newTransport(t, newRR(t, backendsOf(c)), Config{Host: "users"})
	client := &http.Client{Transport: tr}
	_, body := get(t, client, "http://users/")
	require.Equal(t, "hello from backend", body)
	_, body = get(t, client, "http://"+elsewhere.addr+"/")
	require.Equal(t, "hello from elsewhere", body)
	require.Len(t, done.snapshot(), 1, "the other host's request did not pick")
}

// TestNoBackend: an empty set fails with balance.ErrNoBackend.
func TestNoBackend(t *testing.T) {
	tr, _ := newTransport(t, balance.NewRoundRobin(), Config{})
	_, err := (&http.Client{Transport: tr}).Get("http://svc/")
	require.ErrorIs(t, err, balance.ErrNoBackend)
}

// TestEveryBackendDown: the error is the last attempt's, naming its
// backend, after Retries retries on distinct backends.
func TestEveryBackendDown(t *testing.T) {
	dead := []string{testenv.RefusedAddr(t), testenv.RefusedAddr(t), testenv.RefusedAddr(t), testenv.RefusedAddr(t)}
	bs := make([]balance.Backend, len(dead))
	for i, a := range dead {
		bs[i] = balance.Backend{Addr: a}
	}
	tr, done := newTransport(t, newRR(t, bs), Config{})
	_, err := (&http.Client{Transport: tr}).Get("http://svc/")
	require.Error(t, err)
	calls := done.snapshot()
	require.Len(t, calls, 1+DefaultRetries)
	addrs := map[string]bool{}
	for _, c := range calls {
		addrs[c.addr] = true
	}
	require.Len(t, addrs, 1+DefaultRetries, "each attempt on another backend")
	require.Contains(t, err.Error(), calls[len(calls)-1].addr)
	var op *net.OpError
	require.True(t, errors.As(err, &op))
}
