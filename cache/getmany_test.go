package cache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
)

// calls counts a Memory's reads: GetMany must read in one GetMulti.
type calls struct {
	*cache.Memory
	gets, getMultis atomic.Int32
	down            atomic.Bool
}

// errCacheDown is the error of a fake cache that went away.
var errCacheDown = errors.New("cache down")

func (c *calls) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	if c.down.Load() {
		return nil, errCacheDown
	}
	return c.Memory.Get(ctx, key)
}

func (c *calls) GetMulti(ctx context.Context, keys []string) (map[string][]byte, error) {
	c.getMultis.Add(1)
	if c.down.Load() {
		return nil, errCacheDown
	}
	return c.Memory.GetMulti(ctx, keys)
}

func (c *calls) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if c.down.Load() {
		return errCacheDown
	}
	return c.Memory.Set(ctx, key, v, ttl)
}

func (c *calls) Add(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	if c.down.Load() {
		return errCacheDown
	}
	return c.Memory.Add(ctx, key, v, ttl)
}

func (c *calls) CompareAndSwap(ctx context.Context, key string, old, v []byte, ttl time.Duration) error {
	if c.down.Load() {
		return errCacheDown
	}
	return c.Memory.CompareAndSwap(ctx, key, old, v, ttl)
}

// batchSource is a batch load over a map: keys it does not hold are left
// out (not found). It records the keys of each call.
type batchSource struct {
	mu    sync.Mutex
	vals  map[string]string
	calls [][]string
	err   error
}

func (s *batchSource) load(_ context.Context, keys []string) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, slices.Sorted(slices.Values(keys)))
	if s.err != nil {
		return nil, s.err
	}
	out := map[string]string{}
	for _, k := range keys {
		if v, ok := s.vals[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}

func (s *batchSource) takeCalls() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

func TestGetManyMissesThenHits(t *testing.T) {
	c := &calls{Memory: newMemory(t, cache.MemoryConfig{})}
	l := newLoader(t, c, cache.LoaderConfig[string]{NegativeTTL: time.Minute})
	src := &batchSource{vals: map[string]string{"a": "A", "b": "B", "c": "C"}}

	got, err := l.GetMany(t.Context(), []string{"a", "b", "a", "gone"}, time.Minute, src.load)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "A", "b": "B"}, got, "a key the load left out is absent")
	require.Equal(t, [][]string{{"a", "b", "gone"}}, src.takeCalls(), "one load of the missing keys, each once")

	// Each key is now cached as Get would have cached it.
	v, err := l.Get(t.Context(), "a", time.Minute, func(context.Context) (string, error) { return "", errors.New("no load expected") })
	require.NoError(t, err)
	require.Equal(t, "A", v)
	_, err = l.Get(t.Context(), "gone", time.Minute, func(context.Context) (string, error) { return "", errors.New("no load expected") })
	require.ErrorIs(t, err, cache.ErrNotFound, "the missing key is negatively cached")

	gets, multis := c.gets.Load(), c.getMultis.Load()
	got, err = l.GetMany(t.Context(), []string{"a", "b", "c", "gone"}, time.Minute, src.load)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "A", "b": "B", "c": "C"}, got)
	require.Equal(t, [][]string{{"c"}}, src.takeCalls(), "only the key not cached is loaded")
	require.Equal(t, int32(1), c.getMultis.Load()-multis, "one GetMulti for the whole batch")
	require.Equal(t, gets, c.gets.Load(), "no single-key reads")

	st := l.Stats()
	require.Equal(t, uint64(2), st.Loads)
	require.Equal(t, uint64(4), st.Misses, "a, b, gone, then c")
	require.Equal(t, uint64(5), st.Hits, "two Gets, then a, b and gone")

	got, err = l.GetMany(t.Context(), nil, time.Minute, src.load)
	require.NoError(t, err)
	require.Empty(t, got)
	require.Empty(t, src.takeCalls(), "no keys, no load")
}

func TestGetManyLocalTier(t *testing.T) {
	c := &calls{Memory: newMemory(t, cache.MemoryConfig{})}
	l := newLoader(t, c, cache.LoaderConfig[string]{LocalTTL: time.Minute})
	src := &batchSource{vals: map[string]string{"a": "A", "b": "B"}}
	_, err := l.GetMany(t.Context(), []string{"a", "b"}, time.Minute, src.load)
	require.NoError(t, err)
	multis := c.getMultis.Load()
	got, err := l.GetMany(t.Context(), []string{"a", "b"}, time.Minute, src.load)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "A", "b": "B"}, got)
	require.Equal(t, multis, c.getMultis.Load(), "the local tier answers without a round trip")
	require.Equal(t, uint64(2), l.Stats().LocalHits)
	require.NoError(t, l.Delete(t.Context(), "a"))
	src.vals["a"] = "A2"
	got, err = l.GetMany(t.Context(), []string{"a", "b"}, time.Minute, src.load)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "A2", "b": "B"}, got, "Delete drops the local copy")
}

