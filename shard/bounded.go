package shard

import (
	"container/heap"
	"fmt"
	"math"
	"strings"
)

// DefaultPartitions is the partition count of a Bounded when
// BoundedConfig.Partitions is zero.
//
// Lookups cost the same for any count; what the count buys is granularity.
// A member's load is a whole number of partitions, so its share can miss
// its ideal P·w/W by up to one partition: with 4096 partitions that is
// under 3% of an average member's share up to about 100 members of equal
// weight, and the load bound of 1.25 stays meaningful up to about 1000. The
// price is a 16 KB table, a build that scores every (partition, member)
// pair, and plans listing moves in units of 1/4096 of the keys.
const DefaultPartitions = 4096

// DefaultLoadFactor is the load bound of a Bounded when
// BoundedConfig.LoadFactor is zero: no member owns more than 1.25 times its
// fair share of partitions (the 1+ε of Mirrokni, Thorup and Zadimoghaddam
// with ε = 0.25; buraksezer/consistent's default Load, HAProxy's
// hash-balance-factor 125).
const DefaultLoadFactor = 1.25

// maxPartitions bounds BoundedConfig.Partitions (16 MB of table).
const maxPartitions = 1 << 22

// maxBoundedPairs bounds the build's work, which scores every (partition,
// member) pair: about a second at the limit.
const maxBoundedPairs = 1 << 26

// BoundedConfig configures a Bounded. The zero value is the default: 4096
// partitions and a load factor of 1.25.
type BoundedConfig struct {
	// Partitions is the number of partitions keys are hashed onto, 0 for
	// DefaultPartitions, at most 1<<22. It must be at least the number of
	// members. Sharders built with different counts cannot be compared by
	// PlanMoves, so choose it once for the life of the data.
	Partitions int

	// LoadFactor is c = 1+ε, the bound on a member's load relative to its
	// fair share: member i of weight w_i owns at most
	// ceil(c · Partitions · w_i / W) partitions, W the total weight. 0
	// means DefaultLoadFactor; otherwise it must be finite and at least 1,
	// and 1 asks for the tightest balance, ceil(P·w_i/W).
	//
	// A lower factor balances partitions more tightly but moves more of
	// them when membership changes, because assignments spill from full
	// members to their next choice more often.
	LoadFactor float64
}

// Bounded is consistent hashing with bounded loads (Mirrokni, Thorup and
// Zadimoghaddam, "Consistent Hashing with Bounded Loads", 2016) over a fixed
// set of partitions: a key hashes to one of P partitions (Partition), and
// each partition is owned by one member, so a lookup is one hash and one
// table read.
//
// The table is built so that no member ever owns more than its capacity
// ceil(c·P·w_i/W), which Loads lets you check, while moving few partitions
// when membership changes:
//
//   - Every (partition, member) pair gets a weighted rendezvous score
//     w / -ln(u), u uniform in (0,1) from a hash of the member name and the
//     partition. Without capacities each partition would go to its
//     best-scoring member, which is plain weighted rendezvous hashing:
//     shares proportional to weight, minimal disruption.
//   - With capacities, pairs are granted in descending order of score; a
//     pair whose member is already full is skipped and the partition falls
//     to its best member that still has room. This is the unique stable
//     assignment for the scores, so it depends only on the set of members,
//     never on their order.
//
// When a member joins, it takes the partitions where it scores highest;
// partitions change owner otherwise only where a full member's spill
// changes. With the defaults the spill is rare, and adding an 11th member to
// 10 moves about the ideal 1/11 of partitions (all of them to the new
// member), against about 1.3 times that for buraksezer/consistent's
// ring-with-forwarding. A lower LoadFactor moves more. PlanMoves lists the
// moved partitions exactly.
//
// A Bounded is immutable and safe for concurrent use.
type Bounded struct {
	names  []string
	owner  []int32  // partition → index in names
	table  []string // partition → name, for lookups without a second load
	loads  []int
	caps   []int
	factor float64
}

var _ Sharder = (*Bounded)(nil)

// NewBounded assigns partitions to members. It fails with the member check
// errors (ErrNoShards, ErrEmptyName, ErrDuplicateName, ErrInvalidWeight),
// with ErrInvalidConfig for a negative or oversized Partitions, a
// LoadFactor that is not finite and at least 1, or more than 1<<26
// (partition, member) pairs to score, and with ErrImpossibleBound
// when there are fewer partitions than members, which would leave a member
// owning nothing.
func NewBounded(members []Member, cfg BoundedConfig) (*Bounded, error) {
	names, total, err := validate(members)
	if err != nil {
		return nil, err
	}
	p := cfg.Partitions
	switch {
	case p < 0 || p > maxPartitions:
		return nil, fmt.Errorf("%w: partitions %d not in [1, %d]", ErrInvalidConfig, p, maxPartitions)
	case p == 0:
		p = DefaultPartitions
	}
	c := cfg.LoadFactor
	switch {
	case c == 0:
		c = DefaultLoadFactor
	case math.IsNaN(c) || math.IsInf(c, 0) || c < 1:
		return nil, fmt.Errorf("%w: load factor %v is not a finite number >= 1", ErrInvalidConfig, c)
	}
	if int64(p)*int64(len(members)) > maxBoundedPairs {
		return nil, fmt.Errorf("%w: %d partitions × %d members exceed %d scored pairs", ErrInvalidConfig, p, len(members), maxBoundedPairs)
	}
	if p < len(members) {
		return nil, fmt.Errorf("%w: %d partitions for %d members would leave members with none; raise Partitions",
			ErrImpossibleBound, p, len(members))
	}

	b := &Bounded{
		names:  names,
		owner:  make([]int32, p),
		table:  make([]string, p),
		loads:  make([]int, len(members)),
		caps:   make([]int, len(members)),
		factor: c,
	}
	capSum := 0
	for i, m := range members {
		// The capacity is computed in float64 and clamped: c·P·w/W is
		// exact enough for every P <= 1<<22, and no member needs more
		// than all P partitions.
		b.caps[i] = int(min(math.Ceil(c*float64(p)*float64(m.Weight)/float64(total)), float64(p)))
		capSum += b.caps[i]
	}
	if capSum < p { // cannot happen: caps sum to at least c·P >= P
		return nil, fmt.Errorf("%w: capacities sum to %d < %d partitions", ErrImpossibleBound, capSum, p)
	}
	b.assign(members)
	return b, nil
}

