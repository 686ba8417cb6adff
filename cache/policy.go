package cache

import "fmt"

// Policy selects which entry a Memory evicts when a shard is over its
// entry or byte budget.
type Policy int

const (
	// PolicyTinyLFU, the default, is W-TinyLFU (Einziger, Friedman and
	// Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", 2017):
	// each shard admits new entries into a small LRU window (1% of its
	// budget); an entry leaving the window enters the main area only when
	// a count-min sketch of recent access frequencies (4-bit counters,
	// halved periodically so that old popularity fades) rates it more
	// popular than the main area's eviction victim. The main area is a
	// segmented LRU: entries hit again move from its probation segment to
	// its protected segment (80% of the main area). Frequently read
	// entries therefore survive scans and bursts of one-time keys, which
	// flush a plain LRU; on skewed (Zipf) workloads the hit ratio is
	// markedly higher than LRU's at the same size.
	PolicyTinyLFU Policy = iota
	// PolicyLRU evicts the shard's least recently used entry. A hit does
	// not relink an entry already among the most recently used quarter of
	// its shard, and shards of 64 entries or more learn of one hit in 8
	// (see Memory), so the order is exact only for shards of up to 3
	// entries.
	PolicyLRU
)

// String returns the name of p.
func (p Policy) String() string {
	switch p {
	case PolicyTinyLFU:
		return "TinyLFU"
	case PolicyLRU:
		return "LRU"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}
