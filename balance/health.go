package balance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/observe"
)

// HealthConfig configures Health. The zero value is the default: passive
// checks on, no active checks, panic threshold 50%, no slow start.
type HealthConfig struct {
	// Check is the active health check, run by Run every Interval against
	// each backend; nil means no active checks. See HTTPCheck and TCPCheck.
	Check Check
	// Interval between active checks of a backend; default 5s.
	Interval time.Duration
	// Timeout of one active check; default 1s, at most Interval.
	Timeout time.Duration
	// Rise is how many consecutive passing checks bring a down backend
	// back (default 2); Fall how many consecutive failing checks take an
	// up backend down (default 3). One blip never flaps a backend.
	Rise, Fall int

	// MaxFailures is how many consecutive failed requests (Choice.Done
	// with an error other than ErrAborted) eject a backend; default 5, -1
	// disables.
	MaxFailures int
	// MaxErrorRatio ejects a backend whose share of failed requests within
	// ErrorWindow reaches it, once it has served MinRequests there; default
	// 0.5 with 20 requests in 10s. -1 disables.
	MaxErrorRatio float64
	ErrorWindow   time.Duration
	MinRequests   int
	// BaseEjection is how long the first ejection lasts (default 5s); each
	// ejection of a backend that has not stayed healthy for MaxEjection
	// since it last came back doubles it, up to MaxEjection (default 5m).
	// When an ejection's time is up, one request tries the backend
	// (half-open): a success brings it back, a failure ejects it for the
	// same time again, not twice as long, so a backend that recovers is
	// back within one such time of recovering however long it was down.
	BaseEjection, MaxEjection time.Duration

	// PanicThreshold: when fewer than this share of the backends are
	// healthy, traffic spreads over all of them, healthy or not, rather
	// than crush the survivors (Envoy's panic mode). Default 0.5; a tiny
	// value such as 1e-9 all but disables it.
	PanicThreshold float64

	// SlowStart ramps a backend that comes back (or joins) from a tenth of
	// its weight to all of it over this window, so a cold clone is not
	// flooded; 0 disables. Only weighted strategies (WeightedRoundRobin,
	// and the load-aware ones that read Weight) feel it.
	SlowStart time.Duration

	// Meter receives the balancer's metrics (see package observe): picks,
	// requests in flight, errors and latency per backend, health
	// transitions, ejections and panic mode, for any inner strategy. nil
	// means none, at no cost.
	Meter observe.Meter
	// Logger logs health transitions (a backend down or ejected at Warn,
	// back up at Info) and panic mode; nil means slog.Default().
	Logger *slog.Logger
}

func (c HealthConfig) withDefaults() (HealthConfig, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Interval, 5*time.Second)
	def(&c.Timeout, time.Second)
	def(&c.ErrorWindow, 10*time.Second)
	def(&c.BaseEjection, 5*time.Second)
	def(&c.MaxEjection, 5*time.Minute)
	defInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defInt(&c.Rise, 2)
	defInt(&c.Fall, 3)
	defInt(&c.MaxFailures, 5)
	defInt(&c.MinRequests, 20)
	if c.MaxErrorRatio == 0 {
		c.MaxErrorRatio = 0.5
	}
	if c.PanicThreshold == 0 {
		c.PanicThreshold = 0.5
	}
	switch {
	case c.Interval < 0 || c.Timeout < 0 || c.ErrorWindow < 0 || c.BaseEjection < 0 || c.MaxEjection < 0 || c.SlowStart < 0:
		return c, fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	case c.Timeout > c.Interval:
		return c, fmt.Errorf("%w: check timeout %v exceeds interval %v", ErrInvalidConfig, c.Timeout, c.Interval)
	case c.Rise < 1 || c.Fall < 1 || c.MinRequests < 1:
		return c, fmt.Errorf("%w: Rise, Fall and MinRequests must be at least 1", ErrInvalidConfig)
	case c.MaxFailures < -1:
		return c, fmt.Errorf("%w: MaxFailures %d", ErrInvalidConfig, c.MaxFailures)
	case c.MaxErrorRatio != -1 && !(c.MaxErrorRatio > 0 && c.MaxErrorRatio <= 1):
		return c, fmt.Errorf("%w: MaxErrorRatio %v not in (0, 1]", ErrInvalidConfig, c.MaxErrorRatio)
	case !(c.PanicThreshold > 0 && c.PanicThreshold <= 1):
		return c, fmt.Errorf("%w: PanicThreshold %v not in (0, 1]", ErrInvalidConfig, c.PanicThreshold)
	case c.BaseEjection > c.MaxEjection:
		return c, fmt.Errorf("%w: BaseEjection exceeds MaxEjection", ErrInvalidConfig)
	}
	return c, nil
}

