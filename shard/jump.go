package shard

import "fmt"

// Jump is Lamping and Veach's jump consistent hash with an indirection that
// lets any shard, not only the last, be removed.
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
// another process. Lookups take O(ln n) time and no memory beyond the layout;
// with holes, the expected number of rehashes is buckets/live.
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

// jumpHash is the jump consistent hash of Lamping and Veach (2014): the
// bucket in [0, n) for key, moving only 1/(n+1) of keys when n grows by one.
func jumpHash(key uint64, n int) int {
	var b, j int64 = -1, 0
	for j < int64(n) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}
