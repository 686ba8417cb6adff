package balance

// Real-time tests in this file: TestHTTPAndTCPChecks (HTTPCheck and
// TCPCheck against a real loopback server and a listener that never
// answers). The others run on the fake clock of testing/synctest.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// recorder is an inner Balancer that remembers the set Health gave it and
// picks its first backend, or the one named by key.
type recorder struct {
	mu  sync.Mutex
	set []Backend
}

func (r *recorder) Update(bs []Backend) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.set = append([]Backend(nil), bs...)
	return nil
}

func (r *recorder) Pick(ctx context.Context, key string) (Choice, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.set {
		if key == "" || b.Addr == key {
			return NewChoice(b), nil
		}
	}
	return Choice{}, ErrNoBackend
}

func (r *recorder) addrs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, b := range r.set {
		out = append(out, b.Addr)
	}
	sort.Strings(out)
	return out
}

func (r *recorder) weights() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := map[string]int{}
	for _, b := range r.set {
		w[b.Addr] = b.Weight
	}
	return w
}

func newHealth(t *testing.T, cfg HealthConfig, addrs ...string) (*Health, *recorder) {
	t.Helper()
	rec := &recorder{}
	h, err := NewHealth(rec, cfg)
	require.NoError(t, err)
	var bs []Backend
	for _, a := range addrs {
		bs = append(bs, Backend{Addr: a})
	}
	require.NoError(t, h.Update(bs))
	t.Cleanup(func() { _ = h.Close() })
	return h, rec
}

// fail reports n failed requests to addr through Pick and Done.
func fail(t *testing.T, h *Health, addr string, n int) {
	t.Helper()
	for range n {
		c, err := h.Pick(context.Background(), addr)
		require.NoError(t, err)
		c.Done(errors.New("connection refused"))
	}
}

func TestHealthConfigValidation(t *testing.T) {
	for name, cfg := range map[string]HealthConfig{
		"timeout above interval": {Interval: time.Second, Timeout: 2 * time.Second},
		"negative duration":      {SlowStart: -1},
		"ratio above one":        {MaxErrorRatio: 1.5},
		"panic above one":        {PanicThreshold: 2},
		"negative rise":          {Rise: -1},
		"base above max":         {BaseEjection: time.Hour, MaxEjection: time.Minute},
		"max failures":           {MaxFailures: -2},
	} {
		_, err := NewHealth(&recorder{}, cfg)
		require.ErrorIs(t, err, ErrInvalidConfig, name)
	}
	_, err := NewHealth(nil, HealthConfig{})
	require.ErrorIs(t, err, ErrInvalidConfig)
}

// TestPassiveEjectionBacksOff: five consecutive failures eject a backend;
// when the base ejection is over, one request tries it and, succeeding,
// brings it back; a second ejection after it came back lasts twice as
// long.
func TestPassiveEjectionBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHealth(t, HealthConfig{}, "a", "b", "c")
		fail(t, h, "a", 4)
		require.Equal(t, []string{"a", "b", "c"}, rec.addrs(), "four failures are not enough")
		c, _ := h.Pick(context.Background(), "a")
		c.Done(nil) // a success resets the streak
		fail(t, h, "a", 4)
		require.Equal(t, []string{"a", "b", "c"}, rec.addrs())
		fail(t, h, "a", 1)
		require.Equal(t, []string{"b", "c"}, rec.addrs(), "the fifth consecutive failure ejects")

		time.Sleep(5*time.Second - time.Millisecond)
		synctest.Wait()
		requireNoTrial(t, h)
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		trial := requireTrial(t, h, "a")
		trial.Done(nil)
		require.Equal(t, []string{"a", "b", "c"}, rec.addrs(), "back after the base ejection and a good trial")

		fail(t, h, "a", 5)
		require.Equal(t, []string{"b", "c"}, rec.addrs())
		time.Sleep(9 * time.Second)
		synctest.Wait()
		requireNoTrial(t, h, "the second ejection lasts twice as long")
		time.Sleep(1*time.Second + time.Millisecond)
		synctest.Wait()
		trial = requireTrial(t, h, "a")
		trial.Done(nil)
		require.Equal(t, []string{"a", "b", "c"}, rec.addrs())
	})
}