// Health keeps unhealthy backends out of an inner Balancer, decoupled from
// how it picks: Health owns the full backend set and Updates the inner
// Balancer with the eligible part of it whenever health changes. It is a
// Balancer itself, so it composes with any strategy:
//
//	lb, err := balance.NewHealth(balance.NewP2C(...), balance.HealthConfig{Check: balance.HTTPCheck("/healthz")})
//	defer lb.Close()
//	go lb.Run(ctx) // active checks
//
// Passive checks learn from the outcomes callers report through
// Choice.Done: MaxFailures consecutive failures, or an error ratio above
// MaxErrorRatio, eject a backend for a time that doubles with each
// ejection after it came back. When the time is up the backend gets a
// half-open trial: Pick hands exactly one request to it, and that
// request's outcome decides: a success brings the backend back (through
// slow start when configured), a failure ejects it for the same time
// again, and an aborted request (ErrAborted) hands the trial to the next
// Pick. A dead backend thus costs one request per ejection time, and one
// that recovers is back within one ejection time, without active checks. Active checks
// (Run) mark a backend down after Fall failed checks and up after Rise
// passing ones. A backend is eligible when it is up and not ejected; when
// fewer than PanicThreshold of the backends are eligible, all of them are.
//
// Run runs the active checks until its context ends; a second Run while
// one runs returns ErrAlreadyRunning. Close stops the ejection and
// slow-start timers and a Run in progress, and returns once their
// goroutines have ended; it is idempotent. After Close, Update and Run
// return ErrClosed; Pick, PickAddr and Eligible keep serving the last
// eligible set, so requests in flight during a shutdown still find a
// backend, but health no longer changes.
type Health struct {
	inner Balancer
	cfg   HealthConfig
	log   *slog.Logger

	noBackend  observe.Counter
	panicGauge observe.Gauge

	mu        sync.Mutex
	all       []Backend
	states    map[string]*backendHealth
	ramp      *time.Timer // next slow-start step, while any backend ramps
	closed    bool
	running   bool                                      // a Run is in progress
	cancelRun context.CancelCauseFunc                   // ends the Run in progress; nil when none
	runs      sync.WaitGroup                            // the Run in progress, for Close to wait on
	timers    sync.WaitGroup                            // timer callbacks scheduled and not stopped
	lookup    atomic.Pointer[map[string]*backendHealth] // read by Pick
	eligible  atomic.Pointer[map[string]Backend]        // read by PickAddr
	trials    atomic.Pointer[[]trialSlot]               // read by Pick; nil when none
	panicking bool                                      // in panic mode at the last publish
}

// A trialSlot is an ejected backend whose time is up, awaiting the one
// request that will try it.
type trialSlot struct {
	st *backendHealth
	b  Backend
}

var _ Pinner = (*Health)(nil)

