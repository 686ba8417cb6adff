package httpproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
)

// clone is one real backend on loopback that answers with its name.
type clone struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
	// release, when set, makes /slow wait for it.
	release chan struct{}
	started chan struct{}
}

func (c *clone) addr() string { return c.srv.Listener.Addr().String() }

// echo is what /headers answers.
type echo struct {
	Clone  string
	Host   string
	Method string
	Body   string
	Header http.Header
}

func newClone(t testing.TB, name string) *clone {
	t.Helper()
	c := &clone{name: name, release: make(chan struct{}), started: make(chan struct{}, 16)}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		w.Header().Set("X-Clone", c.name)
		switch r.URL.Path {
		case "/headers":
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(echo{Clone: c.name, Host: r.Host, Method: r.Method, Body: string(body), Header: r.Header})
			return
		case "/hop":
			w.Header().Set("Connection", "X-Back-Secret")
			w.Header().Set("X-Back-Secret", "leak")
			w.Header().Set("Keep-Alive", "timeout=5")
		case "/slow":
			c.started <- struct{}{}
			select {
			case <-c.release:
			case <-r.Context().Done():
				return
			}
		case "/sleep":
			d, _ := time.ParseDuration(r.URL.Query().Get("d"))
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		case "/stream": // 100 chunks of 32 KiB, 5 ms apart
			chunk := make([]byte, 32<<10)
			for range 100 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-time.After(5 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
			return
		case "/fail":
			http.Error(w, "backend broke", http.StatusInternalServerError)
			return
		}
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		fmt.Fprintf(w, "hello from %s", c.name)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func clones(t testing.TB, n int) []*clone {
	cs := make([]*clone, n)
	for i := range cs {
		cs[i] = newClone(t, fmt.Sprintf("clone-%d", i+1))
	}
	return cs
}

func backendsOf(cs ...*clone) []balance.Backend {
	bs := make([]balance.Backend, len(cs))
	for i, c := range cs {
		bs[i] = balance.Backend{Addr: c.addr()}
	}
	return bs
}

// countingLB counts picks of the balancer it wraps. It hides the wrapped
// balancer's PickAddr, so sticky requests take the untracked path;
// pinnerLB exposes it.
type countingLB struct {
	balance.Balancer
	picks  atomic.Int64
	pinned atomic.Int64
}

func (l *countingLB) Pick(ctx context.Context, key string) (balance.Choice, error) {
	c, err := l.Balancer.Pick(ctx, key)
	if err == nil {
		l.picks.Add(1)
	}
	return c, err
}

// pinnerLB is a countingLB whose sticky requests go through the wrapped
// balancer's PickAddr.
type pinnerLB struct{ *countingLB }

func (l pinnerLB) PickAddr(ctx context.Context, addr string) (balance.Choice, error) {
	l.pinned.Add(1)
	return l.Balancer.(balance.Pinner).PickAddr(ctx, addr)
}

func newRR(t testing.TB, bs []balance.Backend) *countingLB {
	t.Helper()
	lb := &countingLB{Balancer: balance.NewRoundRobin()}
	require.NoError(t, lb.Update(bs))
	return lb
}

// quiet is a logger that drops everything.
var quiet = slog.New(slog.DiscardHandler)

// doneLog records every Done call of a proxy.
type doneLog struct {
	mu    sync.Mutex
	calls []doneCall
}

type doneCall struct {
	addr string
	err  error
}

func (d *doneLog) hook(b balance.Backend, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, doneCall{b.Addr, err})
}

func (d *doneLog) snapshot() []doneCall {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]doneCall(nil), d.calls...)
}

func newProxy(t testing.TB, lb balance.Balancer, cfg Config) (*Proxy, *doneLog) {
	t.Helper()
	if cfg.ErrorLog == nil {
		cfg.ErrorLog = quiet
	}
	p, err := New(lb, cfg)
	require.NoError(t, err)
	d := new(doneLog)
	p.onDone = d.hook
	t.Cleanup(p.CloseIdleConnections)
	return p, d
}

// serve puts p behind a real loopback server and returns its URL and a
// client with its own connections.
func serve(t testing.TB, p http.Handler) (string, *http.Client) {
	t.Helper()
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return srv.URL, &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get returns the status, body and X-Clone of a GET.
func get(t testing.TB, c *http.Client, url string) (int, string, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header.Get("X-Clone")
}