// requireTrial picks and requires the pick to be addr's half-open trial:
// a backend outside the inner balancer's set.
func requireTrial(t *testing.T, h *Health, addr string) Choice {
	t.Helper()
	c, err := h.Pick(context.Background(), "")
	require.NoError(t, err)
	require.True(t, c.trial, "a trial request")
	require.Equal(t, addr, c.Backend().Addr)
	return c
}

// requireNoTrial requires a pick to come from the inner balancer.
func requireNoTrial(t *testing.T, h *Health, msgAndArgs ...any) {
	t.Helper()
	c, err := h.Pick(context.Background(), "")
	require.NoError(t, err)
	require.False(t, c.trial, msgAndArgs...)
	c.Done(nil)
}

// TestPassiveHalfOpenTrial: when an ejection's time is up, exactly one
// request tries the backend; a failed trial ejects it for the same time
// again (not twice as long), an aborted one passes the trial to the next
// request, a successful one brings the backend back.
func TestPassiveHalfOpenTrial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHealth(t, HealthConfig{}, "a", "b", "c")
		fail(t, h, "a", 5)
		for range 4 { // down for 20 s: four failed trials, 5 s apart
			time.Sleep(5 * time.Second)
			synctest.Wait()
			trial := requireTrial(t, h, "a")
			requireNoTrial(t, h, "one trial request at a time")
			trial.Done(errors.New("connection refused"))
			require.Equal(t, []string{"b", "c"}, rec.addrs())
			requireNoTrial(t, h, "a failed trial ends the trial")
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		aborted := requireTrial(t, h, "a")
		aborted.Done(fmt.Errorf("%w: client gone", ErrAborted))
		require.Equal(t, []string{"b", "c"}, rec.addrs(), "an aborted trial decides nothing")
		good := requireTrial(t, h, "a")
		good.Done(nil)
		require.Equal(t, []string{"a", "b", "c"}, rec.addrs())
		requireNoTrial(t, h)
	})
}

// TestPassiveReentryAfterOutage: a backend down for a minute or so under
// steady traffic (a request every 10 ms), with passive checks only, is
// back in rotation within one base ejection of its recovery, whatever the
// phase of its recovery; backoffs that doubled while it was down used to
// keep it out for up to 40 s more.
func TestPassiveReentryAfterOutage(t *testing.T) {
	var worst time.Duration
	for k := range 10 {
		outage := time.Minute + time.Duration(k)*500*time.Millisecond
		synctest.Test(t, func(t *testing.T) {
			h, rec := newHealth(t, HealthConfig{}, "a", "b", "c")
			var dead atomic.Bool
			traffic := func(d time.Duration) {
				for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
					c, err := h.Pick(context.Background(), "")
					require.NoError(t, err)
					if c.Backend().Addr == "a" && dead.Load() {
						c.Done(errors.New("connection refused"))
					} else {
						c.Done(nil)
					}
				}
			}
			traffic(time.Second)
			dead.Store(true)
			traffic(outage)
			require.Equal(t, []string{"b", "c"}, rec.addrs())
			dead.Store(false)
			recovered := time.Now()
			for !slices.Contains(rec.addrs(), "a") && time.Since(recovered) < 10*time.Minute {
				traffic(10 * time.Millisecond)
			}
			worst = max(worst, time.Since(recovered))
		})
	}
	t.Logf("back in rotation at worst %v after recovering from outages of 60-64.5 s (BaseEjection 5s)", worst)
	require.LessOrEqual(t, worst, 5*time.Second+10*time.Millisecond)
}

