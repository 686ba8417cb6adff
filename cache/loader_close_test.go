// Real-time tests in this file: TestLoaderCloseDuringRefreshes (refreshes
// racing Close on real goroutines, for the race detector; it asserts no
// duration).
package cache_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
)

// gatedSwap is a Memory whose CompareAndSwap, once armed, tells entered
// and waits for gate: it holds a background refresh between its decision
// to start and its start.
type gatedSwap struct {
	*cache.Memory
	armed   atomic.Bool
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedSwap) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.gate
	}
	return g.Memory.CompareAndSwap(ctx, key, old, value, ttl)
}

// Close is called while a Get is starting a background refresh (it has
// decided to refresh and is taking the key's lease): either Close waits
// for that refresh, or the refresh never starts. It must not start after
// Close returned.
func TestLoaderCloseDuringRefreshStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &gatedSwap{Memory: newMemory(t, cache.MemoryConfig{}), entered: make(chan struct{}), gate: make(chan struct{})}
		l, err := cache.NewLoader(c, cache.LoaderConfig[int]{StaleFor: time.Hour, RefreshStale: true, EarlyRefresh: -1})
		require.NoError(t, err)
		var loads atomic.Int32
		load := func(context.Context) (int, error) { return int(loads.Add(1)), nil }
		_, err = l.Get(t.Context(), "k", time.Second, load)
		require.NoError(t, err)
		time.Sleep(2 * time.Second) // stale: the next Get refreshes in the background

		c.armed.Store(true)
		go func() { _, _ = l.Get(t.Context(), "k", time.Second, load) }()
		<-c.entered
		loadsAtClose := make(chan int32, 1)
		go func() {
			_ = l.Close()
			loadsAtClose <- loads.Load()
		}()
		synctest.Wait() // Close has returned, or waits for the refresh
		close(c.gate)
		synctest.Wait()
		require.Equal(t, loads.Load(), <-loadsAtClose, "a background refresh loaded after Close returned")
	})
}

// Close in the middle of many Gets that keep starting background
// refreshes (run with -race): no load starts after Close returned.
func TestLoaderCloseDuringRefreshes(t *testing.T) {
	l, err := cache.NewLoader(newMemory(t, cache.MemoryConfig{}), cache.LoaderConfig[int]{StaleFor: time.Hour, RefreshStale: true, EarlyRefresh: -1})
	require.NoError(t, err)
	var closed atomic.Bool
	var late atomic.Int32
	load := func(context.Context) (int, error) {
		if closed.Load() {
			late.Add(1)
		}
		return 1, nil
	}
	const keys = 64
	for i := range keys {
		_, err := l.Get(t.Context(), fmt.Sprint(i), time.Millisecond, load)
		require.NoError(t, err)
	}
	time.Sleep(5 * time.Millisecond)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Every entry is stale within a millisecond: each Get serves
				// it and may start a refresh.
				_, _ = l.Get(t.Context(), fmt.Sprint(i%keys), time.Millisecond, load)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, l.Close())
	closed.Store(true)
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	require.Zero(t, late.Load(), "background refreshes loaded after Close returned")
	require.Positive(t, l.Stats().Refreshes)
}

// After Close, the methods that read or fill through the Loader answer
// ErrClosed without calling load; the writes that only need the cache and
// the Invalidator keep working, and a second Close is a no-op.
func TestLoaderAfterClose(t *testing.T) {
	m := newMemory(t, cache.MemoryConfig{})
	var bus cache.LocalBus
	l, err := cache.NewLoader(m, cache.LoaderConfig[int]{LocalTTL: time.Minute, Invalidator: &bus})
	require.NoError(t, err)
	var loads atomic.Int32
	load := func(context.Context) (int, error) { loads.Add(1); return 7, nil }
	v, err := l.Get(t.Context(), "k", time.Minute, load)
	require.NoError(t, err)
	require.Equal(t, 7, v)

	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "a second Close")

	_, err = l.Get(t.Context(), "k", time.Minute, load)
	require.ErrorIs(t, err, cache.ErrClosed, "Get of a cached key")
	_, err = l.Get(t.Context(), "other", time.Minute, load)
	require.ErrorIs(t, err, cache.ErrClosed, "Get of a missing key")
	_, err = l.Refresh(t.Context(), "k", time.Minute, load)
	require.ErrorIs(t, err, cache.ErrClosed, "Refresh")
	got, err := l.GetMany(t.Context(), []string{"k", "other"}, time.Minute, func(_ context.Context, keys []string) (map[string]int, error) {
		loads.Add(1)
		return nil, nil
	})
	require.ErrorIs(t, err, cache.ErrClosed, "GetMany")
	require.Empty(t, got)
	require.EqualValues(t, 1, loads.Load(), "a load ran after Close")

	heard := 0
	unsubscribe := bus.Subscribe(func([]string) { heard++ })
	defer unsubscribe()
	require.NoError(t, l.Set(t.Context(), "k", 8, time.Minute), "Set after Close")
	require.NoError(t, l.Expire(t.Context(), "k"), "Expire after Close")
	require.NoError(t, l.Delete(t.Context(), "k"), "Delete after Close")
	require.Equal(t, 3, heard, "Set, Expire and Delete after Close must still publish their invalidations")
	_, err = m.Get(t.Context(), "k")
	require.ErrorIs(t, err, cache.ErrMiss, "Delete after Close must remove the key")
}
