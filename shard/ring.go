package shard

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// DefaultRingPoints is the number of points a member of weight 1 gets on the
// ring when RingConfig.Points is zero: 160, ketama's 40 MD5 digests of 4
// points each. With 160 points per member the spread of key shares is about
// ±8% (one standard deviation ≈ 1/√160); more points smooth it further at the
// cost of memory and build time, never of lookup time.
const DefaultRingPoints = 160

// maxRingPoints caps the size of a ring (about 100 MB with its index); a
// configuration that would need more is refused rather than allocated.
const maxRingPoints = 10_000_000

// RingConfig configures a Ring. The zero value is the default: 160 points per
// unit of weight, the fast (non-ketama) hashes.
type RingConfig struct {
	// Points is the number of points (virtual nodes) a member of weight 1
	// gets among members of equal weight; 0 means DefaultRingPoints.
	//
	// In the default mode a member of weight w gets exactly Points·w points,
	// whatever the other members are, so the ring's total size is Points
	// times the total weight (at most 10 million).
	//
	// With Ketama, Points must be a multiple of 4 and keeps ketama's meaning:
	// the average member gets Points/4 MD5 digests, and a member of weight w
	// among n members of total weight W gets floor(w/W · Points/4 · n)
	// digests (4 points each), at least 1. Only the default, 160, is
	// compatible with other ketama implementations.
	Points int

	// Ketama makes the ring point-for-point and key-for-key identical to
	// last.fm's libketama and its ports (libmemcached's weighted ketama
	// distribution, Algorithm::ConsistentHash::Ketama, node-hashring,
	// dgryski/go-ketama): member points come from MD5 of "<name>-<k>" and
	// keys are placed by MD5 of the whole key. Use it to share a
	// memcached pool with clients in other languages; it costs an MD5 per
	// lookup (~5× the default mode). Name members the way the other
	// clients do: libketama uses "host:port"; libmemcached uses "host"
	// when the port is 11211 and "host:port" otherwise.
	//
	// Like every strategy of this package, Ketama mode places a key by its
	// {hash tag} when it has one ("{user42}:cart" by "user42"), which
	// other ketama clients do not: keys containing a non-empty {...} are
	// the one place the two disagree, so keep such keys out of a pool
	// shared with them.
	Ketama bool
}

// Ring is a consistent-hash ring with weighted virtual nodes: every member
// owns several points on a circle of 2^32 positions, and a key belongs to
// the member owning the first point at or after the key's position
// (Point), wrapping past the top to the first point.
//
// Membership changes move the minimum: in the default mode a member keeps
// exactly its points whatever the others are, so adding a member moves keys
// only to it (about w/W of them) and removing one moves only its own keys,
// each to the member whose point follows. (In Ketama mode this holds among
// members of equal weight whose digest count stays 40; with unequal
// weights ketama recomputes every member's digest count from the total, as
// its other implementations do, so keys also move between old members.)
// PlanMoves(old, new) lists the moved hash intervals exactly.
//
// Point collisions (two members hashing a point to the same position) are
// resolved for the member with the lower name, so a Ring depends only on
// the set of members, never on their order.
//
// Lookups cost one hash and an indexed search: a table on the top bits of
// the position gives the first candidate point, and a short scan (about one
// point on average) finishes it. A Ring is immutable and safe for
// concurrent use. Owners gives replicated placement: the next distinct
// members clockwise.
type Ring struct {
	names  []string
	ketama bool

	// per is the points per unit of weight in the default mode, 0 in
	// Ketama mode; weights are the members' weights. PlanMoves uses them
	// to find the points that differ between two rings without walking
	// both.
	per     int
	weights []int

	// points holds the ring positions, sorted ascending and distinct;
	// owners[i] is the index in names of the member owning points[i].
	points []uint32
	owners []int32

	// index[b] is the first i with points[i] >= b<<shift, for b in
	// [0, 2^(32-shift)]; index[len-1] == len(points).
	index []uint32
	shift uint32
}

var _ Replicator = (*Ring)(nil)

// NewRing builds a ring over members. It fails with the errors of the member
// checks (ErrNoShards, ErrEmptyName, ErrDuplicateName, ErrInvalidWeight) and
// with ErrInvalidConfig for a negative Points, a Ketama Points that is not a
// multiple of 4, or a ring that would exceed 10 million points.
func NewRing(members []Member, cfg RingConfig) (*Ring, error) {
	names, total, err := validate(members)
	if err != nil {
		return nil, err
	}
	per := cfg.Points
	switch {
	case per < 0:
		return nil, fmt.Errorf("%w: ring points %d < 0", ErrInvalidConfig, per)
	case per == 0:
		per = DefaultRingPoints
	case per > maxRingPoints:
		return nil, fmt.Errorf("%w: ring points %d exceed %d", ErrInvalidConfig, per, maxRingPoints)
	}
	r := &Ring{names: names, ketama: cfg.Ketama}
	var pts []ringPoint
	if cfg.Ketama {
		if per%4 != 0 {
			return nil, fmt.Errorf("%w: ketama ring points %d are not a multiple of 4", ErrInvalidConfig, per)
		}
		// Each member gets at most its share plus the one digest every
		// member is guaranteed: bound the total before allocating.
		if n := len(members); int64(per)*int64(n)+4*int64(n) > maxRingPoints {
			return nil, fmt.Errorf("%w: %d members × %d points exceed %d points", ErrInvalidConfig, n, per, maxRingPoints)
		}
		pts = ketamaPoints(members, total, per/4)
	} else {
		if int64(per)*int64(total) > maxRingPoints {
			return nil, fmt.Errorf("%w: total weight %d × %d points exceed %d points", ErrInvalidConfig, total, per, maxRingPoints)
		}
		r.per = per
		r.weights = make([]int, len(members))
		pts = make([]ringPoint, 0, per*total)
		for i, m := range members {
			r.weights[i] = m.Weight
			for k := range per * m.Weight {
				pts = append(pts, ringPoint{pos: ringPointHash(m.Name, k), owner: int32(i)})
			}
		}
	}
	r.build(pts)
	return r, nil
}

