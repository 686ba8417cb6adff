package httpproxy

// Real-time tests in this file: TestSpread, TestDoneOncePerChoice,
// TestRetryPolicy, TestErrorMapping, TestDrain, TestBodyCutShort and
// TestUpgrade (the proxy in front of real loopback backends and clients:
// its transport, timeouts and connection handling are the point). Only
// TestErrorMapping asserts a duration: a timeout of 50 ms answers well
// before the backend's 2 s, within a bound of 1 s.

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/internal/httpretry"
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
		{"https", Config{Scheme: "https"}, true},
		{"no retries", Config{Retries: -1}, true},
		{"sticky", Config{StickyCookie: "lb"}, true},
		{"sticky secret", Config{StickyCookie: "lb", Secret: make([]byte, 16)}, true},
		{"trusted", Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, true},
		{"bad scheme", Config{Scheme: "ftp"}, false},
		{"negative dial", Config{DialTimeout: -1}, false},
		{"negative header timeout", Config{ResponseHeaderTimeout: -1}, false},
		{"negative timeout", Config{Timeout: -1}, false},
		{"negative idle", Config{IdleConnsPerBackend: -1}, false},
		{"negative ttl", Config{StickyTTL: -1}, false},
		{"negative max", Config{StickyMaxBackends: -1}, false},
		{"bad cookie name", Config{StickyCookie: "a b"}, false},
		{"cookie name with =", Config{StickyCookie: "a=b"}, false},
		{"short secret", Config{StickyCookie: "lb", Secret: []byte("short")}, false},
		{"invalid prefix", Config{TrustedProxies: []netip.Prefix{{}}}, false},
		{"client addr headers", Config{ClientAddrHeaders: []string{"X-My-Client"}}, true},
		{"bad client addr header", Config{ClientAddrHeaders: []string{"X My Client"}}, false},
		{"empty client addr header", Config{ClientAddrHeaders: []string{""}}, false},
		{"private paths", Config{PrivatePaths: []string{"/admin/", "/"}}, true},
		{"relative private path", Config{PrivatePaths: []string{"admin"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(lb, tc.cfg)
			if tc.ok {
				require.NoError(t, err)
				require.NotNil(t, p)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorIs(t, err, balance.ErrInvalidConfig)
		})
	}
	_, err := New(nil, Config{})
	require.ErrorIs(t, err, ErrInvalidConfig)
}

func TestSpread(t *testing.T) {
	cs := clones(t, 3)
	lb := newRR(t, backendsOf(cs...))
	p, done := newProxy(t, lb, Config{})
	url, client := serve(t, p)

	seen := map[string]int{}
	for range 30 {
		code, body, name := get(t, client, url+"/")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "hello from "+name, body)
		seen[name]++
	}
	require.Equal(t, map[string]int{"clone-1": 10, "clone-2": 10, "clone-3": 10}, seen)
	require.Eventually(t, func() bool { return len(done.snapshot()) == 30 }, 5*time.Second, time.Millisecond)
	for _, c := range done.snapshot() {
		require.NoError(t, c.err)
	}
	require.EqualValues(t, 30, lb.picks.Load())
}

