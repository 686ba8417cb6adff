package balance

import (
	"context"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// WeightedRoundRobin hands requests to the backends in turn, each in
// proportion to its weight (0 meaning 1), and smoothly: a heavy backend's
// turns are spread among the others' rather than taken in a burst. Keys and
// zones are ignored.
//
// # Order
//
// The order is that of WF²Q (worst-case fair weighted fair queueing, Bennett
// and Zhang 1996), with weights first divided by their greatest common
// divisor. Let W be the sum of the weights and give backend i's k-th turn
// of a round the virtual start k/wᵢ and finish (k+1)/wᵢ. After t picks the
// virtual time is t/W; each pick goes to the backend with the earliest
// finish among those whose start has come (ties to the earlier backend in
// the set). This guarantees, for every backend and every prefix of t picks,
//
//   - |picks − t·wᵢ/W| < 1: no backend is ever a whole turn ahead of or
//     behind its share, so
//   - every window of W consecutive picks gives each backend exactly wᵢ
//     turns (the order repeats with period W), and
//   - a backend is never picked more than ⌈wᵢ/(W−wᵢ)⌉+1 times in a row.
//
// For weights 5, 1, 1 the round is a b a a c a a. nginx's smooth weighted
// round robin also repeats every W picks, but it strays further from the
// shares and bursts longer (for weights 16, 1, 1 it picks the heavy backend 11 times in a row, WF²Q 8,
// the least possible; wrr_internal_test.go compares them), and it costs
// O(n) per pick, which zalando/skipper measured at 171 µs per pick for
// 10,000 backends.
//
// # Cost
//
// When W is at most 2^20 (for example 10,000 backends of weights 1 to 10),
// Update computes one round of the order in O(W log n) and a pick is one
// atomic increment indexing it: lock-free, O(1), no allocation. Larger
// rounds are computed pick by pick from two binary heaps under a mutex,
// O(log n) per pick. With equal weights the order is plain round robin.
//
// Update keeps the position in the order rather than restarting the
// round, so a burst of updates cannot favour the first backends. The zero
// value is ready to use and starts at the beginning of the round;
// NewWeightedRoundRobin starts at a random position, so that many
// balancers started at once do not send their first requests in step.
type WeightedRoundRobin struct {
	set  atomic.Pointer[wrrSet]
	_    [rrCacheLine]byte
	next atomic.Uint64 // position in the round, when it is precomputed
	_    [rrCacheLine]byte

	mu  sync.Mutex // serializes Update
	reg registry
}

var _ Pinner = (*WeightedRoundRobin)(nil)

// wrrMaxRound is the longest round (sum of reduced weights) Update
// precomputes; a variable so tests can force the live order.
var wrrMaxRound uint64 = 1 << 20

// wrrMaxTotal bounds the sum of reduced weights, so the order's arithmetic
// stays within 64-bit factors of 128-bit products.
const wrrMaxTotal = 1 << 62

// wrrSet is one backend set with its order.
type wrrSet struct {
	eps []*endpoint
	// round is one round of the order when it is precomputed, as indices
	// into eps; nil when the weights are equal (the order is eps itself)
	// or the round is too long (live is set).
	round []uint32
	// live generates the order pick by pick, under mu.
	mu   sync.Mutex
	live *wrrOrder
}

// NewWeightedRoundRobin returns a WeightedRoundRobin with no backends
// whose order starts at a random position.
func NewWeightedRoundRobin() *WeightedRoundRobin {
	w := new(WeightedRoundRobin)
	w.next.Store(rand.Uint64())
	return w
}

// Update replaces the backend set; see Balancer.Update. It also fails with
// ErrInvalidBackend when the weights, divided by their greatest common
// divisor, sum to more than 2^62.
func (w *WeightedRoundRobin) Update(backends []Backend) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	weights, total, err := wrrWeights(backends)
	if err != nil {
		return err
	}
	eps, err := w.reg.endpoints(backends)
	if err != nil {
		return err
	}
	s := &wrrSet{eps: eps}
	switch {
	case total == uint64(len(eps)):
		// Equal weights: round robin.
	case total <= wrrMaxRound:
		o := newWrrOrder(weights, total)
		s.round = make([]uint32, total)
		for j := range s.round {
			s.round[j] = uint32(o.next())
		}
	default:
		s.live = newWrrOrder(weights, total)
	}
	w.set.Store(s)
	return nil
}

// Pick returns the next backend in the order; key is ignored.
func (w *WeightedRoundRobin) Pick(ctx context.Context, _ string) (c Choice, err error) {
	if err := ctx.Err(); err != nil {
		return Choice{}, err
	}
	s := w.set.Load()
	if s == nil || len(s.eps) == 0 {
		return Choice{}, ErrNoBackend
	}
	var e *endpoint
	switch {
	case s.live != nil:
		s.mu.Lock()
		e = s.eps[s.live.next()]
		s.mu.Unlock()
	case s.round == nil:
		e = s.eps[(w.next.Add(1)-1)%uint64(len(s.eps))]
	default:
		e = s.eps[s.round[(w.next.Add(1)-1)%uint64(len(s.round))]]
	}
	e.begin(&c, false)
	return c, nil
}

