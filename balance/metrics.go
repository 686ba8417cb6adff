package balance

import (
	"context"
	"log/slog"

	"github.com/scaleout/scaleout/observe"
)

// Health reports the metrics of observe's table for package balance
// through HealthConfig.Meter: it sees every Pick and Done, whatever the
// inner strategy, so the strategies themselves carry no instruments and a
// balancer without metrics pays nothing for them.

// backendState is a backend's health as metrics and logs tell it.
type backendState uint8

const (
	stateUp backendState = iota
	stateDown
	stateEjected
)

func (s backendState) String() string {
	switch s {
	case stateDown:
		return "down"
	case stateEjected:
		return "ejected"
	}
	return "up"
}

// backendMetrics are one backend's instruments, bound when Update adds it.
type backendMetrics struct {
	on        bool // a Meter was given: time the requests
	picks     observe.Counter
	inflight  observe.UpDownCounter
	errors    observe.Counter
	duration  observe.Histogram
	healthy   observe.Gauge
	toState   [3]observe.Counter // health_transitions by new state
	ejections observe.Counter
}

func newBackendMetrics(m observe.Meter, addr string) backendMetrics {
	bm := backendMetrics{
		on:        m != nil,
		picks:     observe.NewCounter(m, observe.BalancePicks, addr),
		inflight:  observe.NewUpDownCounter(m, observe.BalanceInFlight, addr),
		errors:    observe.NewCounter(m, observe.BalanceErrors, addr),
		duration:  observe.NewHistogram(m, observe.BalanceDuration, addr),
		healthy:   observe.NewGauge(m, observe.BalanceHealthy, addr),
		ejections: observe.NewCounter(m, observe.BalanceEjections, addr),
	}
	for s := range bm.toState {
		bm.toState[s] = observe.NewCounter(m, observe.BalanceHealthTransitions, addr, backendState(s).String())
	}
	bm.healthy.Set(1)
	return bm
}

// picked counts a pick of st into c, and starts its clock unless the inner
// strategy already did.
func (st *backendHealth) picked(c *Choice) {
	st.m.picks.Inc()
	st.m.inflight.Add(1)
	if !c.timed {
		c.start = nanotime()
	}
}

// finished counts the end of c's request.
func (st *backendHealth) finished(c *Choice, err error, aborted bool) {
	st.m.inflight.Add(-1)
	if aborted {
		return
	}
	if err != nil {
		st.m.errors.Inc()
	}
	st.m.duration.Observe(float64(nanotime()-c.start) / 1e9)
}

// stateLocked is st's health now.
func (st *backendHealth) stateLocked() backendState {
	switch {
	case st.activeDown:
		return stateDown
	case st.ejected:
		return stateEjected
	}
	return stateUp
}

// noteStateLocked counts and logs a change of st's health, if any, after
// an active check, an ejection or a readmission.
func (h *Health) noteStateLocked(st *backendHealth) {
	s := st.stateLocked()
	if s == st.state {
		return
	}
	st.state = s
	st.m.toState[s].Inc()
	st.m.healthy.SetBool(s == stateUp)
	level := slog.LevelWarn
	if s == stateUp {
		level = slog.LevelInfo
	}
	h.log.LogAttrs(context.Background(), level, "balance: backend health changed",
		slog.String("backend", st.addr), slog.String("state", s.String()))
}

// notePanicLocked counts and logs entering and leaving panic mode.
func (h *Health) notePanicLocked(panicking bool, eligible, all int) {
	if panicking == h.panicking {
		return
	}
	h.panicking = panicking
	h.panicGauge.SetBool(panicking)
	if panicking {
		h.log.LogAttrs(context.Background(), slog.LevelWarn, "balance: panic mode: too few healthy backends, spreading over all",
			slog.Int("healthy", eligible), slog.Int("backends", all))
	} else {
		h.log.LogAttrs(context.Background(), slog.LevelInfo, "balance: panic mode over",
			slog.Int("healthy", eligible), slog.Int("backends", all))
	}
}