// TestDoneOncePerChoice checks that every Choice a Pick returned is
// reported exactly once, with the right verdict, whatever happens to the
// request.
func TestDoneOncePerChoice(t *testing.T) {
	cs := clones(t, 2)
	dead := testenv.RefusedAddr(t)
	lb := newRR(t, append(backendsOf(cs...), balance.Backend{Addr: dead}))
	p, done := newProxy(t, lb, Config{})
	url, client := serve(t, p)

	var okCount, failStatus int
	for i := range 30 {
		path := "/"
		if i%5 == 0 {
			path = "/fail"
		}
		code, _, _ := get(t, client, url+path)
		switch code {
		case http.StatusOK:
			okCount++
		case http.StatusInternalServerError:
			failStatus++
		default:
			t.Fatalf("status %d", code)
		}
	}
	// POSTs with a body to the dead backend are not retried: 502.
	for range 6 {
		resp, err := client.Post(url+"/", "text/plain", strings.NewReader("payload"))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	require.Eventually(t, func() bool { return int64(len(done.snapshot())) == lb.picks.Load() }, 5*time.Second, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	calls := done.snapshot()
	require.EqualValues(t, lb.picks.Load(), len(calls), "one Done per pick")
	for _, c := range calls {
		switch {
		case c.addr == dead:
			require.Error(t, c.err)
		case c.err != nil:
			require.ErrorIs(t, c.err, ErrBackendStatus)
		}
	}
	require.Equal(t, 30, okCount+failStatus)
	require.Equal(t, 6, failStatus)
}

func TestKillOneMidLoad(t *testing.T) {
	cs := clones(t, 3)
	lb := newRR(t, backendsOf(cs...))
	p, done := newProxy(t, lb, Config{})
	url, client := serve(t, p)

	const (
		workers = 8
		per     = 250
		total   = workers * per
	)
	var (
		sent, errs atomic.Int64
		killOnce   sync.Once
		wg         sync.WaitGroup
		firstErr   atomic.Value
	)
	deadline := time.Now().Add(30 * time.Second)
	for range workers {
		wg.Go(func() {
			for range per {
				if time.Now().After(deadline) {
					return
				}
				if sent.Add(1) == total/4 {
					// Kill clone-2 abruptly: no new connections, and the
					// open ones (idle or mid-request) cut.
					killOnce.Do(func() {
						cs[1].srv.Listener.Close()
						cs[1].srv.CloseClientConnections()
					})
				}
				resp, err := client.Get(url + "/")
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
				}
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, total, sent.Load(), "the load finished in time")
	failed := 0
	for _, c := range done.snapshot() {
		if c.err != nil {
			failed++
		}
	}
	t.Logf("%d requests, %d client-visible errors (first: %v); hits %d/%d/%d; %d failed attempts retried",
		total, errs.Load(), firstErr.Load(), cs[0].hits.Load(), cs[1].hits.Load(), cs[2].hits.Load(), failed)
	require.Positive(t, failed, "the kill was felt")
	require.LessOrEqual(t, errs.Load(), int64(total/1000), "≤ 0.1%% client errors")
	require.Positive(t, cs[1].hits.Load(), "the killed clone served before it died")
}

// TestRetryPolicy shows which requests move to another backend when the
// first one fails: every request whose connection was refused (the
// backend received nothing), with its body intact; only idempotent ones
// when the connection broke after the request was sent.
func TestRetryPolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		body   bool
		header string
		// retried when the backend closed the connection after the
		// request was written
		retriedWhenSent bool
	}{
		{"GET", http.MethodGet, false, "", true},
		{"HEAD", http.MethodHead, false, "", true},
		{"OPTIONS", http.MethodOptions, false, "", true},
		{"POST with body", http.MethodPost, true, "", false},
		{"POST without body", http.MethodPost, false, "", false},
		{"PUT with body", http.MethodPut, true, "", false},
		{"DELETE", http.MethodDelete, false, "", false},
		{"POST with Idempotency-Key, no body", http.MethodPost, false, "Idempotency-Key", true},
		{"DELETE with X-Idempotency-Key", http.MethodDelete, false, "X-Idempotency-Key", true},
		{"POST with Idempotency-Key and a streamed body", http.MethodPost, true, "Idempotency-Key", false},
	} {
		for _, refused := range []bool{true, false} {
			name := tc.name + "/sent"
			if refused {
				name = tc.name + "/refused"
			}
			t.Run(name, func(t *testing.T) {
				live := newClone(t, "live")
				first := testenv.RefusedAddr(t)
				if !refused {
					first = hangUpAddr(t)
				}
				// Round robin from the first backend: the failing one is tried first.
				lb := &countingLB{Balancer: new(balance.RoundRobin)}
				require.NoError(t, lb.Update([]balance.Backend{{Addr: first}, {Addr: live.addr()}}))
				p, done := newProxy(t, lb, Config{})
				url, client := serve(t, p)

				var body io.Reader
				if tc.body {
					body = strings.NewReader("payload")
				}
				req, err := http.NewRequest(tc.method, url+"/headers", body)
				require.NoError(t, err)
				if tc.header != "" {
					req.Header.Set(tc.header, "k-1")
				}
				resp, err := client.Do(req)
				require.NoError(t, err)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if refused || tc.retriedWhenSent {
					require.Equal(t, http.StatusOK, resp.StatusCode)
					require.EqualValues(t, 1, live.hits.Load())
					require.EqualValues(t, 2, lb.picks.Load())
					if tc.body && tc.method != http.MethodHead {
						var e echo
						require.NoError(t, json.Unmarshal(b, &e))
						require.Equal(t, "payload", e.Body, "the retry carries the whole body")
					}
				} else {
					require.Equal(t, http.StatusBadGateway, resp.StatusCode)
					require.Equal(t, bodyBadGateway, string(b))
					require.EqualValues(t, 0, live.hits.Load())
					require.EqualValues(t, 1, lb.picks.Load())
				}
				require.Eventually(t, func() bool { return int64(len(done.snapshot())) == lb.picks.Load() }, 5*time.Second, time.Millisecond)
			})
		}
	}
}

// hangUpAddr is a backend that reads a request and closes the connection
// without answering.
func hangUpAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4096)
			_, _ = c.Read(buf)
			c.Close()
		}
	}()
	return l.Addr().String()
}

