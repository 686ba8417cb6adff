package balance_test

// Real-time tests in this file, each about real HTTP backends on loopback
// that die or come back under real traffic: TestKilledBackendActiveChecks
// (HTTPCheck against a killed server), TestKilledBackendPassiveChecks
// (requests failing on a closed listener), TestRestartedBackendPassive
// Checks (a listener back on the dead backend's address). The rules they
// exercise are tested on the fake clock in health_test.go; these assert
// bounds derived from their configuration plus loadMargin.

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
	// A timeout only guards against a hang: the dead backend refuses
	// connections at once, and a live one that a busy machine makes slow
	// must not count as failed.
	client := &http.Client{Timeout: 10 * time.Second}
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

// removals is an inner Balancer that notes when Health last took a given
// backend out of the set it publishes: the moment of the code's own
// decision, rather than a poll of Eligible (which runs late on a loaded
// machine).
type removals struct {
	balance.Balancer
	watch string

	mu      sync.Mutex
	in      bool
	removed time.Time // of the last transition from in to out
}

func (r *removals) Update(bs []balance.Backend) error {
	if err := r.Balancer.Update(bs); err != nil {
		return err
	}
	in := slices.ContainsFunc(bs, func(b balance.Backend) bool { return b.Addr == r.watch })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.in && !in {
		r.removed = time.Now()
	}
	r.in = in
	return nil
}

// out reports whether the backend is out of the set, and since when.
func (r *removals) out() (bool, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.in && !r.removed.IsZero(), r.removed
}

// loadMargin is how much later than its configured bound a timer-driven
// event may happen on a busy 2-core machine (load average 10 and more,
// race detector on): timers fire late and goroutines wait for a CPU.
const loadMargin = 500 * time.Millisecond

// TestKilledBackendActiveChecks kills a real backend under real load with
// only active checks on: it leaves the eligible set once Fall checks in a
// row have failed, and no pick begun after that goes to it. The Fall-th
// failing check starts at most Fall intervals after the death and ends
// within Timeout (checkAll applies results when every backend's check is
// back), so it is out within Fall*Interval + Timeout, plus loadMargin for
// the machine's timer and scheduling delays; TestActiveChecksRemoveWithin
// FallIntervals asserts the bound exactly on the fake clock.
func TestKilledBackendActiveChecks(t *testing.T) {
	srvs, bs := clones(t, 3)
	// Timeout is Interval, its maximum: a shorter one fails checks of live
	// backends on a loaded machine. Panic mode is off, so that a survivor
	// flapping out cannot bring the dead backend back into rotation.
	const interval, timeout, fall = 100 * time.Millisecond, 100 * time.Millisecond, 2
	inner := &removals{Balancer: balance.NewRoundRobin(), watch: bs[1].Addr}
	h, err := balance.NewHealth(inner, balance.HealthConfig{
		Check: balance.HTTPCheck("/"), Interval: interval, Timeout: timeout, Fall: fall,
		MaxFailures: -1, MaxErrorRatio: -1, PanicThreshold: 1e-9,
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
	killed := time.Now() // before the kill: its checks may fail from here on
	srvs[1].CloseClientConnections()
	srvs[1].Close()
	bound := fall*interval + timeout
	for deadline := time.Now().Add(bound + 5*time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if out, _ := inner.out(); out {
			break
		}
	}
	time.Sleep(200 * time.Millisecond) // picks after the removal
	close(stop)
	wg.Wait()
	cancel()
	<-runDone

	out, removed := inner.out()
	require.True(t, out, "the dead backend was never taken out")
	took := removed.Sub(killed)
	if took < 0 {
		// Slow checks of the then live backend failed Fall times in a row
		// just before the kill: it was out already.
		took = 0
	}
	t.Logf("taken out %v after it died (Fall %d × Interval %v + Timeout %v = %v)", took, fall, interval, timeout, bound)
	require.Less(t, took, bound+loadMargin,
		"taken out %v after it died; Fall × Interval + Timeout is %v, and %v more is allowed for a loaded machine", took, bound, loadMargin)
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
		require.Less(t, took, base+time.Second, "re-entered %v after the restart; BaseEjection is %v, and a second more is allowed for a loaded machine", took, base)
	case <-time.After(30 * time.Second):
		t.Fatal("the restarted backend never served again")
	}
	// The trial's success is applied when its Done is called, right after
	// the response: no bound of Health's, only the loaded machine's pace.
	require.Eventually(t, func() bool { return slices.Contains(h.Eligible(), bs[2]) }, 10*time.Second, time.Millisecond,
		"the restarted backend served its trial request but is not eligible 10 s later")
}
