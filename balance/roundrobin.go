package balance

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// RoundRobin hands requests to the backends in turn: with n backends, every
// n consecutive picks visit each backend exactly once, in the order Update
// gave them. Weights, zones and keys are ignored (see WeightedRoundRobin
// for weights).
//
// Picks are lock-free and allocate nothing: the set is an immutable slice
// behind an atomic pointer, and a pick is one atomic increment of a shared
// counter taken modulo the set's size. The rotation is strict even under
// concurrency, because every pick takes its own counter value; the price
// is that concurrent pickers share the counter's cache line, which is still
// cheaper than any lock (measured in roundrobin_test.go). Update swaps the
// set without resetting the counter, so the rotation carries on over the
// new set from wherever the counter stands.
//
// The zero value is ready to use and starts at the first backend.
// NewRoundRobin starts at a random position instead, so that many
// balancers started at once (one per client process) do not all send their
// first request to the same backend.
type RoundRobin struct {
	set atomic.Pointer[[]*endpoint]
	// next is written by every pick; the padding keeps those writes off the
	// cache line of set, which every pick reads.
	_    [rrCacheLine]byte
	next atomic.Uint64
	_    [rrCacheLine]byte

	mu  sync.Mutex // serializes Update
	reg registry
}

// rrCacheLine is the padding that keeps a hot counter on its own cache line.
const rrCacheLine = 64

var _ Pinner = (*RoundRobin)(nil)

// NewRoundRobin returns a RoundRobin with no backends whose rotation starts
// at a random position.
func NewRoundRobin() *RoundRobin {
	r := new(RoundRobin)
	r.next.Store(rand.Uint64())
	return r
}

// Update replaces the backend set; see Balancer.Update.
func (r *RoundRobin) Update(backends []Backend) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	eps, err := r.reg.endpoints(backends)
	if err != nil {
		return err
	}
	r.set.Store(&eps)
	return nil
}

// Pick returns the next backend in the rotation; key is ignored.
func (r *RoundRobin) Pick(ctx context.Context, _ string) (c Choice, err error) {
	if err := ctx.Err(); err != nil {
		return Choice{}, err
	}
	p := r.set.Load()
	if p == nil || len(*p) == 0 {
		return Choice{}, ErrNoBackend
	}
	eps := *p
	i := (r.next.Add(1) - 1) % uint64(len(eps))
	eps[i].begin(&c, false)
	return c, nil
}

// PickAddr returns a Choice for the backend at addr; see Pinner.
func (r *RoundRobin) PickAddr(ctx context.Context, addr string) (Choice, error) {
	return r.reg.pickAddr(ctx, addr)
}
