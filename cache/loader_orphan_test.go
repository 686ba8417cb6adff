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

// unsure is a SwapCache whose lease writes can end without a known
// outcome, as against a Redis that answers after the client's deadline:
// with applyLostAdd, Add stores the value and then reports a timeout (the
// reply was lost); with dropCAS, CompareAndSwap stores nothing and reports
// a timeout.
type unsure struct {
	cache.SwapCache
	applyLostAdd, dropCAS atomic.Bool
}

func (u *unsure) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := u.SwapCache.Add(ctx, key, value, ttl); err != nil || !u.applyLostAdd.Load() {
		return err
	}
	return context.DeadlineExceeded
}

func (u *unsure) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	if u.dropCAS.Load() {
		return context.DeadlineExceeded
	}
	return u.SwapCache.CompareAndSwap(ctx, key, old, value, ttl)
}

// TestLoaderDoesNotWaitForALeaseItLeftBehind: a lease this Loader wrote
// but could not confirm or give back (the write's reply was lost, or the
// write-back through it failed) is filled by nobody. The next Get of the
// key must take it over at once rather than wait LeaseWait for it: a blip
// of the cache costs a Get about CacheTimeout, not LeaseWait (the CI
// failure of TestLoaderSurvivesRedisRestart: a Get took 4.7 s of the
// default 5 s LeaseWait after Redis came back).
func TestLoaderDoesNotWaitForALeaseItLeftBehind(t *testing.T) {
	for name, lose := range map[string]func(*unsure) *atomic.Bool{
		"lease applied, reply lost": func(u *unsure) *atomic.Bool { return &u.applyLostAdd },
		"write-back lost":           func(u *unsure) *atomic.Bool { return &u.dropCAS },
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &unsure{SwapCache: newMemory(t, cache.MemoryConfig{})}
				cfg := cache.LoaderConfig[string]{CacheTimeout: 100 * time.Millisecond}
				l := newLoader(t, c, cfg)
				load, n := counted("v", 0)

				lose(c).Store(true)
				v, err := l.Get(t.Context(), "k", time.Minute, load)
				require.NoError(t, err)
				require.Equal(t, "v", v)
				lose(c).Store(false)

				start := time.Now()
				v, err = l.Get(t.Context(), "k", time.Minute, load)
				require.NoError(t, err)
				require.Equal(t, "v", v)
				require.Zero(t, time.Since(start), "the second Get waited %v for the lease the first one left (LeaseWait %v)",
					time.Since(start), cache.DefaultLeaseTTL)
				require.Zero(t, l.Stats().LeaseWaits)

				v, err = l.Get(t.Context(), "k", time.Minute, load)
				require.NoError(t, err)
				require.Equal(t, "v", v)
				require.Equal(t, int32(2), n.Load(), "the second Get filled the cache: the third is a hit")
			})
		})
	}
}
