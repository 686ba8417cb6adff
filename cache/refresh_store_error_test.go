package cache_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
)

// casFailing fails the failIn-th CompareAndSwap from now, as a cache that
// went away between two calls does.
type casFailing struct {
	cache.SwapCache
	failIn atomic.Int32
}

func (c *casFailing) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	if c.failIn.Add(-1) == 0 {
		return errCacheDown
	}
	return c.SwapCache.CompareAndSwap(ctx, key, old, value, ttl)
}

// A Refresh whose write-back failed must say so: the cache still holds
// the old value (under the Refresh's lease, and fresh after it), so a
// caller told nil would believe readers see the new one. The chaos model
// of cache invalidation (internal/chaos, TestCacheInvalChaos on redis)
// found reads of the old value after a Refresh returned nil.
func TestLoaderRefreshReportsAFailedStore(t *testing.T) {
	c := &casFailing{SwapCache: newMemory(t, cache.MemoryConfig{})}
	l := newLoader(t, c, cache.LoaderConfig[int]{})
	version := 1
	load := func(context.Context) (int, error) { return version, nil }
	v, err := l.Get(t.Context(), "row", time.Minute, load)
	require.NoError(t, err)
	require.Equal(t, 1, v)

	version = 2
	c.failIn.Store(2) // the lease is taken; the write-back fails
	v, err = l.Refresh(t.Context(), "row", time.Minute, load)
	require.Equal(t, 2, v, "Refresh answers what it loaded")
	require.ErrorIs(t, err, errCacheDown, "Refresh returned nil though the cache still holds the old value")
}
