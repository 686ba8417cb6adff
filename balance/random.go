package balance

import (
	"context"
	"math"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Random picks a backend at random, each with probability proportional to
// its weight (0 meaning 1), so with unweighted backends the choice is
// uniform. Keys and zones are ignored.
//
// Random keeps no shared mutable state: each pick draws one number from
// math/rand/v2's global generator, which is per-thread in the runtime, so
// concurrent pickers never contend. Where RoundRobin guarantees each
// backend its turn in every n picks, Random only does so on average, but
// many independent balancers (one per client) cannot fall into step with
// one another.
//
// Weighted picks are O(1) by Vose's alias method: Update splits the
// weights into n columns of equal height, each holding at most two
// backends, and a pick uses the high half of the 128-bit product r·n of one
// 64-bit random r to choose a column and the low half to choose within it.
// When all weights are equal the table is skipped.
//
// The zero value is ready to use.
type Random struct {
	set atomic.Pointer[randomSet]
	mu  sync.Mutex // serializes Update
	reg registry
}

var _ Pinner = (*Random)(nil)

// randomSet is one immutable backend set with its alias table.
type randomSet struct {
	eps []*endpoint
	// keep[i] is the share of column i that belongs to eps[i], scaled to
	// 2^64; the rest belongs to eps[alias[i]]. Both are nil when all
	// weights are equal.
	keep  []uint64
	alias []uint32
}

// NewRandom returns a Random with no backends.
func NewRandom() *Random { return new(Random) }

// Update replaces the backend set; see Balancer.Update.
func (r *Random) Update(backends []Backend) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	eps, err := r.reg.endpoints(backends)
	if err != nil {
		return err
	}
	s := &randomSet{eps: eps}
	s.keep, s.alias = randomAlias(backends)
	r.set.Store(s)
	return nil
}

// Pick returns a random backend; key is ignored.
func (r *Random) Pick(ctx context.Context, _ string) (c Choice, err error) {
	if err := ctx.Err(); err != nil {
		return Choice{}, err
	}
	s := r.set.Load()
	if s == nil || len(s.eps) == 0 {
		return Choice{}, ErrNoBackend
	}
	col, within := bits.Mul64(rand.Uint64(), uint64(len(s.eps)))
	if s.keep != nil && within >= s.keep[col] {
		col = uint64(s.alias[col])
	}
	s.eps[col].begin(&c, false)
	return c, nil
}

// randomAlias builds Vose's alias table for the backends' weights, or
// returns nils when the weights are all equal. Full columns keep all of
// their share (keep = 2^64-1, alias = itself), so the only rounding is in
// the float64 split of each column, below 2^-52 of the column.
func randomAlias(backends []Backend) (keep []uint64, alias []uint32) {
	n := len(backends)
	uniform := true
	total := 0.0
	for _, b := range backends {
		uniform = uniform && b.weight() == backends[0].weight()
		total += float64(b.weight())
	}
	if uniform {
		return nil, nil
	}
	keep = make([]uint64, n)
	alias = make([]uint32, n)
	// height[i] is backend i's weight in units of one column (the mean).
	height := make([]float64, n)
	var small, large []uint32
	for i, b := range backends {
		height[i] = float64(b.weight()) * float64(n) / total
		if height[i] < 1 {
			small = append(small, uint32(i))
		} else {
			large = append(large, uint32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		keep[s] = randomScale(height[s])
		alias[s] = l
		height[l] -= 1 - height[s]
		if height[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// What is left is a column of height 1 up to rounding: it keeps it all.
	for _, i := range append(small, large...) {
		keep[i] = math.MaxUint64
		alias[i] = i
	}
	return keep, alias
}

// randomScale maps a share in [0, 1) to a threshold in [0, 2^64).
func randomScale(f float64) uint64 {
	if f <= 0 {
		return 0
	}
	if f >= 1 {
		return math.MaxUint64
	}
	return uint64(f * (1 << 64))
}

// PickAddr returns a Choice for the backend at addr; see Pinner.
func (r *Random) PickAddr(ctx context.Context, addr string) (Choice, error) {
	return r.reg.pickAddr(ctx, addr)
}
