package failover

import (
	"context"
	"sync"
	"time"
)

// An Elector chooses one leader among many candidates for one role. A
// leader holds a lease that it renews; when it stops renewing (it died,
// hung or was cut off), the lease runs out and another candidate takes
// over with a larger fencing token.
//
// The promises every Elector keeps (failover/electortest checks each):
//   - At most one Term lasts at a time: a Term ends (its Err is non-nil)
//     by its Deadline, before the next one starts, SafetyMargin of clock
//     drift aside, and every Term's Token is larger than every earlier
//     Term's. Done closes when the Term ends, but a timer closes it and
//     may run late on a busy machine: check Err before each act of
//     leadership.
//   - A leader that renews keeps its Term, token and Leader entry for as
//     long as it renews; its Deadline moves forward with each renewal and
//     is never more than a Lease ahead.
//   - A leader that stops renewing (cut off from the store) ends its own
//     Term at its Deadline with ErrLeaseExpired; another candidate leads
//     within about Lease + RetryInterval, never before that Deadline, with
//     a larger token; the old leader, reconnected, sees the new one and
//     does not take over while the new leader renews.
//
// Implementations: Memory (this process: tests, and goroutines that
// compete) and failover/rediselector; both pass failover/electortest.
type Elector interface {
	// Campaign blocks until this candidate leads, then returns its Term,
	// whose ID is the candidate's Config.ID; or returns ctx.Err() as soon
	// as ctx ends. Among candidates campaigning for a vacant role exactly
	// one wins. Campaigning while leading returns the current Term.
	Campaign(ctx context.Context) (*Term, error)
	// Resign gives up leadership at once: when it returns, the Term has
	// ended (Done closed, Err ErrResigned); when it returns nil, the role
	// is also vacant and the candidates campaigning for it are woken to
	// take over without waiting for the lease or their RetryInterval. It
	// does nothing and returns nil when this candidate does not lead,
	// whoever else leads.
	Resign(ctx context.Context) error
	// Leader reports who leads and with which token, the ID and Token of
	// the leader's Term; or ErrNoLeader when nobody does (the role was
	// never taken, or its leader resigned or its lease ran out).
	Leader(ctx context.Context) (Leader, error)
}

// An Observer streams changes of leadership, vacancies included.
type Observer interface {
	// Observe sends the current Leader at once (Vacant on a role nobody
	// leads), then each change: each new leader with its token, and each
	// vacancy, after a Resign or a lease that ran out, as a Leader with
	// Vacant set. When ctx ends it closes the channel promptly. A slow
	// reader misses intermediate changes, never the latest.
	Observe(ctx context.Context) (<-chan Leader, error)
}

// Leader is who leads a role.
type Leader struct {
	ID     string // the candidate's Config.ID
	Token  uint64 // its fencing token
	Vacant bool   // nobody leads: ID and Token are the last leader's, if known
}

// A Term is one leadership of one candidate.
//
// Self-fencing: the term ends at a local monotonic deadline, a safety
// margin before the lease could have run out in the store, whether or not
// the store can be reached. A leader that is paused or partitioned stops
// acting before any other candidate can be elected, so two leaders never
// act at once as long as clocks run at about the same rate (the margin
// covers the drift). Err reads the clock: from the deadline on it reports
// ErrLeaseExpired, however late the machine runs timers, so check it
// before each action. Done is closed by a timer at the deadline: on a
// busy machine that can be some milliseconds later, so it is the signal
// to stop, not the proof that one may still act.
type Term struct {
	ID    string // this candidate
	Token uint64 // fencing token: larger than every earlier leader's

	mu       sync.Mutex
	deadline time.Time // local monotonic; the term ends here unless extended
	done     chan struct{}
	err      error
	timer    *time.Timer
}

// NewTerm is for Elector implementations: a Term that ends at deadline
// unless Extend moves it.
func NewTerm(id string, token uint64, deadline time.Time) *Term {
	t := &Term{ID: id, Token: token, deadline: deadline, done: make(chan struct{})}
	// The lock keeps a timer that fires at once (a deadline already past)
	// from reading t.timer in End before it is set.
	t.mu.Lock()
	t.timer = time.AfterFunc(time.Until(deadline), func() { t.End(ErrLeaseExpired) })
	t.mu.Unlock()
	return t
}

// Done closes when the term ends: lease expired (self-fenced), lost to
// another candidate, or resigned.
func (t *Term) Done() <-chan struct{} { return t.done }

// Err reports why the term ended (ErrLeaseExpired, ErrLost, ErrResigned),
// or nil while it lasts. It reads the clock: once the deadline has passed
// it ends the term with ErrLeaseExpired, without waiting for the timer.
func (t *Term) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expireLocked()
	return t.err
}

// expireLocked ends the term if its deadline has passed: the timer that
// does it may run late on a busy machine.
func (t *Term) expireLocked() {
	if t.err == nil && !time.Now().Before(t.deadline) {
		t.endLocked(ErrLeaseExpired)
	}
}

// Deadline is when the term ends unless it is extended.
func (t *Term) Deadline() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.deadline
}

// Extend moves the deadline after a successful renewal; it does nothing
// once the term has ended, its deadline passed included (a renewal that
// comes back too late does not revive it). For Elector implementations.
func (t *Term) Extend(deadline time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.expireLocked(); t.err != nil {
		return false
	}
	t.deadline = deadline
	t.timer.Reset(time.Until(deadline))
	return true
}

// End ends the term with cause, once. For Elector implementations.
func (t *Term) End(cause error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.endLocked(cause)
}

func (t *Term) endLocked(cause error) {
	if t.err != nil {
		return
	}
	t.err = cause
	t.timer.Stop()
	close(t.done)
}
