package shard

import (
	"cmp"
	"math"
)

// Rendezvous is highest-random-weight hashing (Thaler and Ravishankar): each
// key scores every shard and goes to the highest score. Adding a shard moves
// exactly the keys it wins; removing one moves only its keys, each to its
// runner-up, spread evenly. It needs no tables, supports weights, and gives a
// natural preference list for replicated placement (Owners). A lookup costs
// one cheap mix per shard: prefer it up to a few hundred shards, Maglev or
// Bounded above that.
//
// Weighted members use the logarithmic method (score = weight / -ln u), which
// gives each shard a share of keys exactly proportional to its weight.
type Rendezvous struct {
	names    []string
	seeds    []uint64
	weights  []float64 // nil when every weight is 1
	weighted bool
}

var _ Replicator = (*Rendezvous)(nil)

// NewRendezvous returns a Rendezvous over members.
func NewRendezvous(members []Member) (*Rendezvous, error) {
	names, total, err := validate(members)
	if err != nil {
		return nil, err
	}
	r := &Rendezvous{names: names, seeds: make([]uint64, len(names))}
	for i, n := range names {
		r.seeds[i] = hashString(n, 0x5eed)
	}
	if total != len(members) {
		r.weighted = true
		r.weights = make([]float64, len(members))
		for i, m := range members {
			r.weights[i] = float64(m.Weight)
		}
	}
	return r, nil
}

// Shards returns the shard names in construction order.
func (r *Rendezvous) Shards() []string { return r.names }

// Shard returns the shard that owns key.
func (r *Rendezvous) Shard(key string) string {
	h := keyHash(key)
	best := 0
	if r.weighted {
		bs := r.weightedScore(h, 0)
		for i := 1; i < len(r.seeds); i++ {
			if s := r.weightedScore(h, i); s > bs || s == bs && r.names[i] < r.names[best] {
				best, bs = i, s
			}
		}
		return r.names[best]
	}
	if best, tie := highestScore(h, r.seeds); !tie {
		return r.names[best]
	}
	// Two shards scored the same (odds 2^-64 per pair): the lower name
	// wins, so the outcome does not depend on member order.
	bs := hrwScore(h, r.seeds[0])
	for i, seed := range r.seeds[1:] {
		if s := hrwScore(h, seed); s > bs || s == bs && r.names[i+1] < r.names[best] {
			best, bs = i+1, s
		}
	}
	return r.names[best]
}

// hrwScore is shard seed's unweighted score for key hash h. Only the order
// of scores matters, so one xorshift (to fold the high bits down) and one
// multiply (to carry every bit up into the high bits that decide the
// order) suffice: the winner is uniform over shards (chi-square over a
// million keys as for an ideal random choice), and it is the whole cost of
// a lookup, so it is kept cheaper than a full 64-bit mix.
func hrwScore(h, seed uint64) uint64 {
	x := h ^ seed
	x ^= x >> 32
	return x * 0xd6e8feb86659fd93
}

// highestScore returns the index of the highest unweighted score for key
// hash h, and whether another shard tied with the leader on the way. It is
// the whole cost of an unweighted lookup, so it is kept to a bare loop.
func highestScore(h uint64, seeds []uint64) (best int, tie bool) {
	bs := hrwScore(h, seeds[0])
	for i := 1; i < len(seeds); i++ {
		s := hrwScore(h, seeds[i])
		if s >= bs {
			tie = tie || s == bs
			best, bs = i, s
		}
	}
	return best, tie
}

// weightedScore is shard i's weighted score for key hash h.
func (r *Rendezvous) weightedScore(h uint64, i int) float64 {
	u := (float64(mix64(h^r.seeds[i])>>11) + 0.5) / (1 << 53) // uniform in (0, 1)
	return r.weights[i] / -math.Log(u)
}

// Owners returns the n highest-scoring shards for key, best first.
func (r *Rendezvous) Owners(key string, n int) ([]string, error) {
	if err := checkCount(n, len(r.names)); err != nil {
		return nil, err
	}
	h := keyHash(key)
	if r.weighted {
		return topOwners(r.names, n, func(i int) float64 { return r.weightedScore(h, i) }), nil
	}
	return topOwners(r.names, n, func(i int) uint64 { return hrwScore(h, r.seeds[i]) }), nil
}

// topOwners returns the names of the n highest scores, best first, ties to
// the smaller name, as Shard breaks them.
func topOwners[S cmp.Ordered](names []string, n int, score func(int) S) []string {
	idx := make([]int, 0, n)
	scores := make([]S, 0, n)
	for i := range names {
		s := score(i)
		pos := len(idx)
		for pos > 0 && (s > scores[pos-1] || s == scores[pos-1] && names[i] < names[idx[pos-1]]) {
			pos--
		}
		if pos >= n {
			continue
		}
		if len(idx) < n {
			idx, scores = append(idx, 0), append(scores, s)
		}
		copy(idx[pos+1:], idx[pos:])
		copy(scores[pos+1:], scores[pos:])
		idx[pos], scores[pos] = i, s
	}
	out := make([]string, n)
	for k, i := range idx {
		out[k] = names[i]
	}
	return out
}
