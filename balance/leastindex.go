package balance

import (
	"math/rand/v2"
	"sync"
)

// llIndexMin is the backend count from which LeastLoaded keeps an index of
// its backends by load instead of scanning them. Below it the lock-free
// scan is cheaper, even under full load, than the index's lock, and under
// concurrent picks it does not serialise them; above it the scan's cost,
// about a nanosecond per busy backend read (several when other cores are
// writing the counters), overtakes the index's constant one.
const llIndexMin = 64

// An llIndex is LeastLoaded's bucket queue: the backends of the current
// set, grouped by weight, and within a group kept in buckets by their
// requests in flight, with the lowest non-empty bucket known. In-flight
// counts change by one at a time, so keeping a backend in the right bucket
// and the lowest bucket known costs O(1), and a pick costs O(d), d the
// number of distinct weights (one, unless weights are set): it compares
// the lowest bucket of each group and takes the next backend in turn of
// the least loaded. Memory is O(n + the highest in-flight count). The bookkeeping
// lives in dense arrays indexed by the backend's slot in the set, so that
// a pick over thousands of backends touches the cache lines of one
// backend's counters, not of every backend it moves past.
//
// The backend's atomic in-flight count stays the truth; the index follows
// it. Every change of the count outside a pick under the index's lock (a
// Done, a PickAddr) is followed by resync, which moves the backend to the
// bucket of its count; Update rebuilds the index from the counts. The
// order makes this exact without holding the lock across the change: a
// change stores the count, then reads stats.llOn; a rebuild sets llOn,
// then reads the count. Whichever comes second sees the other's write, so
// a count that changes while a rebuild runs is either read by the rebuild
// or resynced after it.
type llIndex struct {
	mu     sync.Mutex
	eps    []*endpoint // the indexed set; nil when the set is scanned instead
	st     []*stats    // eps[i].stats, read without reaching the endpoint
	slots  []llSlot    // per index in eps
	groups []llGroup
}

// An llSlot is where one backend sits in the index.
type llSlot struct {
	group, pos int32 // its group, and its position in its bucket
	level      int   // its bucket: its in-flight count when last synced
}

// An llGroup is the backends of one weight.
type llGroup struct {
	weight  int64
	min     int       // the lowest level with a backend in it
	next    uint      // turns through the lowest bucket: see pick
	buckets [][]int32 // level (in-flight count) → slots
}

// rebuild indexes eps, or clears the index when eps is nil. The caller
// holds LeastLoaded's update lock.
func (ix *llIndex) rebuild(eps []*endpoint) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, st := range ix.st {
		st.llOn.Store(false)
	}
	ix.eps, ix.st, ix.slots, ix.groups = eps, nil, nil, nil
	if eps == nil {
		return
	}
	ix.st = make([]*stats, len(eps))
	ix.slots = make([]llSlot, len(eps))
	byWeight := map[int64]int32{}
	for i, e := range eps {
		w := int64(e.weight())
		g, ok := byWeight[w]
		if !ok {
			g = int32(len(ix.groups))
			byWeight[w] = g
			ix.groups = append(ix.groups, llGroup{weight: w})
		}
		ix.st[i] = e.stats
		e.llSlot = int32(i)
		e.llOn.Store(true) // before reading the count: see llIndex
		ix.slots[i] = llSlot{group: g, level: level(e.inflight.Load())}
		ix.add(int32(i))
	}
	for g := range ix.groups {
		ix.groups[g].settle()
	}
}

// level is the bucket of an in-flight count. Counts never go below zero
// (each Choice is Done once), but a bucket index must not even briefly.
func level(inflight int64) int { return int(max(inflight, 0)) }

// add appends slot to the bucket of its level.
func (ix *llIndex) add(slot int32) {
	s := &ix.slots[slot]
	g := &ix.groups[s.group]
	for len(g.buckets) <= s.level {
		g.buckets = append(g.buckets, nil)
	}
	b := g.buckets[s.level]
	s.pos = int32(len(b))
	g.buckets[s.level] = append(b, slot)
}

// settle moves min up to the lowest non-empty bucket at or above it.
func (g *llGroup) settle() {
	for g.min < len(g.buckets)-1 && len(g.buckets[g.min]) == 0 {
		g.min++
	}
}

// resync moves st's backend to the bucket of its in-flight count, if the
// index holds it. Done and PickAddr call it after changing the count.
func (ix *llIndex) resync(st *stats) {
	if !st.llOn.Load() {
		return
	}
	ix.mu.Lock()
	if st.llOn.Load() { // a rebuild may have dropped it meanwhile
		ix.move(st.llSlot)
	}
	ix.mu.Unlock()
}

// move puts the backend at slot in the bucket of its in-flight count; the
// caller holds mu.
func (ix *llIndex) move(slot int32) {
	s := &ix.slots[slot]
	to, from := level(ix.st[slot].inflight.Load()), s.level
	if to == from {
		return
	}
	g := &ix.groups[s.group]
	b := g.buckets[from]
	last := b[len(b)-1]
	b[s.pos] = last
	ix.slots[last].pos = s.pos
	g.buckets[from] = b[:len(b)-1]
	s.level = to
	ix.add(slot)
	if to < g.min {
		g.min = to
	} else {
		g.settle()
	}
}

// pick takes the least loaded backend (by in-flight/weight) and counts a
// request in flight on it, under the lock, so that concurrent picks see
// each other's. It returns nil when the set is scanned rather than
// indexed.
//
// Ties within a group are taken in turn through the lowest bucket, as
// HAProxy's leastconn and nginx's least_conn take them round robin: over
// the picks of one level every tied backend gets one before any gets two,
// which spreads light load at least as evenly as a random draw. It also
// walks the backends' counters in the order they were allocated (a
// bucket's order changes only at its end, where a backend whose count
// came back is appended), which the CPU's prefetcher follows, where
// random draws over thousands of backends miss the caches on nearly every
// pick. Ties between groups go to each tied backend with equal
// probability.
func (ix *llIndex) pick() *endpoint {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if len(ix.eps) == 0 {
		return nil
	}
	best := &ix.groups[0]
	if len(ix.groups) > 1 {
		tied := len(best.buckets[best.min])
		for k := 1; k < len(ix.groups); k++ {
			g := &ix.groups[k]
			n := len(g.buckets[g.min])
			// g.min/g.weight against best.min/best.weight, without division.
			switch a, b := int64(g.min)*best.weight, int64(best.min)*g.weight; {
			case a < b:
				best, tied = g, n
			case a == b: // each tied backend equally likely: reservoir sampling
				tied += n
				if rand.IntN(tied) < n {
					best = g
				}
			}
		}
	}
	b := best.buckets[best.min]
	slot := b[best.next%uint(len(b))]
	best.next++
	ix.st[slot].inflight.Add(1)
	ix.move(slot)
	return ix.eps[slot]
}