// NewHealth returns a Health in front of inner.
func NewHealth(inner Balancer, cfg HealthConfig) (*Health, error) {
	if inner == nil {
		return nil, fmt.Errorf("%w: nil inner balancer", ErrInvalidConfig)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &Health{inner: inner, cfg: cfg, states: map[string]*backendHealth{}, log: cfg.Logger,
		noBackend:  observe.NewCounter(cfg.Meter, observe.BalanceNoBackend),
		panicGauge: observe.NewGauge(cfg.Meter, observe.BalancePanic)}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.panicGauge.Set(0)
	empty := map[string]*backendHealth{}
	h.lookup.Store(&empty)
	none := map[string]Backend{}
	h.eligible.Store(&none)
	return h, nil
}

// backendHealth is one backend's health, shared by every Choice that
// reports on it.
type backendHealth struct {
	h    *Health
	addr string
	m    backendMetrics

	// Passive counters, updated on the Done path without the lock.
	consecutive atomic.Int64
	// failed counts every failure ever recorded. A Choice notes it at
	// Pick, so that a success of a request that began before a failure
	// (a slow reply sent just before the backend died) does not reset the
	// streak of failures that came after it.
	failed      atomic.Uint32
	trialOpen   atomic.Bool // in trial, and no request has taken it yet
	requests    atomic.Int64
	failures    atomic.Int64
	windowStart atomic.Int64 // unix nanos

	// Guarded by h.mu.
	activeDown   bool
	streak       int // consecutive check results against the current state
	ejected      bool
	ejections    int
	backoff      time.Duration // of the current ejection; a failed trial waits it again
	trial        bool          // ejected, its time up: one request may try it
	readmittedAt time.Time
	readmit      *time.Timer
	upSince      time.Time // start of slow start
	removed      bool
	state        backendState // as last counted by noteStateLocked
}

// Update sets the full backend set; Health passes the eligible part of it
// to the inner Balancer. A backend keeps its health across updates by
// Addr; a new one starts healthy (and slow-starts, when configured, unless
// it is in the very first set).
func (h *Health) Update(backends []Backend) error {
	if err := validate(backends); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	first := len(h.states) == 0 && len(h.all) == 0
	next := make(map[string]*backendHealth, len(backends))
	now := time.Now()
	for _, b := range backends {
		st := h.states[b.Addr]
		if st == nil {
			st = &backendHealth{h: h, addr: b.Addr, m: newBackendMetrics(h.cfg.Meter, b.Addr)}
			st.windowStart.Store(now.UnixNano())
			if !first {
				st.upSince = now
			}
		}
		next[b.Addr] = st
	}
	for addr, st := range h.states {
		if next[addr] == nil {
			st.removed = true
			h.stopTimerLocked(st.readmit)
		}
	}
	h.all = append([]Backend(nil), backends...)
	h.states = next
	h.lookup.Store(&next)
	return h.publishLocked()
}

// Pick picks from the eligible backends through the inner Balancer, or
// hands the request to an ejected backend's half-open trial.
func (h *Health) Pick(ctx context.Context, key string) (Choice, error) {
	if ts := h.trials.Load(); ts != nil && ctx.Err() == nil {
		for _, t := range *ts {
			if t.st.trialOpen.CompareAndSwap(true, false) {
				c := NewChoice(t.b)
				c.health, c.fails, c.trial = t.st, t.st.failed.Load(), true
				if t.st.m.on {
					t.st.picked(&c)
				}
				return c, nil
			}
		}
	}
	c, err := h.inner.Pick(ctx, key)
	if err != nil {
		if errors.Is(err, ErrNoBackend) {
			h.noBackend.Inc()
		}
		return c, err
	}
	c.health = (*h.lookup.Load())[c.Backend().Addr]
	if c.health != nil {
		c.fails = c.health.failed.Load()
		if c.health.m.on {
			c.health.picked(&c)
		}
	}
	return c, nil
}

// PickAddr returns a Choice for the backend at addr when it is eligible;
// see Pinner. With an inner Balancer that is not a Pinner, the Choice
// reports to Health's passive checks only.
func (h *Health) PickAddr(ctx context.Context, addr string) (Choice, error) {
	if err := ctx.Err(); err != nil {
		return Choice{}, err
	}
	b, ok := (*h.eligible.Load())[addr]
	if !ok {
		return Choice{}, fmt.Errorf("%w: %q is not eligible", ErrNoBackend, addr)
	}
	c := Choice{}
	if p, ok := h.inner.(Pinner); ok {
		var err error
		if c, err = p.PickAddr(ctx, addr); err != nil {
			return c, err
		}
	} else {
		c = NewChoice(b)
	}
	c.health = (*h.lookup.Load())[addr]
	if c.health != nil {
		c.fails = c.health.failed.Load()
		if c.health.m.on {
			c.health.picked(&c)
		}
	}
	return c, nil
}

// Eligible returns the backends traffic currently goes to.
func (h *Health) Eligible() []Backend {
	h.mu.Lock()
	defer h.mu.Unlock()
	eligible, _, _ := h.eligibleLocked(time.Now())
	return eligible
}

// Close stops Health's timers and a Run in progress, and returns once
// their goroutines have ended. Picks keep working on the last eligible
// set; Update and Run return ErrClosed. Close is idempotent.
func (h *Health) Close() error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		h.trials.Store(nil) // a trial's outcome would no longer be applied
		for _, st := range h.states {
			h.stopTimerLocked(st.readmit)
		}
		h.stopTimerLocked(h.ramp)
		if h.cancelRun != nil {
			h.cancelRun(ErrClosed)
		}
	}
	h.mu.Unlock()
	// No Run or timer starts once closed is set, so the counts only fall.
	h.runs.Wait()
	h.timers.Wait()
	return nil
}