// TestRetryGetBody: a request whose body can be replayed (GetBody) is
// retried with the whole body.
func TestRetryGetBody(t *testing.T) {
	live := newClone(t, "live")
	lb := &countingLB{Balancer: new(balance.RoundRobin)}
	require.NoError(t, lb.Update([]balance.Backend{{Addr: testenv.RefusedAddr(t)}, {Addr: live.addr()}}))
	p, _ := newProxy(t, lb, Config{})
	req := httptest.NewRequest(http.MethodPut, "/headers", nil)
	req.Header.Set("Idempotency-Key", "k")
	req.ContentLength = 7
	req.Body = io.NopCloser(strings.NewReader("payload"))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("payload")), nil }
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var e echo
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
	require.Equal(t, "payload", e.Body)
}

// TestRetriesBounded: with every backend dead, a GET is tried 1+Retries
// times, then fails with 502.
func TestRetriesBounded(t *testing.T) {
	var bs []balance.Backend
	for range 5 {
		bs = append(bs, balance.Backend{Addr: testenv.RefusedAddr(t)})
	}
	for _, tc := range []struct {
		retries int
		picks   int64
	}{{0, 3}, {-1, 1}, {1, 2}, {4, 5}} {
		lb := newRR(t, bs)
		p, done := newProxy(t, lb, Config{Retries: tc.retries})
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		require.Equal(t, http.StatusBadGateway, rec.Code)
		require.Equal(t, tc.picks, lb.picks.Load(), "Retries %d", tc.retries)
		require.Len(t, done.snapshot(), int(tc.picks))
		tried := map[string]bool{}
		for _, c := range done.snapshot() {
			require.False(t, tried[c.addr], "a backend tried twice")
			tried[c.addr] = true
			require.Error(t, c.err)
		}
	}
}

// TestRetrySkipsTriedBackend: when the balancer returns the failed backend
// again, the proxy asks again instead of retrying it, and reports the
// extra pick as the failure it just saw.
func TestRetrySkipsTriedBackend(t *testing.T) {
	live := newClone(t, "live")
	dead := testenv.RefusedAddr(t)
	lb := &countingLB{Balancer: &scripted{order: []string{dead, dead, dead, live.addr()}}}
	p, done := newProxy(t, lb, Config{})
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.EqualValues(t, 4, lb.picks.Load())
	calls := done.snapshot()
	require.Len(t, calls, 4)
	for _, c := range calls[:3] {
		require.Equal(t, dead, c.addr)
		require.Error(t, c.err)
	}
	require.Equal(t, doneCall{live.addr(), nil}, calls[3])
}

// scripted is a Balancer that returns the addresses in order, cycling.
type scripted struct {
	mu    sync.Mutex
	order []string
	i     int
}

func (s *scripted) Pick(ctx context.Context, _ string) (balance.Choice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) == 0 {
		return balance.Choice{}, balance.ErrNoBackend
	}
	addr := s.order[s.i%len(s.order)]
	s.i++
	return balance.NewChoice(balance.Backend{Addr: addr}), nil
}

func (s *scripted) Update([]balance.Backend) error { return nil }

func TestErrorMapping(t *testing.T) {
	slow := newClone(t, "slow")
	dead := testenv.RefusedAddr(t)
	for _, tc := range []struct {
		name   string
		set    []balance.Backend
		cfg    Config
		path   string
		status int
		body   string
	}{
		{"empty set", nil, Config{}, "/", http.StatusServiceUnavailable, bodyServiceUnavailable},
		{"refused", []balance.Backend{{Addr: dead}}, Config{}, "/", http.StatusBadGateway, bodyBadGateway},
		{"response header timeout", []balance.Backend{{Addr: slow.addr()}}, Config{ResponseHeaderTimeout: 50 * time.Millisecond}, "/sleep?d=2s", http.StatusGatewayTimeout, bodyGatewayTimeout},
		{"overall timeout", []balance.Backend{{Addr: slow.addr()}}, Config{Timeout: 50 * time.Millisecond}, "/sleep?d=2s", http.StatusGatewayTimeout, bodyGatewayTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := newRR(t, tc.set)
			p, _ := newProxy(t, lb, tc.cfg)
			url, client := serve(t, p)
			start := time.Now()
			resp, err := client.Get(url + tc.path)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			resp.Body.Close()
			// The configured 50 ms, and a margin for a loaded machine: well
			// before the backend's 2 s.
			took := time.Since(start)
			require.Less(t, took, time.Second, "answered after %v", took)
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, tc.body, string(b))
			require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
			noLeak(t, string(b), resp.Header, slow.addr(), dead)
		})
	}
}