// ringPoint is one point during construction.
type ringPoint struct {
	pos   uint32
	owner int32
}

// ringPointHash is the position of point k of the member called name in
// the default mode: the high half of a mixed hash of the name seeded by k.
func ringPointHash(name string, k int) uint32 {
	return uint32(mix64(hashString(name, uint64(k))) >> 32)
}

// build sorts pts, drops collisions in favour of the lower name, and builds
// the lookup index.
//
// Each point is packed into one uint64, its position above its owner's rank
// in name order, so that one radix sort on plain integers orders the points
// by position and collisions by name: a comparison sort with a name lookup
// per comparison cost ~4× as much per point at 160,000 points, and its
// n log n grew with the ring.
func (r *Ring) build(pts []ringPoint) {
	rank := nameRanks(r.names)
	keys := make([]uint64, len(pts))
	for i, p := range pts {
		keys[i] = uint64(p.pos)<<32 | uint64(rank[p.owner])
	}
	sortUint64(keys)
	byRank := make([]int32, len(r.names))
	for i, k := range rank {
		byRank[k] = int32(i)
	}
	r.points = make([]uint32, 0, len(keys))
	r.owners = make([]int32, 0, len(keys))
	for i, k := range keys {
		if i > 0 && k>>32 == keys[i-1]>>32 {
			continue // the lower name, sorted first, keeps the point
		}
		r.points = append(r.points, uint32(k>>32))
		r.owners = append(r.owners, byRank[uint32(k)])
	}

	// About two buckets per point: the scan after the table lookup then
	// looks at fewer than one point on average.
	k := uint32(bits.Len(uint(len(r.points)))) + 1
	k = min(max(k, 1), 22) // at most 16 MB of index
	r.shift = 32 - k
	r.index = make([]uint32, 1<<k+1)
	i := 0
	for b := range r.index {
		start := uint64(b) << r.shift
		for i < len(r.points) && uint64(r.points[i]) < start {
			i++
		}
		r.index[b] = uint32(i)
	}
}

// nameRanks returns each name's rank in ascending order of names.
func nameRanks(names []string) []uint32 {
	order := make([]int32, len(names))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(names[a], names[b]) })
	rank := make([]uint32, len(names))
	for k, i := range order {
		rank[i] = uint32(k)
	}
	return rank
}

// lowerBound returns the index of the first point at or after h, or
// len(points) when there is none.
func (r *Ring) lowerBound(h uint32) int {
	b := h >> r.shift
	i, end := r.index[b], r.index[b+1]
	for i < end && r.points[i] < h {
		i++
	}
	return int(i)
}

// search returns the index of the first point at or after h, wrapping to 0.
func (r *Ring) search(h uint32) int {
	b := h >> r.shift
	idx := r.index[b : b+2 : b+2]
	i, end := idx[0], idx[1]
	pts := r.points
	// points[end] (when it exists) is >= the next bucket's start > h, so
	// the answer lies in [i, end].
	for i < end && pts[i] < h {
		i++
	}
	if int(i) == len(pts) {
		return 0
	}
	return int(i)
}

// Point returns the key's position on the ring: the high 32 bits of the
// hash of the key (of its {hash tag}, when it has one), or in Ketama mode
// the first four bytes of its MD5, little-endian. Plans of UnitHashRanges
// are intervals of these positions.
func (r *Ring) Point(key string) uint32 {
	if r.ketama {
		return ketamaKeyHash(hashTag(key))
	}
	return uint32(keyHash(key) >> 32)
}

// Shard returns the member owning the first point at or after Point(key).
func (r *Ring) Shard(key string) string {
	return r.names[r.owners[r.search(r.Point(key))]]
}

// ownerAt returns the owner of ring position h.
func (r *Ring) ownerAt(h uint32) string {
	return r.names[r.owners[r.search(h)]]
}

// Shards returns the member names in the order NewRing was given them.
func (r *Ring) Shards() []string { return r.names }

// Owners returns n distinct members for key: Shard(key) first, then the
// owners of the following points clockwise, skipping members already
// listed. The i-th owner is the shard the key moves to if the first i are
// removed from the ring, so replicas land where a failover would look. It
// fails with ErrInvalidCount when n < 1 or n > len(Shards()).
func (r *Ring) Owners(key string, n int) ([]string, error) {
	if err := checkCount(n, len(r.names)); err != nil {
		return nil, err
	}
	out := make([]string, 0, n)
	var small [4]uint64 // up to 256 members without allocating
	seen := small[:]
	if len(r.names) > 64*len(small) {
		seen = make([]uint64, (len(r.names)+63)/64)
	}
	// Every member owns at least one point, so the walk ends within one
	// turn of the ring.
	for i := r.search(r.Point(key)); len(out) < n; i++ {
		if i == len(r.points) {
			i = 0
		}
		o := r.owners[i]
		if seen[o>>6]&(1<<(o&63)) != 0 {
			continue
		}
		seen[o>>6] |= 1 << (o & 63)
		out = append(out, r.names[o])
	}
	return out, nil
}
