package shard

// Internal tests: they check the ring's points and its indexed search
// against straightforward references, which the exported API cannot show.

import (
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func ringNames(n int) []Member {
	m := make([]Member, n)
	for i := range m {
		m[i] = Member{Name: fmt.Sprintf("node-%03d", i), Weight: 1}
	}
	return m
}

func ringKeys(n int) []string {
	k := make([]string, n)
	for i := range k {
		k[i] = fmt.Sprintf("user:%018d", i)
	}
	return k
}

func TestRingRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members []Member
		cfg     RingConfig
		err     error
	}{
		{"no members", nil, RingConfig{}, ErrNoShards},
		{"empty name", []Member{{Name: "a", Weight: 1}, {Name: "", Weight: 1}}, RingConfig{}, ErrEmptyName},
		{"duplicate", Members("a", "b", "a"), RingConfig{}, ErrDuplicateName},
		{"zero weight", []Member{{Name: "a", Weight: 0}}, RingConfig{}, ErrInvalidWeight},
		{"negative weight", []Member{{Name: "a", Weight: -1}}, RingConfig{Ketama: true}, ErrInvalidWeight},
		{"negative points", Members("a"), RingConfig{Points: -1}, ErrInvalidConfig},
		{"huge points", Members("a"), RingConfig{Points: maxRingPoints + 1}, ErrInvalidConfig},
		{"points × weight too big", []Member{{Name: "a", Weight: 70_000}}, RingConfig{}, ErrInvalidConfig},
		{"points × members too big", ringNames(11), RingConfig{Points: 1_000_000}, ErrInvalidConfig},
		{"ketama points not ×4", Members("a"), RingConfig{Points: 6, Ketama: true}, ErrInvalidConfig},
		{"ketama too big", ringNames(300), RingConfig{Points: 40_000, Ketama: true}, ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRing(tc.members, tc.cfg)
			require.ErrorIs(t, err, tc.err)
			require.Nil(t, r)
		})
	}
}

// linearOwner is the reference lookup: the first point >= h by a plain
// scan, wrapping to the first point.
func linearOwner(r *Ring, h uint32) string {
	for i, p := range r.points {
		if p >= h {
			return r.names[r.owners[i]]
		}
	}
	return r.names[r.owners[0]]
}

func TestRingSearchMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		members []Member
		cfg     RingConfig
	}{
		{ringNames(1), RingConfig{Points: 1}},
		{ringNames(2), RingConfig{Points: 1}},
		{ringNames(3), RingConfig{Points: 3}},
		{ringNames(10), RingConfig{}},
		{ringNames(100), RingConfig{}},
		{ringNames(7), RingConfig{Ketama: true}},
	} {
		r, err := NewRing(tc.members, tc.cfg)
		require.NoError(t, err)
		require.True(t, slices.IsSorted(r.points))
		require.Len(t, r.owners, len(r.points))
		probes := []uint32{0, 1, ^uint32(0), ^uint32(0) - 1}
		for _, p := range r.points {
			probes = append(probes, p, p-1, p+1)
		}
		for range 20_000 {
			probes = append(probes, rng.Uint32())
		}
		for _, h := range probes {
			i := sort.Search(len(r.points), func(i int) bool { return r.points[i] >= h })
			if i == len(r.points) {
				i = 0
			}
			require.Equal(t, i, r.search(h), "h=%d", h)
			want := r.names[r.owners[i]]
			if len(r.points) < 2000 { // the plain scan is slow on big rings
				want = linearOwner(r, h)
			}
			require.Equal(t, want, r.ownerAt(h), "h=%d", h)
		}
	}
}