// noLeak asserts no backend address, port or Go error text appears.
func noLeak(t *testing.T, body string, h http.Header, addrs ...string) {
	t.Helper()
	all := body
	for k, vs := range h {
		all += "\n" + k + ": " + strings.Join(vs, ",")
	}
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		require.NotContains(t, all, host)
		require.NotContains(t, all, port)
	}
	for _, s := range []string{"dial", "tcp", "refused", "timeout awaiting", "context", "EOF"} {
		require.NotContains(t, all, s)
	}
}

func TestForwardedHeaders(t *testing.T) {
	c := newClone(t, "c")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for _, tc := range []struct {
		name   string
		remote string
		tls    bool
		in     map[string]string
		want   map[string]string
	}{
		{"plain", "192.0.2.7:5000", false, nil,
			map[string]string{"X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "example.com"}},
		{"tls", "192.0.2.7:5000", true, nil,
			map[string]string{"X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "https"}},
		{"untrusted spoof replaced", "192.0.2.7:5000", false,
			map[string]string{"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example", "Forwarded": "for=1.2.3.4"},
			map[string]string{"X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "example.com", "Forwarded": ""}},
		{"trusted appended", "10.1.2.3:5000", false,
			map[string]string{"X-Forwarded-For": "1.2.3.4, 172.16.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "www.example"},
			map[string]string{"X-Forwarded-For": "1.2.3.4, 172.16.0.1, 10.1.2.3", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "www.example", "Forwarded": ""}},
		{"trusted without prior", "10.1.2.3:5000", false, nil,
			map[string]string{"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "example.com"}},
		{"trusted v6", "[2001:db8::1]:5000", false, map[string]string{"X-Forwarded-For": "1.2.3.4"},
			map[string]string{"X-Forwarded-For": "1.2.3.4, 2001:db8::1"}},
		{"v4-mapped peer", "[::ffff:10.0.0.9]:5000", false, map[string]string{"X-Forwarded-For": "1.2.3.4"},
			map[string]string{"X-Forwarded-For": "1.2.3.4, 10.0.0.9"}},
		{"untrusted v6", "[2001:db9::1]:5000", false, map[string]string{"X-Forwarded-For": "1.2.3.4"},
			map[string]string{"X-Forwarded-For": "2001:db9::1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newProxy(t, newRR(t, backendsOf(c)), Config{TrustedProxies: trusted})
			req := httptest.NewRequest(http.MethodGet, "http://example.com/headers", nil)
			req.RemoteAddr = tc.remote
			if !tc.tls {
				req.TLS = nil
			} else {
				req = httptest.NewRequest(http.MethodGet, "https://example.com/headers", nil)
				req.RemoteAddr = tc.remote
			}
			for k, v := range tc.in {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code)
			var e echo
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
			require.Equal(t, "example.com", e.Host, "Host passed on")
			for k, v := range tc.want {
				require.Equal(t, v, strings.Join(e.Header.Values(k), ", "), k)
			}
		})
	}
}

// TestClientAddrHeaders: every common header that carries a client's
// address reaches a backend only from a trusted proxy; spellings with
// underscores, which CGI-style servers read as the dashed names, never
// do. The list is configurable.
func TestClientAddrHeaders(t *testing.T) {
	c := newClone(t, "c")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	send := func(t *testing.T, cfg Config, remote string, hdrs []string) http.Header {
		t.Helper()
		p, _ := newProxy(t, newRR(t, backendsOf(c)), cfg)
		req := httptest.NewRequest(http.MethodGet, "http://example.com/headers", nil)
		req.RemoteAddr = remote
		for _, h := range hdrs {
			req.Header[h] = []string{"6.6.6.6"}
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
		var e echo
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
		return e.Header
	}
	var canonical []string
	for _, h := range DefaultClientAddrHeaders {
		canonical = append(canonical, http.CanonicalHeaderKey(h))
	}
	underscored := []string{"X_real_ip", "X_forwarded_for", "True_client_ip", "Cf_connecting_ip"}

	t.Run("untrusted", func(t *testing.T) {
		got := send(t, Config{TrustedProxies: trusted}, "192.0.2.7:5000", append(canonical, underscored...))
		for _, h := range append(canonical, underscored...) {
			require.Empty(t, got[h], "%s reached the backend from an untrusted peer", h)
		}
		require.Equal(t, "192.0.2.7", got.Get("X-Forwarded-For"))
	})
	t.Run("trusted", func(t *testing.T) {
		got := send(t, Config{TrustedProxies: trusted}, "10.1.2.3:5000", append(canonical, underscored...))
		for _, h := range canonical {
			require.Equal(t, []string{"6.6.6.6"}, got[h], "%s from a trusted proxy", h)
		}
		for _, h := range underscored {
			require.Empty(t, got[h], h)
		}
	})
	t.Run("configured list", func(t *testing.T) {
		cfg := Config{ClientAddrHeaders: append(slices.Clone(DefaultClientAddrHeaders), "x-my-client")}
		got := send(t, cfg, "192.0.2.7:5000", []string{"X-Real-Ip", "X-My-Client", "X_my_client"})
		require.Empty(t, got["X-Real-Ip"])
		require.Empty(t, got["X-My-Client"])
		require.Empty(t, got["X_my_client"])
		got = send(t, Config{ClientAddrHeaders: []string{"X-My-Client"}}, "192.0.2.7:5000", []string{"X-Real-Ip", "X-My-Client"})
		require.Equal(t, "6.6.6.6", got.Get("X-Real-Ip"), "the configured list replaces the default")
		require.Empty(t, got["X-My-Client"])
	})
}

// TestNewCopiesConfig: New keeps copies of the caller's slices; it never
// writes to them (it used to mask TrustedProxies in place).
func TestNewCopiesConfig(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8"), netip.MustParsePrefix("2001:db8::1/32")}
	hdrs := []string{"x-my-client"}
	cfg := Config{TrustedProxies: trusted, ClientAddrHeaders: hdrs}
	p, err := New(balance.NewRoundRobin(), cfg)
	require.NoError(t, err)
	require.Equal(t, "10.1.2.3/8", trusted[0].String(), "the caller's TrustedProxies were rewritten")
	require.Equal(t, "2001:db8::1/32", trusted[1].String())
	require.Equal(t, "x-my-client", hdrs[0])
	trusted[0] = netip.MustParsePrefix("192.0.2.0/24")
	require.True(t, p.isTrusted(netip.MustParseAddr("10.9.9.9")), "the proxy kept its own copy")
	require.False(t, p.isTrusted(netip.MustParseAddr("192.0.2.1")))
}

// TestForwardedRealPeer runs over real loopback connections.
func TestForwardedRealPeer(t *testing.T) {
	c := newClone(t, "c")
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		want    string
	}{
		{"untrusted", nil, "127.0.0.1"},
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "6.6.6.6, 127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newProxy(t, newRR(t, backendsOf(c)), Config{TrustedProxies: tc.trusted})
			url, client := serve(t, p)
			req, _ := http.NewRequest(http.MethodGet, url+"/headers", nil)
			req.Header.Set("X-Forwarded-For", "6.6.6.6")
			resp, err := client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			var e echo
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
			require.Equal(t, tc.want, e.Header.Get("X-Forwarded-For"))
		})
	}
}

func TestHopByHopStripped(t *testing.T) {
	c := newClone(t, "c")
	p, _ := newProxy(t, newRR(t, backendsOf(c)), Config{})
	url, client := serve(t, p)

	req, _ := http.NewRequest(http.MethodGet, url+"/headers", nil)
	req.Header.Set("Connection", "X-Custom, X-Other")
	req.Header.Set("X-Custom", "secret")
	req.Header.Set("X-Other", "secret")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	req.Header.Set("Te", "gzip")
	req.Header.Set("X-Kept", "yes")
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var e echo
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	for _, h := range []string{"X-Custom", "X-Other", "Keep-Alive", "Proxy-Authorization", "Te"} {
		require.Empty(t, e.Header.Values(h), h)
	}
	require.Equal(t, "yes", e.Header.Get("X-Kept"))

	// And on the way back: the backend does send them...
	resp, err = http.Get(c.srv.URL + "/hop")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "leak", resp.Header.Get("X-Back-Secret"))
	// ...and the proxy drops them.
	resp, err = client.Get(url + "/hop")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, resp.Header.Values("X-Back-Secret"))
	require.Empty(t, resp.Header.Values("Keep-Alive"))
	require.Equal(t, "c", resp.Header.Get("X-Clone"))
}

// TestDrain: a request in flight to a backend removed from the set
// completes, while new requests go to the others.
func TestDrain(t *testing.T) {
	a, b := newClone(t, "a"), newClone(t, "b")
	lb := newRR(t, backendsOf(a))
	p, done := newProxy(t, lb, Config{})
	url, client := serve(t, p)

	type result struct {
		code       int
		body, name string
		err        error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := client.Get(url + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		slow <- result{resp.StatusCode, string(body), resp.Header.Get("X-Clone"), err}
	}()
	<-a.started // a has the request
	require.NoError(t, lb.Update(backendsOf(b)))
	for range 10 {
		code, _, name := get(t, client, url+"/")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "b", name)
	}
	close(a.release)
	r := <-slow
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, "a", r.name)
	require.Equal(t, "hello from a", r.body)
	require.Eventually(t, func() bool { return len(done.snapshot()) == 11 }, 5*time.Second, time.Millisecond)
	for _, c := range done.snapshot() {
		require.NoError(t, c.err)
	}
}

// TestBodyCutShort: a backend that dies mid-body is reported as a failure.
func TestBodyCutShort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	lb := newRR(t, []balance.Backend{{Addr: srv.Listener.Addr().String()}})
	p, done := newProxy(t, lb, Config{})
	url, client := serve(t, p)
	resp, err := client.Get(url + "/")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	require.Error(t, err, "the client sees the body cut")
	require.Eventually(t, func() bool { return len(done.snapshot()) == 1 }, 5*time.Second, time.Millisecond)
	require.Error(t, done.snapshot()[0].err)
}

// TestServerClosesBeforeResponse: a backend that accepts and closes the
// connection without answering is retried for a GET.
func TestServerClosesBeforeResponse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 1024)
			_, _ = c.Read(buf)
			c.Close()
		}
	}()
	live := newClone(t, "live")
	lb := &countingLB{Balancer: new(balance.RoundRobin)}
	require.NoError(t, lb.Update([]balance.Backend{{Addr: l.Addr().String()}, {Addr: live.addr()}}))
	p, done := newProxy(t, lb, Config{})
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "hello from live", rec.Body.String())
	calls := done.snapshot()
	require.Len(t, calls, 2)
	require.Error(t, calls[0].err)
	require.True(t, httpretry.IsConnFailure(calls[0].err), "%v", calls[0].err)
}

