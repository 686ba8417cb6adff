package shard

import (
	"fmt"
	"sort"
)

// A Unit names what the moves of a Plan are counted in. Which one a plan
// uses follows from the strategy: the data a user migrates is the data of
// whole partitions, ring arcs or key ranges whenever the strategy has them.
type Unit int

const (
	// UnitKeys: the strategy's ownership has no finite structure (Jump,
	// Rendezvous), so the plan answers per key through Plan.Moved; scan the
	// keys and migrate those it reports.
	UnitKeys Unit = iota
	// UnitPartitions: Move.Partition is a partition index (Bounded) or a
	// lookup-table entry (Maglev), as returned by Partition(key).
	UnitPartitions
	// UnitHashRanges: Move.Lo..Move.Hi is an inclusive interval of the ring
	// hash, as returned by Ring.Point(key).
	UnitHashRanges
	// UnitKeyRanges: Move.Start..Move.End is the key range [Start, End);
	// an empty End means no upper bound.
	UnitKeyRanges
)

func (u Unit) String() string {
	switch u {
	case UnitKeys:
		return "keys"
	case UnitPartitions:
		return "partitions"
	case UnitHashRanges:
		return "hash ranges"
	case UnitKeyRanges:
		return "key ranges"
	}
	return fmt.Sprintf("Unit(%d)", int(u))
}

// A Move is one unit of data whose owner changes from From to To. Which
// fields are set depends on the Plan's Unit.
type Move struct {
	From, To   string
	Partition  int
	Lo, Hi     uint64
	Start, End string
}

// A Plan lists exactly what changes owner between two Sharders of the same
// strategy, so only that data is migrated.
type Plan struct {
	Unit  Unit
	Moves []Move

	fraction float64
	exact    bool
	from, to Sharder
}

// Moved reports whether key changes owner, and between which shards. It is
// exact for every Unit.
func (p *Plan) Moved(key string) (from, to string, moved bool) {
	from, to = p.from.Shard(key), p.to.Shard(key)
	return from, to, from != to
}

// Fraction returns the share of the key space that changes owner, for plans
// whose Unit measures it exactly (partitions and hash ranges, assuming keys
// hash uniformly). For UnitKeys and UnitKeyRanges it returns false: the
// share depends on the keys.
func (p *Plan) Fraction() (float64, bool) {
	return p.fraction, p.exact
}

// partitionTable is implemented by strategies that map keys onto a fixed set
// of partitions and partitions onto shards (Maglev, Bounded).
type partitionTable interface {
	Sharder
	// partitionOwners returns the owner of every partition as an index into
	// Shards(). The caller must not modify it.
	partitionOwners() []int32
}

// PlanMoves compares two Sharders of the same strategy (typically before and
// after shards are added, removed or reweighted) and returns what changes
// owner. It fails with ErrIncomparable when the two are of different
// strategies or of different partition counts.
func PlanMoves(from, to Sharder) (*Plan, error) {
	if from == nil || to == nil {
		return nil, fmt.Errorf("%w: nil sharder", ErrIncomparable)
	}
	if fmt.Sprintf("%T", from) != fmt.Sprintf("%T", to) {
		return nil, fmt.Errorf("%w: %T and %T", ErrIncomparable, from, to)
	}
	p := &Plan{from: from, to: to}
	switch f := from.(type) {
	case partitionTable:
		t := to.(partitionTable)
		fo, to2 := f.partitionOwners(), t.partitionOwners()
		if len(fo) != len(to2) {
			return nil, fmt.Errorf("%w: %d and %d partitions", ErrIncomparable, len(fo), len(to2))
		}
		fn, tn := f.Shards(), t.Shards()
		p.Unit = UnitPartitions
		for i := range fo {
			if a, b := fn[fo[i]], tn[to2[i]]; a != b {
				p.Moves = append(p.Moves, Move{From: a, To: b, Partition: i})
			}
		}
		p.fraction, p.exact = float64(len(p.Moves))/float64(len(fo)), true
	case *Ring:
		p.Unit = UnitHashRanges
		p.Moves, p.fraction = planRing(f, to.(*Ring))
		p.exact = true
	case *Range:
		p.Unit = UnitKeyRanges
		p.Moves = planRanges(f, to.(*Range))
	default:
		p.Unit = UnitKeys
	}
	return p, nil
}

// planRing walks the union of both rings' points. Between two consecutive
// points every hash has the same owner in each ring, so each such arc either
// moves whole or not at all; adjacent arcs with the same (from, to) merge.
func planRing(from, to *Ring) ([]Move, float64) {
	cuts := make([]uint32, 0, len(from.points)+len(to.points))
	cuts = append(cuts, from.points...)
	cuts = append(cuts, to.points...)
	sort.Slice(cuts, func(i, j int) bool { return cuts[i] < cuts[j] })
	cuts = dedupSorted(cuts)

	var moves []Move
	var moved uint64
	// Arc k covers (cuts[k-1], cuts[k]]; arc 0 covers the wrap-around
	// (cuts[last], 2^32) plus [0, cuts[0]], which lookups send to the
	// owner of the first point: handle it as two intervals.
	add := func(lo, hi uint32) {
		a, b := from.ownerAt(hi), to.ownerAt(hi)
		if a == b {
			return
		}
		moved += uint64(hi) - uint64(lo) + 1
		if n := len(moves); n > 0 && moves[n-1].From == a && moves[n-1].To == b && moves[n-1].Hi+1 == uint64(lo) {
			moves[n-1].Hi = uint64(hi)
			return
		}
		moves = append(moves, Move{From: a, To: b, Lo: uint64(lo), Hi: uint64(hi)})
	}
	add(0, cuts[0])
	for k := 1; k < len(cuts); k++ {
		add(cuts[k-1]+1, cuts[k])
	}
	if last := cuts[len(cuts)-1]; last != ^uint32(0) {
		// Hashes above the last point wrap to the first point's owner,
		// which ownerAt(0) returns for both rings.
		a, b := from.ownerAt(0), to.ownerAt(0)
		if a != b {
			moved += uint64(^uint32(0)) - uint64(last)
			moves = append(moves, Move{From: a, To: b, Lo: uint64(last) + 1, Hi: uint64(^uint32(0))})
		}
	}
	return moves, float64(moved) / float64(uint64(1)<<32)
}

func dedupSorted(s []uint32) []uint32 {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
