package httpclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
)

// clone is one real HTTP backend on loopback, on an address it keeps
// across kill and restart, answering with its name.
type clone struct {
	name  string
	addr  string
	delay atomic.Int64 // nanoseconds added to every answer
	hits  atomic.Int64

	mu  sync.Mutex
	srv *http.Server // nil while killed
}

// echo is what /echo answers.
type echo struct {
	Clone, Host, Method, Body string
}

func newClone(t testing.TB, name string) *clone {
	t.Helper()
	c := &clone{name: name}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c.addr = l.Addr().String()
	c.serve(l)
	t.Cleanup(c.kill)
	return c
}

func (c *clone) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		if d := time.Duration(c.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("X-Clone", c.name)
		switch r.URL.Path {
		case "/healthz":
			return
		case "/echo":
			body, _ := io.ReadAll(r.Body)
			_ = json.NewEncoder(w).Encode(echo{Clone: c.name, Host: r.Host, Method: r.Method, Body: string(body)})
			return
		case "/fail":
			http.Error(w, "backend broke", http.StatusInternalServerError)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "hello from %s", c.name)
	})
}

func (c *clone) serve(l net.Listener) {
	srv := &http.Server{Handler: c.handler()}
	c.mu.Lock()
	c.srv = srv
	c.mu.Unlock()
	go srv.Serve(l)
}

// kill stops the clone at once: its listener and every connection
// closed, requests in flight cut, as when its process dies.
func (c *clone) kill() {
	c.mu.Lock()
	srv := c.srv
	c.srv = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// restart serves again on the same address.
func (c *clone) restart(t testing.TB) {
	t.Helper()
	var l net.Listener
	require.Eventually(t, func() bool {
		var err error
		l, err = net.Listen("tcp", c.addr)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond, "listen again on %s", c.addr)
	c.serve(l)
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
		bs[i] = balance.Backend{Addr: c.addr}
	}
	return bs
}

// scripted hands out its addresses in order, one per Pick, round and
// round.
type scripted struct {
	mu    sync.Mutex
	order []string
	n     int
}

func (s *scripted) Pick(ctx context.Context, _ string) (balance.Choice, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.order) == 0 {
		return balance.Choice{}, balance.ErrNoBackend
	}
	addr := s.order[s.n%len(s.order)]
	s.n++
	return balance.NewChoice(balance.Backend{Addr: addr}), nil
}

func (s *scripted) Update([]balance.Backend) error { return nil }

// doneLog records every Choice.Done.
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

// newTransport builds a Transport with a Done log, and closes its idle
// connections at the end of the test.
func newTransport(t testing.TB, lb balance.Balancer, cfg Config) (*Transport, *doneLog) {
	t.Helper()
	tr, err := New(lb, cfg)
	require.NoError(t, err)
	log := &doneLog{}
	tr.onDone = log.hook
	t.Cleanup(tr.CloseIdleConnections)
	return tr, log
}

func newRR(t testing.TB, bs []balance.Backend) *balance.RoundRobin {
	t.Helper()
	lb := balance.NewRoundRobin()
	require.NoError(t, lb.Update(bs))
	return lb
}

// get sends a GET through c and returns the status and body.
func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}