// boundedSeed separates the member hashes of Bounded from other strategies'.
const boundedSeed = 0x626f756e646564 // "bounded"

// pairScore is the weighted rendezvous score of member (hash mh, weight w)
// for partition (hash ph): w / -ln(u), u in (0, 1). Higher wins.
func pairScore(mh, ph uint64, w float64) float64 {
	x := mix64(mix64(mh^ph) + ph)
	u := (float64(x>>11) + 0.5) / (1 << 53)
	return w / -math.Log(u)
}

// candidate is a partition's best member among those with room when it was
// computed.
type candidate struct {
	score  float64
	part   int32
	member int32
}

type candidateHeap struct {
	c     []candidate
	names []string
}

func (h *candidateHeap) Len() int { return len(h.c) }
func (h *candidateHeap) Less(i, j int) bool {
	return h.better(h.c[i], h.c[j])
}
func (h *candidateHeap) Swap(i, j int) { h.c[i], h.c[j] = h.c[j], h.c[i] }
func (h *candidateHeap) Push(x any)    { h.c = append(h.c, x.(candidate)) }
func (h *candidateHeap) Pop() any {
	x := h.c[len(h.c)-1]
	h.c = h.c[:len(h.c)-1]
	return x
}

// better orders grants: higher score first; ties (practically never) go to
// the lower partition, then the lower member name, so the order never
// depends on the order of members.
func (h *candidateHeap) better(a, b candidate) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	if a.part != b.part {
		return a.part < b.part
	}
	return strings.Compare(h.names[a.member], h.names[b.member]) < 0
}

// assign grants (partition, member) pairs in descending order of score,
// skipping full members. Rather than sort all P·N pairs, it keeps each
// unassigned partition's best member with room in a heap; when the heap's
// top names a member that has filled since, the partition's next best is
// computed and pushed back, so the grants come out in exactly the global
// order.
func (b *Bounded) assign(members []Member) {
	n := len(members)
	mh := make([]uint64, n)
	w := make([]float64, n)
	for i, m := range members {
		mh[i] = hashString(m.Name, boundedSeed)
		w[i] = float64(m.Weight)
	}
	partHash := func(p int) uint64 { return mix64(uint64(p) ^ boundedSeed<<8) }
	h := &candidateHeap{c: make([]candidate, 0, len(b.owner)), names: b.names}
	best := func(p int) candidate {
		ph := partHash(p)
		var top candidate
		found := false
		for i := range n {
			if b.loads[i] >= b.caps[i] {
				continue
			}
			c := candidate{score: pairScore(mh[i], ph, w[i]), part: int32(p), member: int32(i)}
			if !found || h.better(c, top) {
				top, found = c, true
			}
		}
		return top
	}
	for p := range b.owner {
		h.c = append(h.c, best(p))
	}
	heap.Init(h)
	for h.Len() > 0 {
		top := h.c[0]
		if b.loads[top.member] < b.caps[top.member] {
			heap.Pop(h)
			b.owner[top.part] = top.member
			b.loads[top.member]++
			continue
		}
		// The member filled after this candidate was computed: replace
		// it with the partition's best member that still has room.
		// There is one, since the capacities sum to at least P.
		h.c[0] = best(int(top.part))
		heap.Fix(h, 0)
	}
	for p, o := range b.owner {
		b.table[p] = b.names[o]
	}
}

// Partition returns the partition of key, in [0, Partitions()): the key's
// hash (of its {hash tag}, when it has one) mapped onto the partitions. It
// depends only on the key and the partition count, never on the members.
func (b *Bounded) Partition(key string) int {
	return fastrange(keyHash(key), len(b.owner))
}

// Shard returns the owner of the key's partition.
func (b *Bounded) Shard(key string) string {
	return b.table[fastrange(keyHash(key), len(b.table))]
}

// Shards returns the member names in the order NewBounded was given them.
func (b *Bounded) Shards() []string { return b.names }

// Partitions returns the number of partitions.
func (b *Bounded) Partitions() int { return len(b.owner) }

// PartitionOwner returns the owner of partition p. It fails with
// ErrInvalidRange when p is not in [0, Partitions()).
func (b *Bounded) PartitionOwner(p int) (string, error) {
	if p < 0 || p >= len(b.owner) {
		return "", fmt.Errorf("%w: partition %d of %d", ErrInvalidRange, p, len(b.owner))
	}
	return b.table[p], nil
}

// Loads returns the number of partitions each member owns, in the order of
// Shards. The result is a copy.
func (b *Bounded) Loads() []int { return append([]int(nil), b.loads...) }

// Capacities returns each member's bound ceil(c·P·w/W), in the order of
// Shards; Loads()[i] <= Capacities()[i] always holds. The result is a copy.
func (b *Bounded) Capacities() []int { return append([]int(nil), b.caps...) }

// LoadFactor returns the load factor c the table was built with.
func (b *Bounded) LoadFactor() float64 { return b.factor }

func (b *Bounded) partitionOwners() []int32 { return b.owner }