// A request sent before the backend died can succeed after the first
// failures are in; its success must not reset their streak.
func TestPassiveLateSuccessDoesNotResetStreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHealth(t, HealthConfig{}, "a", "b", "c")
		early, _ := h.Pick(context.Background(), "a") // in flight across the failures
		fail(t, h, "a", 3)
		early.Done(nil)
		fail(t, h, "a", 2)
		require.Equal(t, []string{"b", "c"}, rec.addrs(), "five failures since the late success's request began eject")

		h2, rec2 := newHealth(t, HealthConfig{}, "a", "b", "c")
		fail(t, h2, "a", 3)
		late, _ := h2.Pick(context.Background(), "a") // sent after the failures
		late.Done(nil)
		fail(t, h2, "a", 4)
		require.Equal(t, []string{"a", "b", "c"}, rec2.addrs(), "a success of a request begun after the failures resets them")
	})
}

func TestPassiveErrorRatio(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHealth(t, HealthConfig{MaxFailures: -1}, "a", "b", "c")
		for i := range 19 {
			c, _ := h.Pick(context.Background(), "a")
			if i%2 == 0 {
				c.Done(errors.New("500"))
			} else {
				c.Done(nil)
			}
		}
		require.Equal(t, []string{"a", "b", "c"}, rec.addrs(), "below MinRequests")
		fail(t, h, "a", 1) // 20 requests, 11 failures
		require.Equal(t, []string{"b", "c"}, rec.addrs())
	})
}

// TestPanicThreshold: with fewer than half the backends healthy, traffic
// spreads over all of them.
func TestPanicThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHealth(t, HealthConfig{}, "a", "b", "c", "d")
		fail(t, h, "a", 5)
		fail(t, h, "b", 5)
		require.Equal(t, []string{"c", "d"}, rec.addrs(), "half healthy: no panic")
		fail(t, h, "c", 5)
		require.Equal(t, []string{"a", "b", "c", "d"}, rec.addrs(), "one of four healthy: spread over all")
		require.Len(t, h.Eligible(), 4)
	})
}

// TestActiveChecksHysteresis: one failed check does not take a backend
// down; Fall in a row do; Rise passes in a row bring it back.
func TestActiveChecksHysteresis(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down sync.Map
		check := func(ctx context.Context, b Backend) error {
			if _, ok := down.Load(b.Addr); ok {
				return errors.New("down")
			}
			return nil
		}
		h, rec := newHealth(t, HealthConfig{Check: check, Interval: time.Second, Timeout: 100 * time.Millisecond}, "a", "b", "c")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- h.Run(ctx) }()

		synctest.Wait()
		down.Store("a", true)
		time.Sleep(time.Second) // one failed check
		synctest.Wait()
		down.Delete("a")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []string{"a", "b", "c"}, rec.addrs(), "a blip does not flap")

		down.Store("a", true)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		require.Equal(t, []string{"a", "b", "c"}, rec.addrs())
		time.Sleep(time.Second) // third failure in a row
		synctest.Wait()
		require.Equal(t, []string{"b", "c"}, rec.addrs())

		down.Delete("a")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []string{"b", "c"}, rec.addrs(), "one pass is not enough")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []string{"a", "b", "c"}, rec.addrs())

		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
}

// TestActiveChecksRemoveWithinFallIntervals: a backend that dies at any
// phase of the check interval is out of the eligible set once Fall checks
// in a row have failed: no sooner than (Fall-1) intervals after its death
// and no later than Fall intervals plus the check Timeout (the results
// are applied when every backend's check is back, and another backend's
// check may hang until its Timeout). TestKilledBackendActiveChecks is the
// same on real servers.
func TestActiveChecksRemoveWithinFallIntervals(t *testing.T) {
	const interval, timeout, fall = time.Second, 300 * time.Millisecond, 3
	for phase := range 10 {
		synctest.Test(t, func(t *testing.T) {
			var dead atomic.Bool
			check := func(ctx context.Context, b Backend) error {
				switch {
				case b.Addr == "hangs": // answers only at the timeout
					<-ctx.Done()
					return nil
				case b.Addr == "a" && dead.Load():
					time.Sleep(10 * time.Millisecond) // a refused connection takes a moment too
					return errors.New("connection refused")
				}
				return nil
			}
			rec := &removalRecorder{watch: "a"}
			h, err := NewHealth(rec, HealthConfig{Check: check, Interval: interval, Timeout: timeout, Fall: fall})
			require.NoError(t, err)
			defer h.Close()
			require.NoError(t, h.Update([]Backend{{Addr: "a"}, {Addr: "b"}, {Addr: "hangs"}}))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- h.Run(ctx) }()

			time.Sleep(2*interval + time.Duration(phase)*interval/10)
			died := time.Now()
			dead.Store(true)
			time.Sleep(fall*interval + timeout + time.Millisecond)
			synctest.Wait()
			removed := rec.at()
			require.False(t, removed.IsZero(), "still eligible %v after its death", time.Since(died))
			took := removed.Sub(died)
			require.GreaterOrEqual(t, took, (fall-1)*interval, "out %v after its death, before Fall checks failed", took)
			require.LessOrEqual(t, took, fall*interval+timeout, "out %v after its death", took)
			cancel()
			require.ErrorIs(t, <-done, context.Canceled)
		})
	}
}

