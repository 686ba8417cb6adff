package replica

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// kickGap is the shortest time between probe rounds brought forward by
// failing queries (or a quarter of ProbeInterval, if shorter).
const kickGap = 250 * time.Millisecond

// probeLoop probes every node each ProbeInterval, and at once when a
// query saw a broken connection, until Close. A round lasts until its
// slowest probe ends (at most ConnectTimeout + ProbeTimeout): ticks that
// fall inside it are dropped, so rounds never pile up behind a slow node.
func (r *Router) probeLoop() {
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
// new view is in place, ctx's error when ctx ends first (the round still
// completes), or ErrClosed when the Router is closed before or during the
// round (which is then not applied).
func (r *Router) Probe(ctx context.Context) error {
	if r.cfg.Probe == nil {
		if r.isClosed() {
			return ErrClosed
		}
		return nil
	}
	done := make(chan struct{})
	if err := r.spawn(func() { defer close(done); r.probeRound() }); err != nil {
		return err
	}
	select {
	case <-done:
		if r.isClosed() {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// probeResult is one node's answer in a probe round.
type probeResult struct {
	st       State
	err      error
	sent     int64     // when the probe query was sent, on the Router's monotonic clock
	sentAt   time.Time // the same, wall time
	answered int64     // when its answer came, on the monotonic clock
}

// probeRound probes every node concurrently and applies the results
// together, so the view never mixes two rounds' idea of the primary.
func (r *Router) probeRound() {
	results := make([]probeResult, len(r.nodes))
	round := r.rounds.Add(1)
	var wg sync.WaitGroup
	for i, m := range r.nodes {
		wg.Go(func() { results[i] = r.probeNode(m) })
	}
	wg.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	// A round that Close cut short saw its own cancellation, not the
	// nodes: it must not count as failed probes.
	if r.ctx.Err() != nil {
		return
	}
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

// probeNode probes one node over its probe connection. Opening the
// connection and answering the probe are bounded apart (ConnectTimeout,
// ProbeTimeout): a slow dial or handshake is not a slow server, and a
// refused or reset connection fails at once either way. The probe is
// reckoned sent once the connection is open, as the server cannot have
// answered anything before.
func (r *Router) probeNode(m *member) probeResult {
	conn, err := r.takeProbeConn(m)
	if err != nil {
		return probeResult{err: err, sent: r.now(), sentAt: time.Now()}
	}
	ctx, cancel := context.WithTimeout(withProbedNode(r.ctx, m.Name), r.cfg.ProbeTimeout)
	defer cancel()
	res := probeResult{sent: r.now(), sentAt: time.Now()}
	res.st, res.err = r.cfg.Probe.Probe(ctx, conn)
	res.answered = r.now()
	r.putProbeConn(m, conn, res.err)
	return res
}

// takeProbeConn returns m's kept probe connection, or opens one from its
// pool within ConnectTimeout when there is none (the first round, after a
// failed probe, or when another round's probe of m holds it).
func (r *Router) takeProbeConn(m *member) (*sql.Conn, error) {
	m.probeMu.Lock()
	conn := m.probeConn
	m.probeConn = nil
	m.probeMu.Unlock()
	if conn != nil {
		return conn, nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.ConnectTimeout)
	defer cancel()
	conn, err := m.DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("replica: %s: opening the probe connection: %w", m.Name, err)
	}
	return conn, nil
}

// putProbeConn keeps conn as m's probe connection after a successful
// probe (giving it back to the pool when another is kept already), and
// discards it after a failed one: it may be broken, or still busy with
// a query the server never answered, and the pool must not reuse it.
func (r *Router) putProbeConn(m *member, conn *sql.Conn, failed error) {
	if failed != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return
	}
	m.probeMu.Lock()
	if m.probeConn == nil {
		m.probeConn, conn = conn, nil
	}
	m.probeMu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// closeProbeConns gives the kept probe connections back to their pools.
// Close calls it once every round has ended.
func (r *Router) closeProbeConns() {
	for _, m := range r.nodes {
		m.probeMu.Lock()
		conn := m.probeConn
		m.probeConn = nil
		m.probeMu.Unlock()
		if conn != nil {
			_ = conn.Close()
		}
	}
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
