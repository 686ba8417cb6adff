package shard

import (
	"fmt"
	"math/bits"
)

// Jump is Lamping and Veach's jump consistent hash, evaluated in constant
// expected time, with an indirection that lets any shard, not only the
// last, be removed.
//
// Keys hash to buckets with jump hash; each bucket holds a shard name or a
// hole left by a removed shard. A key whose bucket is a hole is rehashed
// until it lands on a live bucket, so removing a shard moves only that
// shard's keys, spread evenly over the rest, and adding a shard (into the
// first hole, or at the end) moves only the keys it takes over. Plain jump
// hash can only drop its last bucket; the usual workaround of swapping the
// last shard into the hole moves twice the keys.
//
// The mapping depends on the bucket layout, not only on the set of names:
// persist Layout and rebuild with RestoreJump to get the same mapping in
// another process. Lookups take constant expected time and no memory beyond
// the layout; with holes, the expected number of rehashes is buckets/live.
//
// Jump is unweighted: every live shard gets an equal share of keys.
type Jump struct {
	buckets []string // shard name, or "" for a hole
	names   []string // live shards in bucket order
}

var _ Replicator = (*Jump)(nil)

// NewJump returns a Jump over members, one bucket each, in order. Weights
// must be 1.
func NewJump(members []Member) (*Jump, error) {
	names, err := validateUnweighted(members)
	if err != nil {
		return nil, err
	}
	return newJump(append([]string(nil), names...)), nil
}

// RestoreJump rebuilds a Jump from a layout returned by Layout, where ""
// marks the hole of a removed shard.
func RestoreJump(layout []string) (*Jump, error) {
	var members []Member
	for _, name := range layout {
		if name != "" {
			members = append(members, Member{Name: name, Weight: 1})
		}
	}
	if _, err := validateUnweighted(members); err != nil {
		return nil, err
	}
	return newJump(append([]string(nil), layout...)), nil
}

func newJump(buckets []string) *Jump {
	j := &Jump{buckets: buckets}
	for _, b := range buckets {
		if b != "" {
			j.names = append(j.names, b)
		}
	}
	return j
}

// Layout returns the bucket layout, "" marking holes, for RestoreJump.
func (j *Jump) Layout() []string { return append([]string(nil), j.buckets...) }

// Shards returns the live shards in bucket order.
func (j *Jump) Shards() []string { return j.names }

// Add returns a Jump with name in the first hole, or in a new last bucket.
func (j *Jump) Add(name string) (*Jump, error) {
	if name == "" {
		return nil, ErrEmptyName
	}
	for _, b := range j.buckets {
		if b == name {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateName, name)
		}
	}
	buckets := append([]string(nil), j.buckets...)
	for i, b := range buckets {
		if b == "" {
			buckets[i] = name
			return newJump(buckets), nil
		}
	}
	return newJump(append(buckets, name)), nil
}

// Remove returns a Jump with name's bucket turned into a hole, even when it
// is the last bucket: shrinking the table instead would send its keys
// elsewhere than Owners predicted. Removing the only live shard is an error.
func (j *Jump) Remove(name string) (*Jump, error) {
	for i, b := range j.buckets {
		if b == name && name != "" {
			if len(j.names) == 1 {
				return nil, fmt.Errorf("%w: cannot remove the last shard %q", ErrNoShards, name)
			}
			buckets := append([]string(nil), j.buckets...)
			buckets[i] = ""
			return newJump(buckets), nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownShard, name)
}

// Shard returns the shard that owns key.
func (j *Jump) Shard(key string) string {
	h := keyHash(key)
	if b := jumpHash(h, len(j.buckets)); j.buckets[b] != "" {
		return j.buckets[b]
	}
	b, _ := j.next(rehash(h), nil)
	return j.buckets[b]
}

// Owners returns n distinct shards for key: the shard it maps to, then the
// shards it would fall to as each one before is removed.
func (j *Jump) Owners(key string, n int) ([]string, error) {
	if err := checkCount(n, len(j.names)); err != nil {
		return nil, err
	}
	out := make([]string, 0, n)
	h := keyHash(key)
	for len(out) < n {
		var b int
		b, h = j.next(h, out)
		out = append(out, j.buckets[b])
		h = rehash(h)
	}
	return out, nil
}

// next follows the key's probe sequence from hash h to the first live
// bucket not in skip, and returns it with the hash that reached it. The
// sequence is a deterministic function of the key, so a key whose shard is
// removed goes where the rest of its sequence leads, and Owners lists those
// shards in advance. Past a generous bound, reached only with astronomically
// bad luck, it falls back to the next usable bucket in order, so lookups
// stay total.
func (j *Jump) next(h uint64, skip []string) (int, uint64) {
	n := len(j.buckets)
	b := 0
	for range 64 * n {
		b = jumpHash(h, n)
		if j.buckets[b] != "" && !contains(skip, j.buckets[b]) {
			return b, h
		}
		h = rehash(h)
	}
	for i := 1; ; i++ {
		if c := (b + i) % n; j.buckets[c] != "" && !contains(skip, j.buckets[c]) {
			return c, h
		}
	}
}

func rehash(h uint64) uint64 { return mix64(h + 0x9e3779b97f4a7c15) }

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// jumpHash is jump consistent hashing: the bucket in [0, n) for key hash h,
// such that growing n by one moves exactly the keys that land in the new
// bucket, 1/(n+1) of them.
//
// Lamping and Veach define the bucket as the largest "jump point" below n,
// where 0 is a jump point and every j >= 1 is one, independently, with
// probability 1/(j+1); their loop walks the jump points upwards, O(ln n)
// steps of dependent floating-point work. We sample the same random set
// from the top down instead, as Ertl's JumpBackHash (2024) does, in
// constant expected time:
//
//   - In each block [2^k, 2^(k+1)) the chance of no jump point is
//     prod (j/(j+1)) = 1/2, so bit k of one hash says whether block k has
//     any; given that it has, its largest jump point is uniform over it.
//   - Only the top block can reach past n-1. If its largest point is at or
//     above n, the largest point below n is uniform over [2^k, n) with
//     probability (n-2^k)/n and absent otherwise: exactly what drawing
//     uniformly from [0, 2^(k+1)) until a value below n gives (a value
//     below 2^k meaning absent). The draws come from a stream fixed by the
//     key and the block, so a larger n accepts the same draw or n itself.
//   - Lower blocks lie wholly below n: the first one with a jump point
//     gives the answer.
func jumpHash(h uint64, n int) int {
	if n <= 1 {
		return 0
	}
	top := bits.Len(uint(n - 1)) // blocks 0..top-1 hold the buckets 1..n-1
	present := mix64(h^jumpPresenceSeed) & (1<<top - 1)
	for present != 0 {
		k := bits.Len64(present) - 1
		lo := uint64(1) << k
		r := mix64(h + uint64(k+1)*jumpBlockSeed)
		if j := lo | r&(lo-1); j < uint64(n) {
			return int(j)
		}
	draw: // top block, largest point >= n: find the largest below n
		for {
			r = mix64(r + jumpBlockSeed)
			for _, x := range [2]uint64{r & (2*lo - 1), r >> 32 & (2*lo - 1)} {
				if x < lo {
					break draw // none in this block below n
				}
				if x < uint64(n) {
					return int(x)
				}
			}
		}
		present &^= lo
	}
	return 0
}

const (
	jumpPresenceSeed = 0x6a756d7050726573 // "jumpPres"
	jumpBlockSeed    = 0x9e3779b97f4a7c15
)
