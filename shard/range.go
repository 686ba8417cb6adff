package shard

import (
	"fmt"
	"sort"
)

// A Span is one key range of a Range sharder: the keys from Start
// (inclusive) up to the next span's Start (exclusive) belong to Shard.
type Span struct {
	Start string
	Shard string
}

// Range partitions keys by ordered boundaries, as in "users A–M on one
// database, N–Z on another". Keys compare as bytes (Go string order), so the
// caller chooses the key's form: lower-case names before sharding by letter,
// or zero-pad numbers so they sort numerically. Range does not read hash
// tags: a key's position is the whole key.
//
// Ranges keep related keys together and make range scans local to a shard,
// at the price of hot spots when keys cluster; Split, Merge and Assign move
// a boundary or a range, and PlanMoves lists the key ranges that change
// owner. A lookup is a binary search over the boundaries.
type Range struct {
	starts []string
	owners []string
	names  []string // distinct owners, in span order
}

var _ Sharder = (*Range)(nil)

// NewRange returns a Range over spans. The first span must start at "" so
// that every key has an owner; starts must be strictly increasing; shard
// names must not be empty. A shard may own several spans.
func NewRange(spans []Span) (*Range, error) {
	if len(spans) == 0 {
		return nil, ErrNoShards
	}
	if spans[0].Start != "" {
		return nil, fmt.Errorf("%w: the first span starts at %q, not \"\", so keys below it have no owner", ErrInvalidRange, spans[0].Start)
	}
	r := &Range{starts: make([]string, len(spans)), owners: make([]string, len(spans))}
	seen := map[string]bool{}
	for i, s := range spans {
		if s.Shard == "" {
			return nil, fmt.Errorf("%w (span %d, starting at %q)", ErrEmptyName, i, s.Start)
		}
		if i > 0 && s.Start <= spans[i-1].Start {
			return nil, fmt.Errorf("%w: span %d starts at %q, not after %q", ErrInvalidRange, i, s.Start, spans[i-1].Start)
		}
		r.starts[i], r.owners[i] = s.Start, s.Shard
		if !seen[s.Shard] {
			seen[s.Shard] = true
			r.names = append(r.names, s.Shard)
		}
	}
	return r, nil
}

// Shards returns the distinct shards in span order.
func (r *Range) Shards() []string { return r.names }

// Spans returns the spans in order.
func (r *Range) Spans() []Span {
	out := make([]Span, len(r.starts))
	for i := range r.starts {
		out[i] = Span{Start: r.starts[i], Shard: r.owners[i]}
	}
	return out
}

// Shard returns the shard whose span holds key.
func (r *Range) Shard(key string) string {
	return r.owners[r.spanOf(key)]
}

// spanOf returns the index of the last span starting at or before key.
func (r *Range) spanOf(key string) int {
	// First span starting after key, minus one; starts[0] == "" <= key.
	lo, hi := 1, len(r.starts)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r.starts[mid] <= key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// Split returns a Range in which the span holding at is cut at at, and the
// keys from at to the end of that span belong to shard (a new shard or an
// existing one). at must not already be a boundary.
func (r *Range) Split(at, shard string) (*Range, error) {
	if shard == "" {
		return nil, ErrEmptyName
	}
	i := r.spanOf(at)
	if r.starts[i] == at {
		return nil, fmt.Errorf("%w: %q is already a boundary; use Assign to move the span", ErrInvalidRange, at)
	}
	spans := r.Spans()
	spans = append(spans[:i+1], append([]Span{{Start: at, Shard: shard}}, spans[i+1:]...)...)
	return NewRange(spans)
}

// Merge returns a Range in which the span starting at start is joined to the
// span before it, whose shard then owns both.
func (r *Range) Merge(start string) (*Range, error) {
	i := sort.SearchStrings(r.starts, start)
	if i == len(r.starts) || r.starts[i] != start {
		return nil, fmt.Errorf("%w: no span starts at %q", ErrInvalidRange, start)
	}
	if i == 0 {
		return nil, fmt.Errorf("%w: the first span has no span before it to merge into", ErrInvalidRange)
	}
	spans := r.Spans()
	return NewRange(append(spans[:i], spans[i+1:]...))
}

// Assign returns a Range in which the span starting at start belongs to
// shard. Adjacent spans of one shard are kept apart; Merge joins them.
func (r *Range) Assign(start, shard string) (*Range, error) {
	i := sort.SearchStrings(r.starts, start)
	if i == len(r.starts) || r.starts[i] != start {
		return nil, fmt.Errorf("%w: no span starts at %q", ErrInvalidRange, start)
	}
	spans := r.Spans()
	spans[i].Shard = shard
	return NewRange(spans)
}

// planRanges cuts the key space at every boundary of either Range; within
// each piece both owners are fixed, so a piece moves whole or not at all.
// Adjacent pieces with the same (from, to) are merged.
func planRanges(from, to *Range) []Move {
	cuts := append(append([]string(nil), from.starts...), to.starts...)
	sort.Strings(cuts)
	var moves []Move
	for k, start := range cuts {
		if k > 0 && start == cuts[k-1] {
			continue
		}
		end := ""
		for _, c := range cuts[k+1:] {
			if c != start {
				end = c
				break
			}
		}
		a, b := from.Shard(start), to.Shard(start)
		if a == b {
			continue
		}
		if n := len(moves); n > 0 && moves[n-1].From == a && moves[n-1].To == b && moves[n-1].End == start {
			moves[n-1].End = end
			continue
		}
		moves = append(moves, Move{From: a, To: b, Start: start, End: end})
	}
	return moves
}
