package pgqueue

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// combineWidth is the width of the Queue's combiners: two statements of
// a kind in flight, each serving the calls that came while they ran.
const combineWidth = 2

// A combiner runs the calls of one key that arrive while a statement for
// that key is in flight as one statement: the leases of many workers of a
// queue, or their Acks. A call that finds no statement in flight runs its
// own at once, so a quiet queue pays no wait; under load each statement
// serves every call that came during the previous one, and PostgreSQL
// runs one statement (one snapshot, one commit) where it ran dozens.
//
// The caller that ran a statement hands the calls that queued meanwhile
// to the first of them, which runs theirs, and then answers its own
// batch: no goroutine of the combiner's own runs, and Close has nothing
// to wait for but the callers themselves.
type combiner[K comparable, Req, Res any] struct {
	// width is how many statements of a key may be in flight at once
	// (0: 1). More than one keeps a few callers from queuing behind one
	// another's round trip when the load is light; under load the calls
	// still gather into batches behind them.
	width int

	mu      sync.Mutex
	groups  map[K]*combineGroup[Req, Res]
	batches atomic.Int64 // statements that served more than one call, for tests
}

type combineGroup[Req, Res any] struct {
	busy    int                      // statements for the key in flight
	waiting []*combineCall[Req, Res] // calls for the next statement
}

// A combineCall is one caller's request and, once done is closed, its
// answer; or, when lead is set, the batch it must run for the others.
type combineCall[Req, Res any] struct {
	req   Req
	res   Res
	err   error
	done  chan struct{}
	lead  bool
	batch []*combineCall[Req, Res]
}

// do runs req with the other calls of key: run gets every request of a
// batch (req alone when the key is idle) and returns one answer per
// request, in order, or one error for all. A call still waiting for its
// batch to start when ctx ends returns ctx's error, and its request is
// not run; once its batch runs (or it leads one) it waits for the answer,
// which the statement's own bound limits.
func (c *combiner[K, Req, Res]) do(ctx context.Context, key K, req Req, run func([]Req) ([]Res, error)) (Res, error) {
	call := &combineCall[Req, Res]{req: req, done: make(chan struct{})}
	c.mu.Lock()
	if c.groups == nil {
		c.groups = map[K]*combineGroup[Req, Res]{}
	}
	g := c.groups[key]
	if g == nil {
		g = &combineGroup[Req, Res]{}
		c.groups[key] = g
	}
	if g.busy < max(c.width, 1) {
		g.busy++
		c.mu.Unlock()
		c.lead(key, g, []*combineCall[Req, Res]{call}, run)
		return call.res, call.err
	}
	g.waiting = append(g.waiting, call)
	c.mu.Unlock()
	select {
	case <-call.done:
	case <-ctx.Done():
		c.mu.Lock()
		if i := slices.Index(g.waiting, call); i >= 0 {
			g.waiting = slices.Delete(g.waiting, i, i+1)
			c.mu.Unlock()
			var zero Res
			return zero, ctx.Err()
		}
		c.mu.Unlock()
		<-call.done // in a batch, or handed one to lead
	}
	if call.lead {
		c.lead(key, g, call.batch, run)
	}
	return call.res, call.err
}

// lead runs batch (whose first call is the caller's), hands the calls
// that queued meanwhile to the next leader, and answers the batch.
func (c *combiner[K, Req, Res]) lead(key K, g *combineGroup[Req, Res], batch []*combineCall[Req, Res], run func([]Req) ([]Res, error)) {
	if len(batch) > 1 {
		c.batches.Add(1)
	}
	reqs := make([]Req, len(batch))
	for i, b := range batch {
		reqs[i] = b.req
	}
	res, err := run(reqs)

	c.mu.Lock()
	if next := g.waiting; len(next) > 0 {
		g.waiting = nil
		next[0].lead, next[0].batch = true, next
		close(next[0].done)
	} else if g.busy--; g.busy == 0 {
		delete(c.groups, key)
	}
	c.mu.Unlock()

	for i, b := range batch {
		if err != nil {
			b.err = err
		} else {
			b.res = res[i]
		}
		if i > 0 {
			close(b.done)
		}
	}
}