// TestRingKetamaVectors checks Ketama mode against values published by
// other ketama implementations' own tests.
func TestRingKetamaVectors(t *testing.T) {
	t.Run("libketama python binding", func(t *testing.T) {
		// RJ/ketama python_ketama/tests.py: servers 127.0.0.1:11211 (600)
		// and 127.0.0.1:11212 (400); hashi("test") = 3446378249;
		// get_server("test") = (3454255383, "127.0.0.1:11211"); 320 points.
		r, err := NewRing([]Member{{Name: "127.0.0.1:11211", Weight: 600}, {Name: "127.0.0.1:11212", Weight: 400}},
			RingConfig{Ketama: true})
		require.NoError(t, err)
		require.Equal(t, uint32(3446378249), r.Point("test"))
		require.Len(t, r.points, 320)
		i := r.search(r.Point("test"))
		require.Equal(t, uint32(3454255383), r.points[i])
		require.Equal(t, "127.0.0.1:11211", r.Shard("test"))
	})
	t.Run("Algorithm::ConsistentHash::Ketama", func(t *testing.T) {
		// The key counts dgryski/go-ketama's test records from the Perl
		// module: buckets server0..server9 of weight 1, keys foo0..foo99999.
		want := map[string]int{
			"server0": 9478, "server1": 9029, "server2": 10863, "server3": 10011, "server4": 9734,
			"server5": 9444, "server6": 10756, "server7": 10021, "server8": 10762, "server9": 9902,
		}
		members := make([]Member, 10)
		for i := range members {
			members[i] = Member{Name: fmt.Sprintf("server%d", i), Weight: 1}
		}
		r, err := NewRing(members, RingConfig{Ketama: true})
		require.NoError(t, err)
		got := map[string]int{}
		for i := range 100_000 {
			got[r.Shard("foo"+strconv.Itoa(i))]++
		}
		require.Equal(t, want, got)
	})
}

// ketamaReference is an independent, literal reimplementation of
// libketama's continuum: fmt for the strings, the C precision rules for the
// share, and a linear scan for lookups.
type ketamaReference struct {
	points []uint32
	owner  map[uint32]string
}

func newKetamaReference(members []Member) *ketamaReference {
	total := 0
	for _, m := range members {
		total += m.Weight
	}
	ref := &ketamaReference{owner: map[uint32]string{}}
	for _, m := range members {
		pct := float32(m.Weight) / float32(total)
		ks := int(float32(float64(pct) * 40.0 * float64(float32(len(members)))))
		ks = max(ks, 1) // our one deliberate difference
		for k := 0; k < ks; k++ {
			d := md5.Sum([]byte(fmt.Sprintf("%s-%d", m.Name, k)))
			for h := 0; h < 4; h++ {
				p := uint32(d[3+h*4])<<24 | uint32(d[2+h*4])<<16 | uint32(d[1+h*4])<<8 | uint32(d[h*4])
				if prev, ok := ref.owner[p]; !ok || m.Name < prev {
					ref.owner[p] = m.Name
				}
				ref.points = append(ref.points, p)
			}
		}
	}
	slices.Sort(ref.points)
	ref.points = slices.Compact(ref.points)
	return ref
}

func (ref *ketamaReference) shard(key string) string {
	d := md5.Sum([]byte(key))
	h := uint32(d[3])<<24 | uint32(d[2])<<16 | uint32(d[1])<<8 | uint32(d[0])
	for _, p := range ref.points {
		if p >= h {
			return ref.owner[p]
		}
	}
	return ref.owner[ref.points[0]]
}

func TestRingKetamaMatchesReference(t *testing.T) {
	for _, members := range [][]Member{
		Members("10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"),
		{{Name: "a", Weight: 5}, {Name: "b", Weight: 3}, {Name: "c", Weight: 1}, {Name: "d", Weight: 7}},
		{{Name: "tiny", Weight: 1}, {Name: "huge", Weight: 100_000}}, // tiny gets 1 digest
	} {
		r, err := NewRing(members, RingConfig{Ketama: true})
		require.NoError(t, err)
		ref := newKetamaReference(members)
		require.Equal(t, ref.points, r.points)
		for _, k := range ringKeys(3000) {
			require.Equal(t, ref.shard(k), r.Shard(k), k)
		}
	}
}

func TestRingKetamaDigestCounts(t *testing.T) {
	// Equal weights give every member 40 digests, except at the member
	// counts where libketama's single-precision share rounds 40 down to
	// 39, which Ketama mode reproduces.
	rounded := []int{61, 122, 237, 244, 474, 488, 933, 948, 951, 953, 976}
	for n := 1; n <= 1000; n++ {
		want := 40
		if slices.Contains(rounded, n) {
			want = 39
		}
		require.Equal(t, want, ketamaDigests(1, n, n, 40), "n=%d", n)
	}
	// A member far too light for the formula still gets one digest.
	r, err := NewRing([]Member{{Name: "tiny", Weight: 1}, {Name: "huge", Weight: 1_000_000}}, RingConfig{Ketama: true})
	require.NoError(t, err)
	tiny := 0
	for _, o := range r.owners {
		if r.names[o] == "tiny" {
			tiny++
		}
	}
	require.Equal(t, 4, tiny)
}

