package balance

import "sync/atomic"

// runningTotalMin is the backend count from which a set's endpoints keep
// the running total. A request counts in the total only if the endpoint it
// was picked from does (its Choice's Done finds the same endpoint), so the
// total stays exact across Updates that cross the threshold; it then
// misses the requests picked before, until they are Done. Below it, a pick
// that needs the total sums the backends' own counts: a few loads, cheaper
// than two more atomic writes on every pick and Done (at 10 backends the
// total cost a ConsistentHash pick+Done a third of its time serially, and
// more under RunParallel).
const runningTotalMin = 64

// totalStripes is how many counters a stripedTotal spreads over.
const totalStripes = 8

// A stripedTotal is a running count of a balancer's requests in flight
// over all its backends, kept in totalStripes counters, each on cache
// lines of its own, and read as their sum. Every pick and Done writes the
// total; one shared counter would make every core's picks take turns on
// its cache line even when they go to different backends (a third of a
// ConsistentHash pick's cost under RunParallel at 10 backends). Backend i
// of a set counts in stripe i mod totalStripes, so picks of different
// backends mostly write different lines, as they write different
// backends' own counters. A request may be counted up in one stripe and
// down in another (its backend's index changed across an Update): a stripe
// may go negative, the sum stays exact.
type stripedTotal struct {
	cells [totalStripes]struct {
		n atomic.Int64
		_ [128 - 8]byte
	}
}

// cell returns the counter of backend i of a set.
func (t *stripedTotal) cell(i int) *atomic.Int64 { return &t.cells[i%totalStripes].n }

// load returns the total: the sum of the stripes, which is not a snapshot
// when picks run concurrently, no more than one counter read a moment
// earlier or later would be.
func (t *stripedTotal) load() int64 {
	var sum int64
	for i := range t.cells {
		sum += t.cells[i].n.Load()
	}
	return sum
}
