package shard

import (
	"fmt"
	"slices"
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

// planRing lists the hash intervals whose owner differs. Between two
// consecutive points of the union of both rings every hash has the same
// owner in each ring, so each such arc moves whole or not at all, and it can
// move only when the point ending it is not the same point, with the same
// owner, in both rings. ringCuts finds the arcs that may move; adjacent
// moved arcs with the same (from, to) merge.
func planRing(from, to *Ring) ([]Move, float64) {
	return planArcs(from, to, ringCuts(from, to))
}

// planArcs lists the moved arcs among those ending at cuts, ascending
// points of the union of both rings.
func planArcs(from, to *Ring, cuts []uint32) ([]Move, float64) {
	var moves []Move
	var moved uint64
	wrap := false // the arc ending at the first point of the union moved
	for _, c := range cuts {
		a, b := from.ownerAt(c), to.ownerAt(c)
		if a == b {
			continue
		}
		// The arc ending at c starts after the last point below c in
		// either ring. Below the first point of both, it is [0, c]
		// together with the hashes above the last point, which lookups
		// send to the first point too: that part is listed last.
		lo := uint32(0)
		pf, okf := from.before(c)
		pt, okt := to.before(c)
		switch {
		case okf || okt:
			lo = max(pf, pt) + 1
		default:
			wrap = true
		}
		moved += uint64(c) - uint64(lo) + 1
		if n := len(moves); n > 0 && moves[n-1].From == a && moves[n-1].To == b && moves[n-1].Hi+1 == uint64(lo) {
			moves[n-1].Hi = uint64(c)
			continue
		}
		moves = append(moves, Move{From: a, To: b, Lo: uint64(lo), Hi: uint64(c)})
	}
	if last := max(from.points[len(from.points)-1], to.points[len(to.points)-1]); wrap && last != ^uint32(0) {
		a, b := from.ownerAt(0), to.ownerAt(0)
		moved += uint64(^uint32(0)) - uint64(last)
		moves = append(moves, Move{From: a, To: b, Lo: uint64(last) + 1, Hi: uint64(^uint32(0))})
	}
	return moves, float64(moved) / float64(uint64(1)<<32)
}

// before returns the last point strictly below h, if any.
func (r *Ring) before(h uint32) (uint32, bool) {
	i := r.lowerBound(h)
	if i == 0 {
		return 0, false
	}
	return r.points[i-1], true
}

// ringCuts returns, ascending and distinct, every point that can end a moved
// arc. Two default-mode rings with the same points per weight share every
// point of every member whose weight is unchanged, so only the points of the
// members added, removed or reweighted can: the plan then costs about what
// changed, not the size of the rings. Otherwise (Ketama mode, where digest
// counts depend on the whole membership, or a different Points) it is the
// union of both rings, merged in one pass.
func ringCuts(from, to *Ring) []uint32 {
	if from.per == 0 || from.per != to.per {
		return mergeSorted(from.points, to.points)
	}
	was := make(map[string]int, len(from.names))
	for i, n := range from.names {
		was[n] = from.weights[i]
	}
	var cuts []uint32
	points := func(name string, lo, hi int) {
		for k := lo * from.per; k < hi*from.per; k++ {
			cuts = append(cuts, ringPointHash(name, k))
		}
	}
	for i, n := range to.names {
		w, ok := was[n]
		delete(was, n)
		switch now := to.weights[i]; {
		case !ok:
			points(n, 0, now)
		case w != now:
			points(n, min(w, now), max(w, now))
		}
	}
	for n, w := range was { // removed; the order is restored by the sort
		points(n, 0, w)
	}
	slices.Sort(cuts)
	return dedupSorted(cuts)
}

// mergeSorted returns the ascending union of two ascending slices.
func mergeSorted(a, b []uint32) []uint32 {
	out := make([]uint32, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
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