func TestRingCollisionsGoToLowerName(t *testing.T) {
	r := &Ring{names: []string{"zed", "amy", "bob"}}
	r.build([]ringPoint{{7, 0}, {3, 2}, {7, 1}, {3, 0}, {9, 2}})
	require.Equal(t, []uint32{3, 7, 9}, r.points)
	require.Equal(t, []int32{2, 1, 2}, r.owners) // bob < zed at 3, amy < zed at 7
}

func TestRingIgnoresMemberOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, cfg := range []RingConfig{{}, {Ketama: true}, {Points: 7}} {
		members := ringNames(40)
		for i := range members {
			members[i].Weight = 1 + i%4
		}
		a, err := NewRing(members, cfg)
		require.NoError(t, err)
		shuffled := slices.Clone(members)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		b, err := NewRing(shuffled, cfg)
		require.NoError(t, err)
		require.Equal(t, a.points, b.points)
		for _, k := range ringKeys(10_000) {
			require.Equal(t, a.Shard(k), b.Shard(k))
		}
		require.Equal(t, shuffled[0].Name, b.Shards()[0], "Shards keeps construction order")
	}
}

func TestRingOddKeys(t *testing.T) {
	for _, cfg := range []RingConfig{{}, {Ketama: true}} {
		r, err := NewRing(ringNames(13), cfg)
		require.NoError(t, err)
		for _, k := range []string{"", "\xff\xfe", strings.Repeat("x", 1<<20), strings.Repeat("y", 128), strings.Repeat("y", 129)} {
			require.Contains(t, r.Shards(), r.Shard(k))
		}
		require.Equal(t, r.Shard("{user1}:a"), r.Shard("{user1}:b"))
		require.Equal(t, r.Shard("user1"), r.Shard("{user1}:b"))
	}
}

func TestRingWeights(t *testing.T) {
	// 8 members, one of weight 2: it should get 2/9 of the keys. With 160
	// points per unit of weight, shares vary by several percent.
	for _, cfg := range []RingConfig{{}, {Ketama: true}} {
		members := ringNames(8)
		members[5].Weight = 2
		r, err := NewRing(members, cfg)
		require.NoError(t, err)
		count := map[string]int{}
		ks := ringKeys(200_000)
		for _, k := range ks {
			count[r.Shard(k)]++
		}
		unit := float64(len(ks)) / 9
		require.InDelta(t, 2.0, float64(count[members[5].Name])/unit, 0.3)
	}
}

// TestRingMinimalDisruption: adding a member moves keys only to it, and
// removing one moves only its keys, exactly.
func TestRingMinimalDisruption(t *testing.T) {
	ks := ringKeys(100_000)
	for _, cfg := range []RingConfig{{}, {Ketama: true}} {
		members := ringNames(11)
		if !cfg.Ketama {
			members[2].Weight, members[10].Weight = 3, 2 // exact for weights too
		}
		ten, err := NewRing(members[:10], cfg)
		require.NoError(t, err)
		eleven, err := NewRing(members, cfg)
		require.NoError(t, err)
		without := slices.Delete(slices.Clone(members[:10]), 4, 5)
		nine, err := NewRing(without, cfg)
		require.NoError(t, err)
		added, removed := 0, 0
		for _, k := range ks {
			a := ten.Shard(k)
			if b := eleven.Shard(k); a != b {
				added++
				require.Equal(t, members[10].Name, b)
			}
			if c := nine.Shard(k); a != c {
				removed++
				require.Equal(t, members[4].Name, a)
			}
		}
		t.Logf("ketama=%v: adding moved %.4f, removing %.4f of keys", cfg.Ketama, float64(added)/1e5, float64(removed)/1e5)
		require.Positive(t, added)
		require.Positive(t, removed)
	}
}

