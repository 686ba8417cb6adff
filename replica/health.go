package replica

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"strings"
	"sync"
	"time"
)

// kickGap is the shortest time between probe rounds brought forward by
// failing queries (or a quarter of ProbeInterval, if shorter).
const kickGap = 250 * time.Millisecond

// probeLoop probes every node each ProbeInterval, and at once when a
// query saw a broken connection, until Close.
func (r *Router) probeLoop() {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.ProbeInterval)
	defer tick.Stop()
	// A burst of failing queries must not turn into back-to-back rounds:
	// a kicked round starts kickGap after the previous one at the earliest.
	gap := time.NewTimer(0)
	defer gap.Stop()
	for {
		r.probeRound()
		r.readyOnce.Do(func() { close(r.ready) })
		gap.Reset(min(r.cfg.ProbeInterval/4, kickGap))
		select {
		case <-r.closed:
			return
		case <-tick.C:
		case <-r.kick:
			select {
			case <-r.closed:
				return
			case <-gap.C:
			}
		}
	}
}

// Probe runs a round of probes now and applies it, for an operator or a
// promotion hook that knows the topology just changed. It returns when the
// new view is in place.
func (r *Router) Probe(ctx context.Context) error {
	select {
	case <-r.closed:
		return ErrClosed
	default:
	}
	if r.cfg.Probe == nil {
		return nil
	}
	done := make(chan struct{})
	r.wg.Add(1) // Close waits for the round even when ctx gave up on it
	go func() { defer r.wg.Done(); defer close(done); r.probeRound() }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// probeResult is one node's answer in a probe round.
type probeResult struct {
	st     State
	err    error
	sent   int64     // when the probe was sent, on the Router's monotonic clock
	sentAt time.Time // the same, wall time
}

// probeRound probes every node concurrently and applies the results
// together, so the view never mixes two rounds' idea of the primary.
func (r *Router) probeRound() {
	results := make([]probeResult, len(r.nodes))
	round := r.rounds.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ProbeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, m := range r.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := &results[i]
			res.sent, res.sentAt = r.now(), time.Now()
			res.st, res.err = r.cfg.Probe.Probe(ctx, m.DB)
		}()
	}
	wg.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	// Rounds overlap when Probe runs beside the loop: one that started
	// before the round already applied knows less, and must not undo it
	// (a promotion seen by Probe reverted by the loop's older round).
	if round < r.applied {
		return
	}
	r.applied = round
	for i, m := range r.nodes {
		res := results[i]
		if res.err != nil {
			m.fails++
			m.oks = 0
			m.lastErr = res.err
			if m.fails >= r.cfg.FailAfter || !m.probed {
				m.healthy = false
			}
			continue
		}
		m.fails = 0
		m.oks++
		m.lastErr = nil
		m.state, m.sentAt, m.probedAt = res.st, res.sent, res.sentAt
		if !m.probed || m.oks >= r.cfg.ReadmitAfter {
			m.healthy = true
		}
		m.probed = true
	}
	r.boundLags(results)
	_ = r.rebuild() // the balancer accepted these names in New: it cannot fail now
}

// suspect reports a failed query: a broken connection brings the next
// probe round forward, so a dead primary is noticed within a round trip
// instead of an interval.
func (r *Router) suspect(err error) {
	if err == nil || r.cfg.Probe == nil || !brokenConn(err) {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// brokenConn reports an error that says the server cannot be reached, as
// opposed to an error of the statement.
func brokenConn(err error) bool {
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.As(err, &ne) ||
		errors.Is(err, context.DeadlineExceeded) || connectionState(err)
}

// connectionState reports a server error whose SQLSTATE says the
// connection or the server is going away (class 08, and 57P01–57P03: admin
// or crash shutdown, cannot connect now), read through the SQLState method
// that pgx's and lib/pq's errors have, so this package needs no driver.
func connectionState(err error) bool {
	var s interface{ SQLState() string }
	if !errors.As(err, &s) {
		return false
	}
	code := s.SQLState()
	return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03"
}