// afterFuncLocked schedules f on a timer that Close waits for. Callers
// check h.closed first, under h.mu.
func (h *Health) afterFuncLocked(d time.Duration, f func()) *time.Timer {
	h.timers.Add(1)
	return time.AfterFunc(d, func() {
		defer h.timers.Done()
		f()
	})
}

// stopTimerLocked stops a timer made by afterFuncLocked; when that keeps
// its callback from running, the callback will not report to h.timers, so
// stopTimerLocked does.
func (h *Health) stopTimerLocked(t *time.Timer) {
	if t != nil && t.Stop() {
		h.timers.Done()
	}
}

// slowStartScale is the factor weights are multiplied by when slow start
// is on, so that a weight-1 backend can ramp in steps of a tenth.
const slowStartScale = 100

// eligibleLocked computes the eligible set and, when a backend is still
// ramping up, when its weight next needs raising.
func (h *Health) eligibleLocked(now time.Time) (eligible []Backend, nextRamp time.Duration, panicking bool) {
	for _, b := range h.all {
		if st := h.states[b.Addr]; !st.activeDown && !st.ejected {
			eligible = append(eligible, b)
		}
	}
	if len(h.all) > 0 && float64(len(eligible)) < h.cfg.PanicThreshold*float64(len(h.all)) {
		eligible = append(eligible[:0], h.all...) // panic: spread over all
		panicking = true
	}
	if h.cfg.SlowStart <= 0 {
		return eligible, 0, panicking
	}
	step := h.cfg.SlowStart / 10
	for i, b := range eligible {
		factor := 1.0
		if st := h.states[b.Addr]; !st.upSince.IsZero() {
			if since := now.Sub(st.upSince); since < h.cfg.SlowStart {
				factor = math.Max(0.1, float64(since)/float64(h.cfg.SlowStart))
				nextRamp = step
			}
		}
		eligible[i].Weight = max(1, int(math.Round(float64(b.weight()*slowStartScale)*factor)))
	}
	return eligible, nextRamp, panicking
}

// publishLocked pushes the eligible set to the inner Balancer and, while a
// backend ramps up, schedules the next step.
func (h *Health) publishLocked() error {
	eligible, nextRamp, panicking := h.eligibleLocked(time.Now())
	if err := h.inner.Update(eligible); err != nil {
		return err
	}
	if h.panicking != panicking {
		healthy := 0
		for _, st := range h.states {
			if st.stateLocked() == stateUp {
				healthy++
			}
		}
		h.notePanicLocked(panicking, healthy, len(h.all))
	}
	byAddr := make(map[string]Backend, len(eligible))
	for _, b := range eligible {
		byAddr[b.Addr] = b
	}
	h.eligible.Store(&byAddr)
	var trials []trialSlot
	for _, b := range h.all {
		if st := h.states[b.Addr]; st.trial && !st.activeDown {
			trials = append(trials, trialSlot{st, b})
		}
	}
	if trials == nil {
		h.trials.Store(nil)
	} else {
		h.trials.Store(&trials)
	}
	if nextRamp > 0 && !h.closed && h.ramp == nil {
		h.ramp = h.afterFuncLocked(nextRamp, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.ramp = nil
			if !h.closed {
				_ = h.publishLocked()
			}
		})
	}
	return nil
}