// removalRecorder is a recorder that notes when Health first published a
// set without the backend watch.
type removalRecorder struct {
	recorder
	watch   string
	removed time.Time
}

func (r *removalRecorder) Update(bs []Backend) error {
	_ = r.recorder.Update(bs)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.removed.IsZero() && !slices.ContainsFunc(bs, func(b Backend) bool { return b.Addr == r.watch }) {
		r.removed = time.Now()
	}
	return nil
}

func (r *removalRecorder) at() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.removed
}

// TestSlowStart: a backend that comes back ramps from a tenth of its
// weight to all of it over the window.
func TestSlowStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHealth(t, HealthConfig{SlowStart: 10 * time.Second}, "a", "b", "c")
		require.Equal(t, map[string]int{"a": 100, "b": 100, "c": 100}, rec.weights(), "the first set starts at full weight")
		fail(t, h, "a", 5)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		trial := requireTrial(t, h, "a")
		trial.Done(nil)
		require.Equal(t, 10, rec.weights()["a"], "back at a tenth")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.Equal(t, 50, rec.weights()["a"])
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.Equal(t, 100, rec.weights()["a"])
		require.Equal(t, 100, rec.weights()["b"])

		// A backend that joins later slow-starts too.
		require.NoError(t, h.Update([]Backend{{Addr: "a"}, {Addr: "b"}, {Addr: "c"}, {Addr: "d", Weight: 2}}))
		require.Equal(t, 20, rec.weights()["d"])
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, 200, rec.weights()["d"])
	})
}

func TestHealthUpdateKeepsStateByAddr(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHealth(t, HealthConfig{}, "a", "b", "c")
		fail(t, h, "a", 5)
		require.NoError(t, h.Update([]Backend{{Addr: "a"}, {Addr: "b"}, {Addr: "c"}, {Addr: "d"}}))
		require.Equal(t, []string{"b", "c", "d"}, rec.addrs(), "a stays ejected across an update")
		require.ErrorIs(t, h.Update([]Backend{{Addr: ""}}), ErrInvalidBackend)
		require.Equal(t, []string{"b", "c", "d"}, rec.addrs())
		// A Choice on a removed backend reports harmlessly.
		c, err := h.Pick(context.Background(), "b")
		require.NoError(t, err)
		require.NoError(t, h.Update([]Backend{{Addr: "c"}, {Addr: "d"}}))
		c.Done(errors.New("late"))
		time.Sleep(time.Minute)
		synctest.Wait()
		require.Equal(t, []string{"c", "d"}, rec.addrs())
	})
}