// A failed load releases the leases at once (the next reader loads
// without waiting for LeaseWait), serves stale values where there are
// some, and returns the load's error for the others.
func TestGetManyLoadError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoader(t, newMemory(t, cache.MemoryConfig{}), cache.LoaderConfig[string]{StaleFor: time.Hour, EarlyRefresh: -1})
		src := &batchSource{vals: map[string]string{"old": "O"}}
		_, err := l.GetMany(t.Context(), []string{"old"}, time.Second, src.load)
		require.NoError(t, err)
		time.Sleep(2 * time.Second) // "old" is stale now
		src.takeCalls()

		boom := errors.New("database down")
		src.err = boom
		got, err := l.GetMany(t.Context(), []string{"old", "new"}, time.Second, src.load)
		require.ErrorIs(t, err, boom)
		require.Equal(t, map[string]string{"old": "O"}, got, "the stale value is served, the new key has none")
		require.Equal(t, uint64(1), l.Stats().LoadErrors, "one failed call of load")

		src.err = nil
		src.vals["new"] = "N"
		start := time.Now()
		v, err := l.Get(t.Context(), "new", time.Second, func(context.Context) (string, error) { return "N", nil })
		require.NoError(t, err)
		require.Equal(t, "N", v)
		require.Zero(t, time.Since(start), "the lease of a failed load was not released")

		got, err = l.GetMany(t.Context(), []string{"old"}, time.Second, src.load)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"old": "O"}, got, "within retryAfter the stale value keeps being served")
	})
}

// A key whose lease another caller holds is not loaded again: GetMany
// waits for that filler's value, as Get does.
func TestGetManyWaitsForAnotherFiller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemory(t, cache.MemoryConfig{})
		filler := newLoader(t, m, cache.LoaderConfig[string]{}) // another process
		l := newLoader(t, m, cache.LoaderConfig[string]{})
		gate := make(chan struct{})
		go func() {
			_, _ = filler.Get(t.Context(), "slow", time.Minute, func(context.Context) (string, error) {
				<-gate
				return "from the filler", nil
			})
		}()
		synctest.Wait() // the filler holds the lease of "slow"
		src := &batchSource{vals: map[string]string{"slow": "mine", "other": "O"}}
		done := make(chan map[string]string)
		go func() {
			got, err := l.GetMany(t.Context(), []string{"slow", "other"}, time.Minute, src.load)
			require.NoError(t, err)
			done <- got
		}()
		time.Sleep(100 * time.Millisecond)
		close(gate)
		got := <-done
		require.Equal(t, map[string]string{"slow": "from the filler", "other": "O"}, got)
		require.Equal(t, [][]string{{"other"}}, src.takeCalls(), "the key being filled elsewhere was not loaded")
		require.Equal(t, uint64(1), l.Stats().LeaseWaits)
	})
}

// Stale entries: served at once and refreshed in the background with
// RefreshStale, as Get does.
func TestGetManyRefreshStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoader(t, newMemory(t, cache.MemoryConfig{}), cache.LoaderConfig[string]{StaleFor: time.Hour, RefreshStale: true, EarlyRefresh: -1})
		src := &batchSource{vals: map[string]string{"a": "A", "b": "B"}}
		_, err := l.GetMany(t.Context(), []string{"a", "b"}, time.Second, src.load)
		require.NoError(t, err)
		time.Sleep(2 * time.Second)
		src.takeCalls()
		src.vals["a"], src.vals["b"] = "A2", "B2"
		got, err := l.GetMany(t.Context(), []string{"a", "b"}, time.Second, src.load)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"a": "A", "b": "B"}, got, "stale values answered at once")
		synctest.Wait()
		require.ElementsMatch(t, [][]string{{"a"}, {"b"}}, src.takeCalls(), "one background refresh per stale key")
		got, err = l.GetMany(t.Context(), []string{"a", "b"}, time.Second, src.load)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"a": "A2", "b": "B2"}, got)
		require.Equal(t, uint64(2), l.Stats().StaleServes)
	})
}

// A cache that fails makes GetMany fail open: one load of every key not
// answered, nothing written, and the cache used again once it is back.
func TestGetManyFailsOpen(t *testing.T) {
	c := &calls{Memory: newMemory(t, cache.MemoryConfig{})}
	l := newLoader(t, c, cache.LoaderConfig[string]{})
	src := &batchSource{vals: map[string]string{"a": "A", "b": "B"}}
	c.down.Store(true)
	got, err := l.GetMany(t.Context(), []string{"a", "b"}, time.Minute, src.load)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "A", "b": "B"}, got)
	require.Equal(t, [][]string{{"a", "b"}}, src.takeCalls())
	require.Equal(t, 0, c.Memory.Stats().Entries, "nothing written while the cache fails")
	require.Positive(t, l.Stats().CacheErrors)

	c.down.Store(false)
	_, err = l.GetMany(t.Context(), []string{"a", "b"}, time.Minute, src.load)
	require.NoError(t, err)
	got, err = l.GetMany(t.Context(), []string{"a", "b"}, time.Minute, src.load)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"a": "A", "b": "B"}, got)
	require.Len(t, src.takeCalls(), 1, "once the cache is back, the second GetMany hits")
}

