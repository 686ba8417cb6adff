package shard_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/shard"
)

func TestJumpRemoveAnyShardMovesOnlyItsKeys(t *testing.T) {
	ks := keys(50_000)
	j, err := shard.NewJump(shard.Members(names(10)...))
	require.NoError(t, err)
	for _, victim := range []string{"shard-00", "shard-04", "shard-09"} {
		without, err := j.Remove(victim)
		require.NoError(t, err)
		require.NotContains(t, without.Shards(), victim)
		got := map[string]int{}
		for _, k := range ks {
			before, after := j.Shard(k), without.Shard(k)
			if before != victim {
				require.Equal(t, before, after, "key %q of a surviving shard moved", k)
			} else {
				got[after]++
			}
		}
		// The victim's keys spread over all nine survivors.
		require.Len(t, got, 9)
		for _, c := range got {
			require.InDelta(t, 5000.0/9, float64(c), 5000.0/9*0.25)
		}
	}
}

func TestJumpAddFillsHoleAndRestoresMapping(t *testing.T) {
	ks := keys(20_000)
	j, err := shard.NewJump(shard.Members(names(6)...))
	require.NoError(t, err)
	holed, err := j.Remove("shard-02")
	require.NoError(t, err)
	require.Equal(t, []string{"shard-00", "shard-01", "", "shard-03", "shard-04", "shard-05"}, holed.Layout())

	back, err := holed.Add("shard-02")
	require.NoError(t, err)
	require.Equal(t, j.Layout(), back.Layout())
	replaced, err := holed.Add("new")
	require.NoError(t, err)
	for _, k := range ks {
		require.Equal(t, j.Shard(k), back.Shard(k))
		// The newcomer takes exactly the keys the removed shard had.
		if j.Shard(k) == "shard-02" {
			require.Equal(t, "new", replaced.Shard(k))
		} else {
			require.Equal(t, j.Shard(k), replaced.Shard(k))
		}
	}
}

func TestJumpGrowsLikeJumpHash(t *testing.T) {
	j, err := shard.NewJump(shard.Members(names(4)...))
	require.NoError(t, err)
	grown, err := j.Add("shard-04")
	require.NoError(t, err)
	require.Equal(t, names(5), grown.Layout())
	moved := 0
	for _, k := range keys(50_000) {
		if a, b := j.Shard(k), grown.Shard(k); a != b {
			require.Equal(t, "shard-04", b)
			moved++
		}
	}
	require.InDelta(t, 10_000, moved, 600)
}

func TestJumpLayoutRoundTrip(t *testing.T) {
	j, err := shard.RestoreJump([]string{"a", "", "c", "", "e", "", ""})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "", "c", "", "e", "", ""}, j.Layout())
	require.Equal(t, []string{"a", "c", "e"}, j.Shards())
	again, err := shard.RestoreJump(j.Layout())
	require.NoError(t, err)
	for _, k := range keys(5000) {
		require.Equal(t, j.Shard(k), again.Shard(k))
	}
}

func TestJumpBadInput(t *testing.T) {
	_, err := shard.RestoreJump([]string{"", ""})
	require.ErrorIs(t, err, shard.ErrNoShards)
	_, err = shard.RestoreJump([]string{"a", "", "a"})
	require.ErrorIs(t, err, shard.ErrDuplicateName)

	j, err := shard.NewJump(shard.Members("a", "b"))
	require.NoError(t, err)
	_, err = j.Add("a")
	require.ErrorIs(t, err, shard.ErrDuplicateName)
	_, err = j.Add("")
	require.ErrorIs(t, err, shard.ErrEmptyName)
	_, err = j.Remove("zzz")
	require.ErrorIs(t, err, shard.ErrUnknownShard)
	_, err = j.Remove("")
	require.ErrorIs(t, err, shard.ErrUnknownShard)
	one, err := j.Remove("a")
	require.NoError(t, err)
	_, err = one.Remove("b")
	require.ErrorIs(t, err, shard.ErrNoShards)
}

// TestJumpManyHoles: with most buckets removed, lookups still land on live
// shards, evenly.
func TestJumpManyHoles(t *testing.T) {
	layout := make([]string, 200)
	layout[7], layout[150], layout[199] = "x", "y", "z"
	j, err := shard.RestoreJump(layout)
	require.NoError(t, err)
	count := map[string]int{}
	for _, k := range keys(30_000) {
		count[j.Shard(k)]++
	}
	require.Len(t, count, 3)
	for _, c := range count {
		require.InDelta(t, 10_000, c, 600)
	}
}