// record counts one request outcome for passive health; failsAtPick is
// st.failed when the request was picked. A success resets the streak of
// consecutive failures only if no failure was recorded since its request
// began: successes of requests sent before a backend died, completing
// after the first failures, must not keep it in rotation.
func (st *backendHealth) record(err error, failsAtPick uint32) {
	cfg := &st.h.cfg
	if err == nil {
		if st.consecutive.Load() != 0 && st.failed.Load() == failsAtPick {
			st.consecutive.Store(0)
		}
		st.requests.Add(1)
		return
	}
	now := time.Now().UnixNano()
	if start := st.windowStart.Load(); now-start > int64(cfg.ErrorWindow) && st.windowStart.CompareAndSwap(start, now) {
		st.requests.Store(0)
		st.failures.Store(0)
	}
	st.failed.Add(1)
	n := st.consecutive.Add(1)
	req, fail := st.requests.Add(1), st.failures.Add(1)
	if (cfg.MaxFailures > 0 && n >= int64(cfg.MaxFailures)) ||
		(cfg.MaxErrorRatio > 0 && req >= int64(cfg.MinRequests) && float64(fail) >= cfg.MaxErrorRatio*float64(req)) {
		st.h.eject(st)
	}
}

// eject takes st out of rotation for its backoff, then brings it back.
func (h *Health) eject(st *backendHealth) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st.ejected || st.removed || h.closed {
		return
	}
	now := time.Now()
	if !st.readmittedAt.IsZero() && now.Sub(st.readmittedAt) > h.cfg.MaxEjection {
		st.ejections = 0 // healthy long enough: forgive earlier ejections
	}
	st.ejections++
	backoff := h.cfg.BaseEjection << min(st.ejections-1, 30)
	if backoff > h.cfg.MaxEjection || backoff <= 0 {
		backoff = h.cfg.MaxEjection
	}
	st.ejected, st.backoff = true, backoff
	st.m.ejections.Inc()
	h.noteStateLocked(st)
	st.readmit = h.afterFuncLocked(backoff, func() { h.offerTrial(st) })
	_ = h.publishLocked()
}

// offerTrial opens st's half-open trial when its ejection's time is up.
func (h *Health) offerTrial(st *backendHealth) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !st.ejected || st.removed || h.closed {
		return
	}
	st.trial = true
	st.trialOpen.Store(true)
	_ = h.publishLocked()
}

// trialDone applies the outcome of st's trial request.
func (st *backendHealth) trialDone(err error, aborted bool) {
	h := st.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if !st.trial || st.removed || h.closed {
		return
	}
	switch {
	case aborted: // says nothing: the next request tries
		st.trialOpen.Store(true)
	case err == nil:
		h.readmitLocked(st)
	default: // still down: the same time again
		st.trial = false
		st.m.ejections.Inc()
		st.readmit = h.afterFuncLocked(st.backoff, func() { h.offerTrial(st) })
		_ = h.publishLocked()
	}
}

// readmitLocked brings st back after a successful trial.
func (h *Health) readmitLocked(st *backendHealth) {
	now := time.Now()
	st.ejected, st.trial = false, false
	st.readmittedAt = now
	st.upSince = now
	st.consecutive.Store(0)
	st.requests.Store(0)
	st.failures.Store(0)
	st.windowStart.Store(now.UnixNano())
	h.noteStateLocked(st)
	_ = h.publishLocked()
}