func TestHTTPAndTCPChecks(t *testing.T) {
	var status atomic.Int64
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/healthz", r.URL.Path)
		w.WriteHeader(int(status.Load()))
	}))
	addr := srv.Listener.Addr().String()
	ctx := context.Background()
	httpCheck, tcpCheck := HTTPCheck("/healthz"), TCPCheck()
	require.NoError(t, httpCheck(ctx, Backend{Addr: addr}))
	require.NoError(t, tcpCheck(ctx, Backend{Addr: addr}))
	status.Store(503)
	require.Error(t, httpCheck(ctx, Backend{Addr: addr}))
	status.Store(302)
	require.NoError(t, httpCheck(ctx, Backend{Addr: addr}), "a redirect means the backend answers")
	srv.Close()
	require.Error(t, httpCheck(ctx, Backend{Addr: addr}))
	require.Error(t, tcpCheck(ctx, Backend{Addr: addr}))

	// A check that hangs is cut by its context.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept and never answer
		}
	}()
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	require.Error(t, httpCheck(cctx, Backend{Addr: ln.Addr().String()}))
	took := time.Since(start)
	// The context's 100 ms, and a margin for a loaded machine.
	require.Less(t, took, 2*time.Second, "a check with a 100 ms context returned after %v", took)
}

// TestHealthPickAddr: a pinned request reaches only an eligible backend,
// and its outcome counts for passive health like any other.
func TestHealthPickAddr(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHealth(t, HealthConfig{}, "a", "b", "c")
		ctx := context.Background()
		for range 5 {
			c, err := h.PickAddr(ctx, "a")
			require.NoError(t, err)
			require.Equal(t, "a", c.Backend().Addr)
			c.Done(errors.New("refused"))
		}
		require.Equal(t, []string{"b", "c"}, rec.addrs(), "pinned failures eject too")
		_, err := h.PickAddr(ctx, "a")
		require.ErrorIs(t, err, ErrNoBackend)
		_, err = h.PickAddr(ctx, "zzz")
		require.ErrorIs(t, err, ErrNoBackend)
	})
}

// BenchmarkHealthPick is a Pick and Done through Health over a round
// robin, against the round robin alone: the price of passive checks.
func BenchmarkHealthPick(b *testing.B) {
	backends := []Backend{{Addr: "a"}, {Addr: "b"}, {Addr: "c"}}
	bare := NewRoundRobin()
	if err := bare.Update(backends); err != nil {
		b.Fatal(err)
	}
	h, err := NewHealth(NewRoundRobin(), HealthConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	if err := h.Update(backends); err != nil {
		b.Fatal(err)
	}
	for name, lb := range map[string]Balancer{"roundrobin": bare, "health": h} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				c, err := lb.Pick(ctx, "")
				if err != nil {
					b.Fatal(err)
				}
				c.Done(nil)
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					c, err := lb.Pick(ctx, "")
					if err != nil {
						b.Error(err)
						return
					}
					c.Done(nil)
				}
			})
		})
	}
}

// TestDoneAborted: a request its caller abandoned (Done with an error
// wrapping ErrAborted) counts neither as a failure, which would let
// clients eject a healthy backend, nor as a success, which would reset a
// failing backend's streak; it still ends the request's in-flight count.
func TestDoneAborted(t *testing.T) {
	aborted := fmt.Errorf("%w: the client hung up", ErrAborted)
	h, rec := newHealth(t, HealthConfig{MaxFailures: 1, MaxErrorRatio: -1}, "a", "b")
	for range 100 {
		c, err := h.Pick(context.Background(), "a")
		require.NoError(t, err)
		c.Done(aborted)
	}
	require.Equal(t, []string{"a", "b"}, rec.addrs(), "aborted requests ejected a backend")

	h2, rec2 := newHealth(t, HealthConfig{}, "a", "b", "c")
	fail(t, h2, "a", 4)
	c, _ := h2.Pick(context.Background(), "a")
	c.Done(aborted)
	fail(t, h2, "a", 1)
	require.Equal(t, []string{"b", "c"}, rec2.addrs(), "an aborted request reset the streak of failures")

	ll := NewLeastLoaded(LeastLoadedConfig{})
	require.NoError(t, ll.Update([]Backend{{Addr: "a"}}))
	c, err := ll.Pick(context.Background(), "")
	require.NoError(t, err)
	require.EqualValues(t, 1, c.ep.inflight.Load())
	c.Done(aborted)
	require.Zero(t, c.ep.inflight.Load(), "an aborted request still leaves the in-flight count")
}
