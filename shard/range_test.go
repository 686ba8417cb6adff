package shard_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/shard"
)

func TestRangeAtoMandNtoZ(t *testing.T) {
	r, err := shard.NewRange([]shard.Span{{Start: "", Shard: "db1"}, {Start: "n", Shard: "db2"}})
	require.NoError(t, err)
	for key, want := range map[string]string{
		"": "db1", "alice": "db1", "mallory": "db1", "mzzz": "db1",
		"n": "db2", "nancy": "db2", "zoe": "db2", "\xff": "db2",
		"Zed": "db1", // upper case sorts before lower case: normalise keys first
	} {
		require.Equal(t, want, r.Shard(key), key)
	}
	require.Equal(t, []string{"db1", "db2"}, r.Shards())
}

func TestRangeSplitMergeAssign(t *testing.T) {
	r, err := shard.NewRange([]shard.Span{{Start: "", Shard: "db1"}, {Start: "n", Shard: "db2"}})
	require.NoError(t, err)

	split, err := r.Split("t", "db3")
	require.NoError(t, err)
	require.Equal(t, []shard.Span{{"", "db1"}, {"n", "db2"}, {"t", "db3"}}, split.Spans())
	require.Equal(t, "db2", split.Shard("sam"))
	require.Equal(t, "db3", split.Shard("tom"))

	plan, err := shard.PlanMoves(r, split)
	require.NoError(t, err)
	require.Equal(t, shard.UnitKeyRanges, plan.Unit)
	require.Equal(t, []shard.Move{{From: "db2", To: "db3", Start: "t", End: ""}}, plan.Moves)

	merged, err := split.Merge("n")
	require.NoError(t, err)
	require.Equal(t, []shard.Span{{"", "db1"}, {"t", "db3"}}, merged.Spans())
	plan, err = shard.PlanMoves(split, merged)
	require.NoError(t, err)
	require.Equal(t, []shard.Move{{From: "db2", To: "db1", Start: "n", End: "t"}}, plan.Moves)

	assigned, err := split.Assign("", "db4")
	require.NoError(t, err)
	require.Equal(t, "db4", assigned.Shard("bob"))
	require.Equal(t, []string{"db4", "db2", "db3"}, assigned.Shards())

	_, err = split.Split("n", "db9")
	require.ErrorIs(t, err, shard.ErrInvalidRange)
	_, err = split.Merge("")
	require.ErrorIs(t, err, shard.ErrInvalidRange)
	_, err = split.Merge("q")
	require.ErrorIs(t, err, shard.ErrInvalidRange)
	_, err = split.Assign("q", "db1")
	require.ErrorIs(t, err, shard.ErrInvalidRange)
	_, err = split.Split("x", "")
	require.ErrorIs(t, err, shard.ErrEmptyName)
}

func TestRangeBadSpans(t *testing.T) {
	for name, tc := range map[string]struct {
		spans []shard.Span
		err   error
	}{
		"none":           {nil, shard.ErrNoShards},
		"no lower bound": {[]shard.Span{{"a", "db1"}}, shard.ErrInvalidRange},
		"unordered":      {[]shard.Span{{"", "db1"}, {"m", "db2"}, {"c", "db3"}}, shard.ErrInvalidRange},
		"repeated start": {[]shard.Span{{"", "db1"}, {"m", "db2"}, {"m", "db3"}}, shard.ErrInvalidRange},
		"empty shard":    {[]shard.Span{{"", ""}}, shard.ErrEmptyName},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := shard.NewRange(tc.spans)
			require.ErrorIs(t, err, tc.err)
			require.Nil(t, r)
		})
	}
}

// TestRangePlanMatchesLookups cross-checks a plan between two unrelated
// range layouts against per-key lookups.
func TestRangePlanMatchesLookups(t *testing.T) {
	a, err := shard.NewRange([]shard.Span{{"", "x"}, {"d", "y"}, {"k", "z"}, {"r", "x"}})
	require.NoError(t, err)
	b, err := shard.NewRange([]shard.Span{{"", "x"}, {"f", "z"}, {"k", "z"}, {"p", "y"}})
	require.NoError(t, err)
	plan, err := shard.PlanMoves(a, b)
	require.NoError(t, err)
	_, exact := plan.Fraction()
	require.False(t, exact)
	for _, k := range []string{"", "a", "d", "dz", "e", "f", "g", "k", "o", "p", "q", "r", "s", "zz"} {
		from, to, moved := plan.Moved(k)
		var in *shard.Move
		for i, m := range plan.Moves {
			if k >= m.Start && (m.End == "" || k < m.End) {
				in = &plan.Moves[i]
			}
		}
		require.Equal(t, moved, in != nil, "key %q", k)
		if in != nil {
			require.Equal(t, from, in.From)
			require.Equal(t, to, in.To)
		}
	}
}