// On a cache without Add and CompareAndSwap (no leases) or GetMulti, the
// keys are read one by one and the results written with Set.
func TestGetManyOnPlainCache(t *testing.T) {
	l := newLoader(t, plain{newMemory(t, cache.MemoryConfig{})}, cache.LoaderConfig[string]{})
	src := &batchSource{vals: map[string]string{"a": "A", "b": "B"}}
	for range 2 {
		got, err := l.GetMany(t.Context(), []string{"a", "b", "c"}, time.Minute, src.load)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"a": "A", "b": "B"}, got)
	}
	require.Equal(t, [][]string{{"a", "b", "c"}, {"c"}}, src.takeCalls())
}

func TestGetManyRejectsBadInput(t *testing.T) {
	l := newLoader(t, newMemory(t, cache.MemoryConfig{}), cache.LoaderConfig[string]{})
	src := &batchSource{}
	_, err := l.GetMany(t.Context(), []string{"a", ""}, time.Minute, src.load)
	require.ErrorIs(t, err, cache.ErrInvalidKey)
	_, err = l.GetMany(t.Context(), []string{"a"}, -time.Minute, src.load)
	require.ErrorIs(t, err, cache.ErrInvalidTTL)
	_, err = l.GetMany(t.Context(), []string{"a"}, time.Minute, nil)
	require.ErrorIs(t, err, cache.ErrInvalidConfig)
	require.Empty(t, src.takeCalls())
	panicky := func(context.Context, []string) (map[string]string, error) { panic("bug") }
	_, err = l.GetMany(t.Context(), []string{"a"}, time.Minute, panicky)
	require.ErrorIs(t, err, cache.ErrLoadPanic)
}

// Many concurrent GetManys over overlapping keys in one process: each key
// is loaded once, every caller gets every value.
func TestGetManyConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoader(t, newMemory(t, cache.MemoryConfig{}), cache.LoaderConfig[string]{})
		var loads sync.Map // key -> *atomic.Int32
		load := func(_ context.Context, keys []string) (map[string]string, error) {
			time.Sleep(10 * time.Millisecond)
			out := map[string]string{}
			for _, k := range keys {
				n, _ := loads.LoadOrStore(k, new(atomic.Int32))
				n.(*atomic.Int32).Add(1)
				out[k] = "v" + k
			}
			return out, nil
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				keys := []string{fmt.Sprint(g), fmt.Sprint(g + 1), fmt.Sprint(g + 2)}
				got, err := l.GetMany(t.Context(), keys, time.Minute, load)
				require.NoError(t, err)
				for _, k := range keys {
					require.Equal(t, "v"+k, got[k])
				}
			})
		}
		wg.Wait()
		loads.Range(func(k, n any) bool {
			require.Equal(t, int32(1), n.(*atomic.Int32).Load(), "key %v loaded more than once", k)
			return true
		})
	})
}

// blindMulti is a Memory whose GetMulti finds nothing: it stands for a
// read that ran just before another process took the key's lease.
type blindMulti struct{ *cache.Memory }

func (b blindMulti) GetMulti(context.Context, []string) (map[string][]byte, error) {
	return map[string][]byte{}, nil
}

// A key GetMany read as missing, whose lease another caller takes before
// GetMany's own Add, is not loaded by GetMany: it waits for that filler.
func TestGetManyLosesTheLeaseRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemory(t, cache.MemoryConfig{})
		filler := newLoader(t, m, cache.LoaderConfig[string]{})
		l := newLoader(t, blindMulti{m}, cache.LoaderConfig[string]{})
		gate := make(chan struct{})
		go func() {
			_, _ = filler.Get(t.Context(), "k", time.Minute, func(context.Context) (string, error) {
				<-gate
				return "from the filler", nil
			})
		}()
		synctest.Wait() // the filler holds the lease of "k"
		src := &batchSource{vals: map[string]string{"k": "mine"}}
		done := make(chan map[string]string)
		go func() {
			got, err := l.GetMany(t.Context(), []string{"k"}, time.Minute, src.load)
			require.NoError(t, err)
			done <- got
		}()
		time.Sleep(100 * time.Millisecond)
		close(gate)
		require.Equal(t, map[string]string{"k": "from the filler"}, <-done)
		require.Empty(t, src.takeCalls(), "GetMany loaded a key whose lease it lost")
	})
}
