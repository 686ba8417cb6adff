package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
)

// TestGetWithLocalHitAllocs: a local hit in the README's style (GetWith, a
// load function made once, the id of each call passed apart) allocates
// nothing, whatever the id.
func TestGetWithLocalHitAllocs(t *testing.T) {
	if cache.StoreRaceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	type Product struct {
		ID   int
		Name string
	}
	l := newLoader(t, newMemory(t, cache.MemoryConfig{}), cache.LoaderConfig[Product]{LocalTTL: time.Minute})
	queries := 0
	byID := func(_ context.Context, id int) (Product, error) {
		queries++
		return Product{ID: id, Name: "lamp"}, nil
	}
	ctx := t.Context()
	keys := []string{"product:1000", "product:1001"}
	for i, k := range keys {
		_, err := cache.GetWith(l, ctx, k, time.Hour, byID, 1000+i)
		require.NoError(t, err)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		id := 1000 + i%2
		p, err := cache.GetWith(l, ctx, keys[i%2], time.Hour, byID, id)
		if err != nil || p.ID != id {
			t.Fatal(p, err)
		}
		i++
	})
	require.Zero(t, allocs)
	require.Equal(t, 2, queries)
	require.Equal(t, uint64(1001), l.Stats().LocalHits) // AllocsPerRun calls once more to warm up
}

// TestGetWithMissLoads: GetWith past the local tier loads as Get does,
// with the argument it was given, and rejects what Get rejects.
func TestGetWithMissLoads(t *testing.T) {
	l := newLoader(t, newMemory(t, cache.MemoryConfig{}), cache.LoaderConfig[string]{})
	ctx := t.Context()
	byName := func(_ context.Context, name string) (string, error) { return "hello " + name, nil }
	v, err := cache.GetWith(l, ctx, "greeting:ann", time.Hour, byName, "ann")
	require.NoError(t, err)
	require.Equal(t, "hello ann", v)
	v, err = cache.GetWith(l, ctx, "greeting:ann", time.Hour, byName, "bob") // a hit: the argument is not used
	require.NoError(t, err)
	require.Equal(t, "hello ann", v)
	_, err = cache.GetWith[string, string](l, ctx, "k", time.Hour, nil, "")
	require.ErrorIs(t, err, cache.ErrInvalidConfig)
	_, err = cache.GetWith(l, ctx, "k", -time.Second, byName, "")
	require.ErrorIs(t, err, cache.ErrInvalidTTL)
}
