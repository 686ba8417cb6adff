package replica_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/replica"
)

// The readers of the context options are what a ReplicaRouter written
// elsewhere relies on: each must see its option through derived contexts
// and nothing without it.

type unrelatedKey struct{}

func TestUsesPrimary(t *testing.T) {
	ctx := context.Background()
	require.False(t, replica.UsesPrimary(ctx))
	p := replica.UsePrimary(ctx)
	require.True(t, replica.UsesPrimary(p))
	derived, cancel := context.WithTimeout(context.WithValue(p, unrelatedKey{}, 1), time.Minute)
	defer cancel()
	require.True(t, replica.UsesPrimary(derived), "through derived contexts")
	require.False(t, replica.UsesPrimary(replica.WithKey(ctx, "k")), "another option is not UsePrimary")
	require.False(t, replica.UsesPrimary(replica.Track(ctx)), "another option is not UsePrimary")
}

func TestKeyOf(t *testing.T) {
	ctx := context.Background()
	_, ok := replica.KeyOf(ctx)
	require.False(t, ok)
	_, ok = replica.KeyOf(replica.UsePrimary(ctx))
	require.False(t, ok, "another option is not a key")

	k := replica.WithKey(ctx, "user:42")
	key, ok := replica.KeyOf(context.WithValue(k, unrelatedKey{}, 1))
	require.True(t, ok)
	require.Equal(t, "user:42", key)

	key, ok = replica.KeyOf(replica.WithKey(k, "user:7"))
	require.True(t, ok)
	require.Equal(t, "user:7", key, "the innermost key wins")

	key, ok = replica.KeyOf(replica.WithKey(ctx, ""))
	require.True(t, ok, "an empty key is still a key")
	require.Empty(t, key)
}

func TestMarkOfReadsTrackFrom(t *testing.T) {
	ctx := context.Background()
	_, ok := replica.MarkOf(ctx)
	require.False(t, ok)
	m, ok := replica.MarkOf(replica.Track(ctx))
	require.True(t, ok)
	require.Equal(t, replica.Mark{}, m, "a fresh Track needs nothing yet")

	until := time.Unix(1_700_000_000, 0)
	want := replica.Mark{Position: 17, Until: until}
	m, ok = replica.MarkOf(replica.UsePrimary(replica.TrackFrom(ctx, want)))
	require.True(t, ok)
	require.Equal(t, want.Position, m.Position)
	require.True(t, want.Until.Equal(m.Until), "Until %v, want %v", m.Until, want.Until)
}

// TestRecordWrite is how a ReplicaRouter written elsewhere records its
// writes in a Track context: positions and windows only grow, and an
// untracked context records nothing.
func TestRecordWrite(t *testing.T) {
	ctx := t.Context()
	require.False(t, replica.RecordWrite(ctx, 7, time.Second), "an untracked context")
	_, ok := replica.MarkOf(ctx)
	require.False(t, ok)

	tctx := replica.Track(ctx)
	require.True(t, replica.RecordWrite(tctx, 7, 0))
	require.True(t, replica.RecordWrite(tctx, 5, 0), "an older position")
	m, ok := replica.MarkOf(tctx)
	require.True(t, ok)
	require.Equal(t, uint64(7), m.Position)
	require.True(t, m.Until.IsZero(), "a known position opens no window")

	before := time.Now()
	require.True(t, replica.RecordWrite(tctx, 0, time.Hour))
	require.True(t, replica.RecordWrite(tctx, 0, time.Minute), "a shorter window")
	m, _ = replica.MarkOf(tctx)
	require.Equal(t, uint64(7), m.Position)
	require.False(t, m.Until.Before(before.Add(time.Hour)), "the window runs an hour from the write: %v", m.Until)
}
