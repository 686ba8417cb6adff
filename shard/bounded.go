package shard

import (
	"fmt"
	"math"
)

// DefaultPartitions is the partition count of a Bounded when
// BoundedConfig.Partitions is zero.
//
// Lookups cost the same for any count; what the count buys is granularity.
// A member's load is a whole number of partitions, so its share can miss
// its ideal P·w/W by up to one partition: with 4096 partitions that is
// under 3% of an average member's share up to about 100 members of equal
// weight, and the load bound of 1.25 stays meaningful up to about 1000. It
// also sets how closely a membership change moves the ideal share: a
// joining member takes the partitions where it is nearest, a count that
// varies with the names by about √(P/N) partitions, so moves stay within 5%
// of the ideal at 10 → 11 members with 4096 partitions but need about
// 65,536 at 50 or 100 members (see BoundedConfig.Partitions). The price is
// a 16 KB table, a build linear in P, and plans listing moves in units of
// 1/4096 of the keys.
const DefaultPartitions = 4096

// DefaultLoadFactor is the load bound of a Bounded when
// BoundedConfig.LoadFactor is zero: no member owns more than 1.25 times its
// fair share of partitions (the 1+ε of Mirrokni, Thorup and Zadimoghaddam
// with ε = 0.25; buraksezer/consistent's default Load, HAProxy's
// hash-balance-factor 125).
const DefaultLoadFactor = 1.25

// maxPartitions bounds BoundedConfig.Partitions (16 MB of table).
const maxPartitions = 1 << 22

