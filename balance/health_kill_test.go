package balance_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
)

// clones starts n real HTTP backends on loopback.
func clones(t *testing.T, n int) ([]*httptest.Server, []balance.Backend) {
	var srvs []*httptest.Server
	var bs []balance.Backend
	for i := range n {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "clone %d", i)
		}))
		t.Cleanup(srv.Close)
		srvs = append(srvs, srv)
		bs = append(bs, balance.Backend{Addr: srv.Listener.Addr().String()})
	}
	return srvs, bs
}

// load sends GETs through lb from several goroutines until stop closes,
// and records for every pick its backend and when it was made.
type load struct {
	mu    sync.Mutex
	picks []pick
	errs  atomic.Int64
}

type pick struct {
	addr string
	at   time.Time
}

func (l *load) run(t *testing.T, lb balance.Balancer, stop <-chan struct{}) *sync.WaitGroup {
	client := &http.Client{Timeout: time.Second}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100_000; i++ { // bounded; stop ends it far sooner
				select {
				case <-stop:
					return
				default:
				}
				at := time.Now() // before Pick: a pick stamped later began later
				c, err := lb.Pick(context.Background(), "")
				if err != nil {
					l.errs.Add(1)
					continue
				}
				l.mu.Lock()
				l.picks = append(l.picks, pick{c.Backend().Addr, at})
				l.mu.Unlock()
				resp, err := client.Get("http://" + c.Backend().Addr + "/")
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				} else {
					l.errs.Add(1)
				}
				c.Done(err)
			}
		}()
	}
	return &wg
}

func (l *load) picksOf(addr string, after time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, p := range l.picks {
		if p.addr == addr && p.at.After(after) {
			n++
		}
	}
	return n
}

// TestKilledBackendActiveChecks kills a backend under load with only
// active checks on: it leaves the eligible set within two check intervals
// of its death (Fall is 2; the slack covers a loaded machine's timer and
// scheduling delays), and no pick begun after that goes to it.
func TestKilledBackendActiveChecks(t *testing.T) {
	srvs, bs := clones(t, 3)
	const interval = 100 * time.Millisecond
	h, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{
		Check: balance.HTTPCheck("/"), Interval: interval, Timeout: 50 * time.Millisecond, Fall: 2,
		MaxFailures: -1, MaxErrorRatio: -1,
	})
	require.NoError(t, err)
	defer h.Close()
	require.NoError(t, h.Update(bs))
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error)
	go func() { runDone <- h.Run(ctx) }()

	stop := make(chan struct{})
	var l load
	wg := l.run(t, h, stop)
	time.Sleep(300 * time.Millisecond)
	srvs[1].CloseClientConnections()
	srvs[1].Close()
	killed := time.Now()
	var removed time.Time
	for time.Since(killed) < 2*time.Second && removed.IsZero() {
		time.Sleep(time.Millisecond)
		if !slices.Contains(h.Eligible(), bs[1]) {
			removed = time.Now()
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	cancel()
	<-runDone

	require.False(t, removed.IsZero(), "the dead backend was never taken out")
	t.Logf("taken out %v after it died", removed.Sub(killed))
	require.Less(t, removed.Sub(killed), 2*interval+50*time.Millisecond)
	require.Greater(t, l.picksOf(bs[0].Addr, killed), 10, "the survivors keep serving")
	require.Zero(t, l.picksOf(bs[1].Addr, removed), "no pick of the dead backend once it is out")
}

// TestKilledBackendPassiveChecks: with passive checks alone, the dead
// backend is ejected after MaxFailures failed requests; clients see no
// more errors than that.
func TestKilledBackendPassiveChecks(t *testing.T) {
	srvs, bs := clones(t, 3)
	h, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{BaseEjection: time.Minute, MaxEjection: time.Minute})
	require.NoError(t, err)
	defer h.Close()
	require.NoError(t, h.Update(bs))

	stop := make(chan struct{})
	var l load
	wg := l.run(t, h, stop)
	time.Sleep(200 * time.Millisecond)
	srvs[2].CloseClientConnections()
	srvs[2].Close()
	killed := time.Now()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	// Up to four requests were already on their way when the fifth
	// failure ejected it.
	require.LessOrEqual(t, l.errs.Load(), int64(5+4))
	require.LessOrEqual(t, l.picksOf(bs[2].Addr, killed), 5+4)
	require.NotContains(t, h.Eligible(), bs[2])
	total := len(l.picks)
	t.Logf("%d requests, %d client-visible errors after the kill", total, l.errs.Load())
}

// TestRestartedBackendPassiveChecks kills a backend's listener under load,
// with passive checks only, keeps it dead for 16 base ejections, then
// brings it back on the same address: it serves again within one base
// ejection (plus slack for a loaded machine), thanks to the half-open
// trial when each ejection's time is up. Before, the ejection time kept
// doubling while it was dead (0.5, 1, 2, 4 s...), and it came back only
// when the current one ran out, 7.5 s after the restart here.
func TestRestartedBackendPassiveChecks(t *testing.T) {
	const base = 500 * time.Millisecond
	srvs, bs := clones(t, 3)
	h, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{BaseEjection: base, MaxEjection: time.Minute})
	require.NoError(t, err)
	defer h.Close()
	require.NoError(t, h.Update(bs))

	stop := make(chan struct{})
	var l load
	wg := l.run(t, h, stop)
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(200 * time.Millisecond)
	srvs[2].CloseClientConnections()
	srvs[2].Close()
	time.Sleep(16 * base)

	served := make(chan time.Time, 1)
	back := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case served <- time.Now():
		default:
		}
		fmt.Fprint(w, "clone 2, restarted")
	}))
	ln, err := net.Listen("tcp", bs[2].Addr)
	require.NoError(t, err, "listening again on the dead backend's address")
	back.Listener = ln
	back.Start()
	defer back.Close()
	restarted := time.Now()
	select {
	case at := <-served:
		took := at.Sub(restarted)
		t.Logf("the restarted backend served again %v after it came back (BaseEjection %v, passive checks only)", took, base)
		require.Less(t, took, base+time.Second, "re-entered %v after the restart", took)
	case <-time.After(30 * time.Second):
		t.Fatal("the restarted backend never served again")
	}
	require.Eventually(t, func() bool { return slices.Contains(h.Eligible(), bs[2]) }, time.Second, time.Millisecond)
}
