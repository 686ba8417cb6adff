package shard_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/shard"
)

func TestMaglevConfig(t *testing.T) {
	members := shard.Members(names(5)...)
	for _, size := range []int{-1, 4, 65536, 3, 1 << 30} {
		_, err := shard.NewMaglev(members, shard.MaglevConfig{TableSize: size})
		require.ErrorIs(t, err, shard.ErrInvalidConfig, "size %d", size)
	}
	m, err := shard.NewMaglev(members, shard.MaglevConfig{TableSize: 5})
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, k := range keys(1000) {
		seen[m.Shard(k)] = true
	}
	require.Len(t, seen, 5, "a table as large as the shard count gives each one entry")
}

func TestMaglevIgnoresMemberOrder(t *testing.T) {
	members := shard.Members(names(30)...)
	a, err := shard.NewMaglev(members, shard.MaglevConfig{})
	require.NoError(t, err)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
	b, err := shard.NewMaglev(members, shard.MaglevConfig{})
	require.NoError(t, err)
	for _, k := range keys(20_000) {
		require.Equal(t, a.Shard(k), b.Shard(k))
	}
}

type partitioned interface {
	shard.Sharder
	Partition(key string) int
}

func TestPartitionPlansMatchLookups(t *testing.T) {
	build := map[string]func([]shard.Member) (partitioned, error){
		"maglev":  func(m []shard.Member) (partitioned, error) { return shard.NewMaglev(m, shard.MaglevConfig{}) },
		"bounded": func(m []shard.Member) (partitioned, error) { return shard.NewBounded(m, shard.BoundedConfig{}) },
	}
	for name, b := range build {
		t.Run(name, func(t *testing.T) {
			before, err := b(shard.Members(names(10)...))
			require.NoError(t, err)
			grown := shard.Members(names(11)...)
			grown[4].Weight = 2 // add one shard and reweight another
			after, err := b(grown)
			require.NoError(t, err)
			plan, err := shard.PlanMoves(before, after)
			require.NoError(t, err)
			require.Equal(t, shard.UnitPartitions, plan.Unit)
			byPartition := map[int]shard.Move{}
			for _, m := range plan.Moves {
				require.NotEqual(t, m.From, m.To)
				byPartition[m.Partition] = m
			}
			ks := keys(100_000)
			moved := 0
			for _, k := range ks {
				from, to, ok := plan.Moved(k)
				m, listed := byPartition[after.Partition(k)]
				require.Equal(t, ok, listed, "key %q", k)
				if ok {
					moved++
					require.Equal(t, m.From, from)
					require.Equal(t, m.To, to)
				}
			}
			frac, exact := plan.Fraction()
			require.True(t, exact)
			require.InDelta(t, frac, float64(moved)/float64(len(ks)), 0.01)
		})
	}
}

func TestPlanMovesPerKeyStrategies(t *testing.T) {
	a, err := shard.NewJump(shard.Members(names(4)...))
	require.NoError(t, err)
	b, err := a.Remove("shard-01")
	require.NoError(t, err)
	plan, err := shard.PlanMoves(a, b)
	require.NoError(t, err)
	require.Equal(t, shard.UnitKeys, plan.Unit)
	require.Empty(t, plan.Moves)
	_, exact := plan.Fraction()
	require.False(t, exact)
	for _, k := range keys(2000) {
		from, to, moved := plan.Moved(k)
		require.Equal(t, a.Shard(k), from)
		require.Equal(t, b.Shard(k), to)
		require.Equal(t, from == "shard-01", moved)
	}
}

func TestPlanMovesIncomparable(t *testing.T) {
	j, err := shard.NewJump(shard.Members("a", "b"))
	require.NoError(t, err)
	r, err := shard.NewRendezvous(shard.Members("a", "b"))
	require.NoError(t, err)
	_, err = shard.PlanMoves(j, r)
	require.ErrorIs(t, err, shard.ErrIncomparable)
	_, err = shard.PlanMoves(nil, r)
	require.ErrorIs(t, err, shard.ErrIncomparable)
	m1, err := shard.NewMaglev(shard.Members("a", "b"), shard.MaglevConfig{TableSize: 13})
	require.NoError(t, err)
	m2, err := shard.NewMaglev(shard.Members("a", "b"), shard.MaglevConfig{TableSize: 17})
	require.NoError(t, err)
	_, err = shard.PlanMoves(m1, m2)
	require.ErrorIs(t, err, shard.ErrIncomparable)
}