func TestRingPlanMoves(t *testing.T) {
	ks := ringKeys(100_000)
	for _, cfg := range []RingConfig{{}, {Ketama: true}} {
		for _, change := range []struct{ from, to []Member }{
			{ringNames(10), ringNames(11)},
			{ringNames(11), ringNames(10)},
			{ringNames(5), append(ringNames(5)[1:], Member{Name: "new", Weight: 2})},
		} {
			from, err := NewRing(change.from, cfg)
			require.NoError(t, err)
			to, err := NewRing(change.to, cfg)
			require.NoError(t, err)
			plan, err := PlanMoves(from, to)
			require.NoError(t, err)
			require.Equal(t, UnitHashRanges, plan.Unit)
			require.True(t, sort.SliceIsSorted(plan.Moves, func(i, j int) bool { return plan.Moves[i].Lo < plan.Moves[j].Lo }))
			moved := 0
			for _, k := range ks {
				p := uint64(to.Point(k))
				require.Equal(t, from.Point(k), to.Point(k))
				i := sort.Search(len(plan.Moves), func(i int) bool { return plan.Moves[i].Hi >= p })
				listed := i < len(plan.Moves) && plan.Moves[i].Lo <= p
				a, b := from.Shard(k), to.Shard(k)
				require.Equal(t, a != b, listed, "key %q at %d", k, p)
				if listed {
					moved++
					require.Equal(t, a, plan.Moves[i].From)
					require.Equal(t, b, plan.Moves[i].To)
				}
			}
			frac, exact := plan.Fraction()
			require.True(t, exact)
			measured := float64(moved) / float64(len(ks))
			t.Logf("ketama=%v %d→%d members: %d moves, fraction %.4f, measured %.4f",
				cfg.Ketama, len(change.from), len(change.to), len(plan.Moves), frac, measured)
			require.InDelta(t, measured, frac, 0.005)
		}
	}
}

func TestRingOwners(t *testing.T) {
	for _, n := range []int{1, 5, 300} { // 300 > 256 takes the allocated seen-set
		r, err := NewRing(ringNames(n), RingConfig{Points: 20})
		require.NoError(t, err)
		for _, k := range ringKeys(200) {
			all, err := r.Owners(k, n)
			require.NoError(t, err)
			require.Equal(t, r.Shard(k), all[0])
			require.ElementsMatch(t, r.Shards(), all)
			some, err := r.Owners(k, (n+1)/2)
			require.NoError(t, err)
			require.Equal(t, all[:len(some)], some)
		}
		for _, bad := range []int{0, -1, n + 1} {
			_, err := r.Owners("k", bad)
			require.ErrorIs(t, err, ErrInvalidCount)
		}
	}
}

func TestRingAllocations(t *testing.T) {
	for _, cfg := range []RingConfig{{}, {Ketama: true}} {
		r, err := NewRing(ringNames(100), cfg)
		require.NoError(t, err)
		key := "user:000000000000000042"
		require.Zero(t, testing.AllocsPerRun(100, func() { _ = r.Shard(key) }))
		require.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _, _ = r.Owners(key, 3) }))
	}
}

var sink string

func benchRing(b *testing.B, n int, cfg RingConfig) {
	r, err := NewRing(ringNames(n), cfg)
	require.NoError(b, err)
	keys := ringKeys(1 << 16)
	mask := len(keys) - 1
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink = r.Shard(keys[i&mask])
	}
}

func BenchmarkRing(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(strconv.Itoa(n), func(b *testing.B) { benchRing(b, n, RingConfig{}) })
	}
}

func BenchmarkRingKetama(b *testing.B) {
	b.Run("100", func(b *testing.B) { benchRing(b, 100, RingConfig{Ketama: true}) })
}

func BenchmarkRingOwners3(b *testing.B) {
	r, err := NewRing(ringNames(100), RingConfig{})
	require.NoError(b, err)
	keys := ringKeys(1 << 16)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		o, _ := r.Owners(keys[i&(len(keys)-1)], 3)
		sink = o[0]
	}
}

func BenchmarkNewRing(b *testing.B) {
	members := ringNames(100)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = NewRing(members, RingConfig{})
	}
}