func TestCustomIsFailureAndKey(t *testing.T) {
	c := newClone(t, "c")
	var keys []string
	var mu sync.Mutex
	lb := &keyLB{Balancer: newRR(t, backendsOf(c)), keys: &keys, mu: &mu}
	p, done := newProxy(t, lb, Config{
		IsFailure: func(resp *http.Response, err error) bool { return err != nil || resp.StatusCode == http.StatusOK },
		Key:       func(r *http.Request) string { return r.Header.Get("X-User") },
	})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("X-User", "u42")
	p.ServeHTTP(httptest.NewRecorder(), req)
	p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/fail", nil))
	calls := done.snapshot()
	require.Len(t, calls, 2)
	require.ErrorIs(t, calls[0].err, ErrBackendStatus)
	require.NoError(t, calls[1].err)
	require.Equal(t, []string{"u42", ""}, keys)
}

type keyLB struct {
	balance.Balancer
	keys *[]string
	mu   *sync.Mutex
}

func (l *keyLB) Pick(ctx context.Context, key string) (balance.Choice, error) {
	l.mu.Lock()
	*l.keys = append(*l.keys, key)
	l.mu.Unlock()
	return l.Balancer.Pick(ctx, key)
}

// TestUpgrade: a protocol switch (101) passes through, and its Choice is
// reported done.
func TestUpgrade(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo: " + line)
		_ = brw.Flush()
	}))
	defer srv.Close()
	lb := newRR(t, []balance.Backend{{Addr: srv.Listener.Addr().String()}})
	p, done := newProxy(t, lb, Config{})
	url, _ := serve(t, p)

	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	_, err = io.WriteString(conn, "ping\n")
	require.NoError(t, err)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "echo: ping\n", line)
	require.Eventually(t, func() bool { return len(done.snapshot()) == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, done.snapshot()[0].err)
}
