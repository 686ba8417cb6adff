package cache_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
)

// TestLoaderFreshFromLoadStart: an entry is fresh for its ttl from when
// its load began, not from when the load returned or the entry was
// stored. A load may read the source at its very start; a slow load (a
// busy database, a busy machine) must not make what it read live past the
// ttl, in the shared cache or in the local tier. (Found by the chaos cache
// model under load: reads returned values 2.29 s old under a 2 s ttl.)
func TestLoaderFreshFromLoadStart(t *testing.T) {
	reads := map[string]func(ctx context.Context, l *cache.Loader[int], ttl time.Duration, load func(context.Context) (int, error)) (int, error){
		"Get": func(ctx context.Context, l *cache.Loader[int], ttl time.Duration, load func(context.Context) (int, error)) (int, error) {
			return l.Get(ctx, "k", ttl, load)
		},
		"GetMany": func(ctx context.Context, l *cache.Loader[int], ttl time.Duration, load func(context.Context) (int, error)) (int, error) {
			got, err := l.GetMany(ctx, []string{"k"}, ttl, func(ctx context.Context, _ []string) (map[string]int, error) {
				v, err := load(ctx)
				return map[string]int{"k": v}, err
			})
			return got["k"], err
		},
	}
	configs := map[string]cache.LoaderConfig[int]{
		"shared":      {EarlyRefresh: -1},
		"local tier":  {EarlyRefresh: -1, LocalTTL: time.Hour},
		"stale after": {EarlyRefresh: -1, StaleFor: time.Hour},
	}
	for rname, read := range reads {
		for cname, cfg := range configs {
			t.Run(rname+"/"+cname, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					l := newLoader(t, newMemory(t, cache.MemoryConfig{}), cfg)
					var version atomic.Int64
					version.Store(1)
					loads := 0
					slow := func(context.Context) (int, error) {
						loads++
						v := int(version.Load()) // read at the start of the load
						time.Sleep(1500 * time.Millisecond)
						return v, nil
					}
					const ttl = 2 * time.Second
					v, err := read(t.Context(), l, ttl, slow)
					require.NoError(t, err)
					require.Equal(t, 1, v)

					// 1.999 s after the load began the entry is fresh.
					time.Sleep(499 * time.Millisecond)
					version.Store(2)
					v, err = read(t.Context(), l, ttl, slow)
					require.NoError(t, err)
					require.Equal(t, 1, v, "the entry expired before its ttl")
					require.Equal(t, 1, loads)

					// 2.001 s after the load began it is not: what the load read
					// is older than the ttl, even though it was stored 0.5 s ago.
					time.Sleep(2 * time.Millisecond)
					start := time.Now()
					v, err = read(t.Context(), l, ttl, slow)
					require.NoError(t, err)
					require.Equal(t, 2, v, "served a value read %v ago under a ttl of %v",
						time.Since(start)+2001*time.Millisecond, ttl)
					require.Equal(t, 2, loads)
				})
			})
		}
	}
}

// TestLoaderLoadOutlastsTTL: a load that takes longer than its ttl
// answers its caller but leaves nothing fresh behind: the next read loads
// again instead of being served what the slow load read.
func TestLoaderLoadOutlastsTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoader(t, newMemory(t, cache.MemoryConfig{}), cache.LoaderConfig[int]{EarlyRefresh: -1, LocalTTL: time.Hour})
		loads := 0
		load := func(context.Context) (int, error) {
			loads++
			v := loads
			time.Sleep(3 * time.Second)
			return v, nil
		}
		v, err := l.Get(t.Context(), "k", 2*time.Second, load)
		require.NoError(t, err)
		require.Equal(t, 1, v)
		v, err = l.Get(t.Context(), "k", 2*time.Second, load)
		require.NoError(t, err)
		require.Equal(t, 2, v, "served what a load that outlasted its ttl read")
	})
}
