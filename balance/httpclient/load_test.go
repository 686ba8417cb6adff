package httpclient

// Real-time tests in this file, each on real HTTP clones on loopback under
// real concurrent traffic through an http.Client over the Transport:
// TestKillRestartUnderLoad (a clone killed and restarted: the errors the
// callers see, and how soon the clone is back), TestP2CAvoidsSlowClone
// (traffic shares, not durations) and TestStickyKeys. Bounds on durations
// add loadMargin for a loaded 2-core machine.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
)

// loadMargin is how much later than its configured bound a timer-driven
// event may happen on a busy 2-core machine (race detector on, other
// tests running): timers fire late and goroutines wait for a CPU.
const loadMargin = 500 * time.Millisecond

// answer is one response a load goroutine got.
type answer struct {
	clone string
	at    time.Time
}

// traffic runs closed-loop GETs through client from n goroutines until
// stop closes (or a bound on their number), and records every answer and
// every error.
type traffic struct {
	mu      sync.Mutex
	answers []answer
	errs    []error
	total   atomic.Int64
}

func (tr *traffic) run(client *http.Client, n int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for i := 0; i < 200_000; i++ { // bounded; stop ends it far sooner
				select {
				case <-stop:
					return
				default:
				}
				tr.total.Add(1)
				resp, err := client.Get("http://users/")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				tr.mu.Lock()
				if err != nil {
					tr.errs = append(tr.errs, err)
				} else {
					tr.answers = append(tr.answers, answer{resp.Header.Get("X-Clone"), time.Now()})
				}
				tr.mu.Unlock()
			}
		})
	}
	return &wg
}

// firstAnswer returns when clone first answered after t0.
func (tr *traffic) firstAnswer(clone string, t0 time.Time) (time.Time, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, a := range tr.answers {
		if a.clone == clone && a.at.After(t0) {
			return a.at, true
		}
	}
	return time.Time{}, false
}

// TestKillRestartUnderLoad kills one of three clones under load from
// eight callers, then restarts it on the same address. Idempotent calls
// ride through the kill on retries: at most 0.1% fail (measured: none).
// The clone is back within one health interval of its restart: Health
// runs active checks every interval with Rise 1, and passive ejections
// last one interval (BaseEjection), so whichever took it out lets it back
// within an interval (plus a check's round trip and loadMargin).
func TestKillRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds of real traffic")
	}
	cs := clones(t, 3)
	const interval = 250 * time.Millisecond
	h, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{
		Check: balance.HTTPCheck("/healthz"), Interval: interval, Timeout: interval,
		Rise: 1, Fall: 2, BaseEjection: interval, MaxEjection: interval,
	})
	require.NoError(t, err)
	defer h.Close()
	require.NoError(t, h.Update(backendsOf(cs...)))
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- h.Run(ctx) }()
	defer func() { cancel(); <-runDone }()

	tr, _ := newTransport(t, h, Config{Host: "users"})
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var load traffic
	stop := make(chan struct{})
	wg := load.run(client, 8, stop)

	time.Sleep(500 * time.Millisecond)
	cs[1].kill()
	time.Sleep(time.Second)
	killedUntil := time.Now()
	_, answeredDead := load.firstAnswer("clone-2", killedUntil.Add(-800*time.Millisecond))
	cs[1].restart(t)
	restarted := time.Now()
	var back time.Time
	for deadline := restarted.Add(interval + 5*time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var ok bool
		if back, ok = load.firstAnswer("clone-2", restarted); ok {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	total := load.total.Load()
	load.mu.Lock()
	errs := append([]error(nil), load.errs...)
	load.mu.Unlock()
	t.Logf("%d requests, %d errors; clone-2 back %v after its restart (interval %v)", total, len(errs), back.Sub(restarted), interval)
	require.Greater(t, total, int64(500), "too little traffic to measure")
	require.LessOrEqual(t, float64(len(errs)), float64(total)*0.001, "errors for idempotent calls above 0.1%%: %v", errs)
	require.False(t, answeredDead, "an answer from the dead clone")
	require.False(t, back.IsZero(), "the restarted clone never came back")
	require.LessOrEqual(t, back.Sub(restarted), interval+loadMargin, "the restarted clone came back after more than one interval")
}

// TestP2CAvoidsSlowClone: with one clone of three 25 times slower, round
// robin sends it a third of the traffic through the Transport, P2C at
// most a third of that, fed by nothing but the outcomes the Transport
// reports (in flight and latency to the end of each body).
func TestP2CAvoidsSlowClone(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds of real traffic")
	}
	cs := clones(t, 3)
	for _, c := range cs {
		c.delay.Store(int64(2 * time.Millisecond))
	}
	cs[0].delay.Store(int64(50 * time.Millisecond))

	share := func(lb balance.Balancer, d time.Duration) float64 {
		tr, _ := newTransport(t, lb, Config{})
		client := &http.Client{Transport: tr}
		var load traffic
		stop := make(chan struct{})
		wg := load.run(client, 8, stop)
		time.Sleep(d)
		close(stop)
		wg.Wait()
		load.mu.Lock()
		defer load.mu.Unlock()
		require.Empty(t, load.errs)
		slow := 0
		for _, a := range load.answers {
			if a.clone == "clone-1" {
				slow++
			}
		}
		return float64(slow) / float64(len(load.answers))
	}

	rrShare := share(newRR(t, backendsOf(cs...)), time.Second)
	p2c, err := balance.NewP2C(balance.P2CConfig{Decay: 300 * time.Millisecond, ForcePickAfter: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, p2c.Update(backendsOf(cs...)))
	share(p2c, 300*time.Millisecond) // learn the latencies
	p2cShare := share(p2c, 1500*time.Millisecond)
	t.Logf("slow clone's share: round robin %.1f%%, P2C %.1f%%", rrShare*100, p2cShare*100)
	require.InDelta(t, 1.0/3, rrShare, 0.03)
	require.LessOrEqual(t, p2cShare, rrShare/3)
}

// TestStickyKeys: with ConsistentHash keyed by a header or a cookie, every
// request of one key goes to the same clone, and the keys spread over
// the clones.
func TestStickyKeys(t *testing.T) {
	cs := clones(t, 3)
	for _, tc := range []struct {
		name string
		key  func(*http.Request) string
		set  func(*http.Request, string)
	}{
		{"header", HeaderKey("x-user"), func(r *http.Request, v string) { r.Header.Set("X-User", v) }},
		{"cookie", CookieKey("session"), func(r *http.Request, v string) { r.AddCookie(&http.Cookie{Name: "session", Value: v}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb, err := balance.NewConsistentHash(balance.ConsistentHashConfig{})
			require.NoError(t, err)
			require.NoError(t, lb.Update(backendsOf(cs...)))
			tr, _ := newTransport(t, lb, Config{Key: tc.key})
			client := &http.Client{Transport: tr}
			home := map[string]string{}
			used := map[string]bool{}
			for round := range 5 {
				for u := range 30 {
					user := fmt.Sprintf("user-%d", u)
					req, _ := http.NewRequest(http.MethodGet, "http://users/", nil)
					tc.set(req, user)
					resp, err := client.Do(req)
					require.NoError(t, err)
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					clone := resp.Header.Get("X-Clone")
					if round == 0 {
						home[user] = clone
						used[clone] = true
					}
					require.Equal(t, home[user], clone, "%s moved in round %d", user, round)
				}
			}
			require.Len(t, used, 3, "the keys spread over every clone")
		})
	}
}