// BoundedConfig configures a Bounded. The zero value is the default: 4096
// partitions and a load factor of 1.25.
type BoundedConfig struct {
	// Partitions is the number of partitions keys are hashed onto, 0 for
	// DefaultPartitions, at most 1<<22. It must be at least the number of
	// members, so above 4096 members it must be set. Sharders built with
	// different counts cannot be compared by PlanMoves, so choose it once
	// for the life of the data, for the largest membership expected: a few
	// hundred partitions per member keep the moves of a membership change
	// within 5% of the ideal, and the build costs about P·16 probes plus
	// 160 points per unit of member weight.
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
//   - Every member places 160 points per unit of weight on a circle, as on
//     a Ring, and every partition has 16 probes spread over the circle.
//     A partition's preference list is the members in order of the
//     clockwise distance from any of its probes to one of their points
//     (multi-probe consistent hashing): without capacities each partition
//     would go to its nearest member, with shares proportional to weight
//     and minimal disruption.
//   - With capacities, (partition, member) pairs are granted in increasing
//     order of distance; a pair whose member is already full is skipped
//     and the partition falls to its nearest member that still has room.
//     This is the unique stable assignment for the distances, so it
//     depends only on the set of members, never on their order.
//
// The build is linear in partitions and points (16 probes per partition,
// 160 points per unit of weight, sorted by a radix sort), where scoring every
// (partition, member) pair cost P × members: on the reference machine about
// 2 ms at 10 members and 10–20 ms at 1,000 with 4096 partitions, against
// 2 and 70–120 ms for that scoring.
//
// When a member joins, it takes the partitions where it is now nearest;
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
// LoadFactor that is not finite and at least 1, or a total weight above
// 62,500 (160 points each, 10 million in all), and with ErrImpossibleBound
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
	if int64(boundedPointsPerWeight)*int64(total) > maxBoundedPoints {
		return nil, fmt.Errorf("%w: total weight %d × %d points exceed %d points", ErrInvalidConfig, total, boundedPointsPerWeight, maxBoundedPoints)
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

// boundedPointsPerWeight and boundedProbes shape the preference lists of a
// Bounded (see assign). They are part of the table's definition: changing
// either changes every table.
const (
	boundedPointsPerWeight = 160
	boundedProbes          = 16
)

// maxBoundedPoints bounds the members' points, as maxRingPoints bounds a
// Ring's.
const maxBoundedPoints = maxRingPoints

// boundedSeed separates the member points of Bounded from a Ring's.
const boundedSeed = 0x626f756e646564 // "bounded"

// candidate is a partition's nearest member point not yet ruled out.
type candidate struct {
	dist  uint32 // clockwise distance from the probe to the point
	rank  uint32 // the member's rank in name order, for ties
	part  int32
	probe int32 // which of the partition's probes reached the point
}

func (a candidate) less(b candidate) bool {
	if a.dist != b.dist {
		return a.dist < b.dist
	}
	if a.part != b.part {
		return a.part < b.part
	}
	return a.rank < b.rank
}

// candHeap is a binary min-heap of candidates.
type candHeap []candidate

func (h candHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r].less(h[l]) {
			m = r
		}
		if !h[m].less(h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h candHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// assign builds the table in O(P·(probes + log P)) after sorting the
// members' points, instead of scoring every (partition, member) pair.
//
// Every member of weight w places 64·w points on a circle of 2^32
// positions, as in a Ring. Every partition has 16 probes, one in each
// sixteenth of the circle at the same offset within it; the offsets of the
// P partitions are spread evenly over a sixteenth, so the P·16 probes form
// an even lattice. A partition's preference list is the members in
// increasing clockwise distance from any of its probes to one of their
// points (multi-probe consistent hashing, Appleton and O'Reilly 2015): its
// first choice is a member with probability about its share of the weight,
// and the lattice makes the shares smoother than points alone would.
//
// The (partition, member) pairs are granted in increasing order of that
// distance; a pair whose member is full is skipped and the partition falls
// to its next choice. This is the unique stable assignment for the
// distances, so the table depends only on the set of members, never on
// their order. A joining member takes the partitions where one of its
// points is now the nearest; a spill from a full member is what moves
// anything else.
func (b *Bounded) assign(members []Member) {
	r := &Ring{names: b.names}
	total := 0
	for _, m := range members {
		total += m.Weight
	}
	pts := make([]ringPoint, 0, boundedPointsPerWeight*total)
	for i, m := range members {
		for k := range boundedPointsPerWeight * m.Weight {
			pts = append(pts, ringPoint{pos: ringPointHash(m.Name, k^boundedSeed), owner: int32(i)})
		}
	}
	r.build(pts)
	rank := nameRanks(b.names)

	p := len(b.owner)
	// Partition p's probe j lies in sector j at the slot p·s_j + t_j mod
	// P: every sector holds one probe of every partition, evenly spaced,
	// and each sector pairs them with the partitions in another order. (One
	// order for all sectors would fold the circle onto one sector: a ring
	// with no more randomness than its points.)
	var stride, shift [boundedProbes]uint64
	for j := range boundedProbes {
		stride[j] = coprimeNear(mix64(uint64(j)^boundedSeed)%uint64(p), p)
		shift[j] = mix64(uint64(j)+boundedSeed) % uint64(p)
	}
	const sector = uint64(1) << 32 / boundedProbes
	probeAt := func(part, j int) uint32 {
		slot := (uint64(part)*stride[j] + shift[j]) % uint64(p)
		return uint32(uint64(j)*sector + (2*slot+1)*sector/(2*uint64(p)))
	}
	cursor := make([]int32, p*boundedProbes) // next point each probe looks at
	pt := r.points
	next := func(part int) candidate {
		best := candidate{dist: ^uint32(0), rank: ^uint32(0), part: int32(part), probe: -1}
		for j := range boundedProbes {
			i := cursor[part*boundedProbes+j]
			c := candidate{dist: pt[i] - probeAt(part, j), rank: rank[r.owners[i]], part: int32(part), probe: int32(j)}
			if best.probe < 0 || c.less(best) {
				best = c
			}
		}
		return best
	}
	h := make(candHeap, p)
	for part := range p {
		for j := range boundedProbes {
			i := r.lowerBound(probeAt(part, j))
			if i == len(pt) {
				i = 0
			}
			cursor[part*boundedProbes+j] = int32(i)
		}
		h[part] = next(part)
	}
	h.init()
	for len(h) > 0 {
		top := h[0]
		ci := int(top.part)*boundedProbes + int(top.probe)
		m := r.owners[cursor[ci]]
		if b.loads[m] < b.caps[m] {
			b.owner[top.part] = m
			b.loads[m]++
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
			h.down(0)
			continue
		}
		// The member is full, and stays full: move this probe on to the
		// next point. Some member has room (the capacities sum to at
		// least P) and every member has points, so each probe finds one
		// within a turn of the circle.
		if cursor[ci]++; int(cursor[ci]) == len(pt) {
			cursor[ci] = 0
		}
		h[0] = next(int(top.part))
		h.down(0)
	}
	for part, o := range b.owner {
		b.table[part] = b.names[o]
	}
}

// coprimeNear returns the first number from s up that is coprime with p,
// so multiplying by it modulo p permutes [0, p).
func coprimeNear(s uint64, p int) uint64 {
	for gcd(s, uint64(p)) != 1 {
		s++
	}
	return s
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
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