// wrrWeights returns the effective weights divided by their greatest
// common divisor, and their sum. Negative weights are left for validate to
// report.
func wrrWeights(backends []Backend) ([]uint64, uint64, error) {
	var g uint64
	for _, b := range backends {
		if b.Weight >= 0 {
			g = wrrGCD(g, uint64(b.weight()))
		}
	}
	weights := make([]uint64, len(backends))
	var total uint64
	for i, b := range backends {
		if b.Weight < 0 {
			continue
		}
		weights[i] = uint64(b.weight()) / g
		total += weights[i]
		if total > wrrMaxTotal {
			return nil, 0, fmt.Errorf("%w: weights sum to more than 2^62 times their common divisor", ErrInvalidBackend)
		}
	}
	return weights, total, nil
}

func wrrGCD(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// wrrOrder generates the WF²Q order (see WeightedRoundRobin) in O(log n)
// per pick. Backend i has had k[i] turns in its round m[i]; the virtual
// time is round + t/total. Backends whose next start has come wait in
// ready, a heap by finish; the others wait in pending, a heap by start.
// Because every round gives each backend exactly its weight, a backend
// that finishes its round moves on to the next (k = 0, m+1) and all
// arithmetic stays bounded: a time within a round compares as a product
// of two 64-bit factors.
type wrrOrder struct {
	w, k, m        []uint64
	total          uint64
	round, t       uint64
	ready, pending []int32
}

func newWrrOrder(weights []uint64, total uint64) *wrrOrder {
	n := len(weights)
	o := &wrrOrder{
		w: weights, k: make([]uint64, n), m: make([]uint64, n), total: total,
		ready: make([]int32, n), pending: make([]int32, 0, n),
	}
	for i := range o.ready {
		o.ready[i] = int32(i)
	}
	for j := n/2 - 1; j >= 0; j-- {
		o.down(o.ready, j, true)
	}
	return o
}

// next returns the backend of the next turn and advances the order.
func (o *wrrOrder) next() int32 {
	for len(o.pending) > 0 && o.started(o.pending[0]) {
		i := o.pending[0]
		o.pending = o.pop(o.pending, false)
		o.ready = o.push(o.ready, i, true)
	}
	// Some backend has always started: if none had, each would have had
	// more than its share of the t turns so far, which sum to t.
	i := o.ready[0]
	if o.k[i]++; o.k[i] == o.w[i] {
		o.k[i], o.m[i] = 0, o.m[i]+1
	}
	if o.t++; o.t == o.total {
		o.t, o.round = 0, o.round+1
	}
	if o.started(i) {
		o.down(o.ready, 0, true)
	} else {
		o.ready = o.pop(o.ready, true)
		o.pending = o.push(o.pending, i, false)
	}
	return i
}

// started reports whether backend i's next turn has started: its start
// m + k/w is at or before the virtual time round + t/total.
func (o *wrrOrder) started(i int32) bool {
	if o.m[i] != o.round {
		return o.m[i] < o.round
	}
	return wrrCmp(o.k[i], o.total, o.t, o.w[i]) <= 0
}

// less orders backends by the finish (byFinish) or start of their next
// turn, then by index.
func (o *wrrOrder) less(a, b int32, byFinish bool) bool {
	if o.m[a] != o.m[b] {
		return o.m[a] < o.m[b]
	}
	ka, kb := o.k[a], o.k[b]
	if byFinish {
		ka, kb = ka+1, kb+1
	}
	if c := wrrCmp(ka, o.w[b], kb, o.w[a]); c != 0 {
		return c < 0
	}
	return a < b
}

// wrrCmp compares a1·a2 with b1·b2 exactly.
func wrrCmp(a1, a2, b1, b2 uint64) int {
	ah, al := bits.Mul64(a1, a2)
	bh, bl := bits.Mul64(b1, b2)
	switch {
	case ah != bh:
		if ah < bh {
			return -1
		}
		return 1
	case al != bl:
		if al < bl {
			return -1
		}
		return 1
	}
	return 0
}

func (o *wrrOrder) push(h []int32, i int32, byFinish bool) []int32 {
	h = append(h, i)
	for j := len(h) - 1; j > 0; {
		p := (j - 1) / 2
		if !o.less(h[j], h[p], byFinish) {
			break
		}
		h[j], h[p] = h[p], h[j]
		j = p
	}
	return h
}

func (o *wrrOrder) pop(h []int32, byFinish bool) []int32 {
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	o.down(h, 0, byFinish)
	return h
}

func (o *wrrOrder) down(h []int32, j int, byFinish bool) {
	for {
		c := 2*j + 1
		if c >= len(h) {
			return
		}
		if r := c + 1; r < len(h) && o.less(h[r], h[c], byFinish) {
			c = r
		}
		if !o.less(h[c], h[j], byFinish) {
			return
		}
		h[j], h[c] = h[c], h[j]
		j = c
	}
}

// PickAddr returns a Choice for the backend at addr; see Pinner.
func (w *WeightedRoundRobin) PickAddr(ctx context.Context, addr string) (Choice, error) {
	return w.reg.pickAddr(ctx, addr)
}
