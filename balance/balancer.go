package balance

import (
	"context"
	"errors"
)

// A Balancer spreads requests over a set of backends.
//
// Pick and Update may be called concurrently: Update swaps the set
// atomically (no Pick sees it empty or half built), and a Choice made
// before an Update stays valid; its Done still reports to the backend's
// statistics, which a backend keeps across updates by Addr, and a late or
// second Done must not skew the spread. Every backend gets traffic: over
// many picks with distinct keys, none of equal weight gets less than a
// third of an even share. balancetest.Run checks these clauses.
type Balancer interface {
	// Pick chooses a backend of the current set for one request. key
	// feeds sticky and hash strategies ("" for none; other strategies
	// ignore it). It fails with ctx's error when ctx is done (even on an
	// empty set: the caller gave up first), else with ErrNoBackend when
	// the set is empty. The caller must call Done on the returned Choice
	// when the request ends, so load-aware strategies learn.
	Pick(ctx context.Context, key string) (Choice, error)
	// Update replaces the backend set. It fails with ErrInvalidBackend for
	// an empty or duplicate address or a negative weight, and then leaves
	// the previous set in place.
	Update(backends []Backend) error
}

// A Pinner is a Balancer that can also hand out a given backend, for a
// request pinned to it elsewhere (by a sticky session cookie), so that the
// request still counts in the balancer's statistics (requests in flight,
// latency) and in Health's passive checks like any other. Every strategy of
// this package is a Pinner, and so is Health when its inner Balancer is.
type Pinner interface {
	Balancer
	// PickAddr returns a Choice for the backend at addr, to be Done like
	// any other. It fails with ErrNoBackend when addr is not among the
	// backends Pick would choose from now (removed by Update, or taken out
	// by Health), and with ctx's error when ctx is done.
	PickAddr(ctx context.Context, addr string) (Choice, error)
}

// A Choice is the backend one Pick chose, and the way to report how the
// request went.
//
// Pick returns a Choice rather than a done callback because a callback
// that counts requests in flight must
// carry per-request state, which costs an allocation on every pick; a
// Choice is a small value the caller keeps, so picks allocate nothing and
// Done can tell a second call from the first. It holds a pointer to the
// backend rather than a copy, so that it stays small enough to be returned
// in registers: a pick of a round robin costs little more than its atomic
// increment.
type Choice struct {
	ep     *endpoint
	health *backendHealth // set by Health, which learns from outcomes
	start  int64          // nanotime at Pick, when timed
	fails  uint32         // health's failure count at Pick (see backendHealth.record)
	timed  bool
	trial  bool // the half-open trial of an ejected backend (see Health)
	done   bool
}

// NewChoice returns a Choice of b for a Balancer written outside this
// package; its Done reports to nothing but Health.
func NewChoice(b Backend) Choice {
	return Choice{ep: &endpoint{Backend: b, stats: new(stats)}}
}

// Backend returns the chosen backend; the zero Choice has none.
func (c *Choice) Backend() Backend {
	if c.ep == nil {
		return Backend{}
	}
	return c.ep.Backend
}

// Done reports the end of the request: err is nil on success, or the
// request's failure, which passive health checks count; an err wrapping
// ErrAborted (the caller gave up: its client went away or sent a broken
// body) ends the request without counting it either way. Only the first
// call on a Choice counts; later calls are ignored. Done may be called
// after the backend was removed by Update. It must not be called
// concurrently on the same Choice.
func (c *Choice) Done(err error) {
	if c.done {
		return
	}
	c.done = true
	aborted := err != nil && errors.Is(err, ErrAborted)
	if c.ep != nil && c.ep.tracks() {
		c.ep.finish(c, err, aborted)
	}
	if c.health != nil && c.health.m.on {
		c.health.finished(c, err, aborted)
	}
	switch {
	case c.health == nil:
	case c.trial:
		c.health.trialDone(err, aborted)
	case !aborted:
		c.health.record(err, c.fails)
	}
}
