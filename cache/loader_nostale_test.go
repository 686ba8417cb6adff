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

// lateWrite is a Memory whose next CompareAndSwap lands late, as a write
// to a remote cache does: the entry it stores outlives its freshness by
// that much, the window in which a reader finds it stale.
type lateWrite struct {
	*cache.Memory
	delay atomic.Int64 // of the next CompareAndSwap, then 0
}

func (c *lateWrite) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	time.Sleep(time.Duration(c.delay.Swap(0)))
	return c.Memory.CompareAndSwap(ctx, key, old, value, ttl)
}

// TestLoaderNoStaleWithoutStaleFor: with StaleFor 0, serving a stale entry
// "to callers in other processes while one process reloads it" is off (the
// LoaderConfig doc: "0 disables both"). A reader of another process that
// finds the entry past its TTL under another's reload waits for the
// reload instead. (Found by the chaos cache model on Redis: a read
// returned a value 2.27 s old under a 2 s TTL, while a filler stalled by
// a paused server held the lease.)
func TestLoaderNoStaleWithoutStaleFor(t *testing.T) {
	reads := map[string]func(ctx context.Context, l *cache.Loader[int], load func(context.Context) (int, error)) (int, error){
		"Get": func(ctx context.Context, l *cache.Loader[int], load func(context.Context) (int, error)) (int, error) {
			return l.Get(ctx, "k", time.Second, load)
		},
		"GetMany": func(ctx context.Context, l *cache.Loader[int], load func(context.Context) (int, error)) (int, error) {
			got, err := l.GetMany(ctx, []string{"k"}, time.Second, func(ctx context.Context, _ []string) (map[string]int, error) {
				v, err := load(ctx)
				return map[string]int{"k": v}, err
			})
			return got["k"], err
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) { testNoStaleWithoutStaleFor(t, read) })
	}
}

func testNoStaleWithoutStaleFor(t *testing.T, read func(context.Context, *cache.Loader[int], func(context.Context) (int, error)) (int, error)) {
	synctest.Test(t, func(t *testing.T) {
		store := &lateWrite{Memory: newMemory(t, cache.MemoryConfig{})}
		cfg := cache.LoaderConfig[int]{EarlyRefresh: -1}
		a, b := newLoader(t, store, cfg), newLoader(t, store, cfg) // two processes
		var version atomic.Int64
		version.Store(1)
		load := func(context.Context) (int, error) { return int(version.Load()), nil }

		store.delay.Store(int64(50 * time.Millisecond)) // the fill lands 50 ms after it was loaded
		v, err := a.Get(t.Context(), "k", time.Second, load)
		require.NoError(t, err)
		require.Equal(t, 1, v)

		// The Get returned when the fill landed, 50 ms in: 5 ms past the
		// TTL is 955 ms later, and the entry stays stored until 1.05 s.
		time.Sleep(955 * time.Millisecond)
		version.Store(2)
		slow := func(context.Context) (int, error) {
			time.Sleep(200 * time.Millisecond)
			return int(version.Load()), nil
		}
		reloaded := make(chan int, 1)
		go func() {
			v, _ := a.Get(context.Background(), "k", time.Second, slow) // takes the lease over the stale entry
			reloaded <- v
		}()
		time.Sleep(5 * time.Millisecond)
		v, err = read(t.Context(), b, load)
		require.NoError(t, err)
		require.Equal(t, 2, v, "another process was served the stale entry with StaleFor 0")
		require.Zero(t, b.Stats().StaleServes)
		require.Equal(t, 2, <-reloaded)
	})
}
