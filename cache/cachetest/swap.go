package cachetest

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
)

func asSwap(t *testing.T, c cache.ObjectCache) cache.SwapCache {
	t.Helper()
	sc, ok := c.(cache.SwapCache)
	if !ok {
		t.Skipf("%T is not a cache.SwapCache", c)
	}
	return sc
}

// missTogether gives each of two Loaders its own view of a SwapCache: the
// first Gets through each view wait (up to 5 s, for a loaded machine)
// until both Loaders have read the key, so that both miss and contend for
// the fill lease by Add, where only the store's atomicity can keep one of
// them out. Counting arrivals per Loader matters: two Gets of one Loader
// (its callers read before they join its single flight) must not stand in
// for the other's.
type missTogether struct {
	cache.SwapCache
	first sync.Once
	b     *barrier
}

// barrier opens when both Loaders have arrived.
type barrier struct {
	arrived atomic.Int32
	open    chan struct{}
}

func newMissTogether(c cache.SwapCache) [2]*missTogether {
	b := &barrier{open: make(chan struct{})}
	return [2]*missTogether{{SwapCache: c, b: b}, {SwapCache: c, b: b}}
}

func (m *missTogether) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := m.SwapCache.Get(ctx, key)
	m.first.Do(func() {
		if m.b.arrived.Add(1) == 2 {
			close(m.b.open)
		}
		select {
		case <-m.b.open:
		case <-time.After(5 * time.Second):
		}
	})
	return v, err
}

func testSwap(t *testing.T, c cache.ObjectCache, p string) {
	sc := asSwap(t, c)
	ctx := t.Context()
	k := p + "swap"
	require.NoError(t, sc.Add(ctx, k, []byte("a"), 0))
	require.ErrorIs(t, sc.Add(ctx, k, []byte("b"), 0), cache.ErrNotStored)
	requireValue(t, c, k, []byte("a"))

	require.ErrorIs(t, sc.CompareAndSwap(ctx, k, []byte("x"), []byte("c"), 0), cache.ErrNotStored)
	requireValue(t, c, k, []byte("a"), "a failed CompareAndSwap must not write")
	require.NoError(t, sc.CompareAndSwap(ctx, k, []byte("a"), []byte("c"), 0))
	requireValue(t, c, k, []byte("c"))
	require.ErrorIs(t, sc.CompareAndSwap(ctx, p+"absent", nil, []byte("c"), 0), cache.ErrNotStored)
	require.ErrorIs(t, sc.CompareAndSwap(ctx, p+"absent", []byte{}, []byte("c"), 0), cache.ErrNotStored)
	requireMiss(t, c, p+"absent")

	// Binary values compare exactly.
	bin := allBytes()
	require.NoError(t, sc.Add(ctx, p+"bin", bin, 0))
	require.NoError(t, sc.CompareAndSwap(ctx, p+"bin", bin, []byte("d"), 0))
	requireValue(t, c, p+"bin", []byte("d"))

	// Add over a deleted key works again.
	require.NoError(t, c.Delete(ctx, k))
	require.NoError(t, sc.Add(ctx, k, []byte("e"), 0))
	requireValue(t, c, k, []byte("e"))

	// Validation as for Set.
	require.ErrorIs(t, sc.Add(ctx, "", []byte("x"), 0), cache.ErrInvalidKey)
	require.ErrorIs(t, sc.CompareAndSwap(ctx, "", nil, []byte("x"), 0), cache.ErrInvalidKey)
	require.ErrorIs(t, sc.Add(ctx, p+"neg", []byte("x"), -time.Second), cache.ErrInvalidTTL)
	require.ErrorIs(t, sc.CompareAndSwap(ctx, k, []byte("e"), []byte("x"), -time.Second), cache.ErrInvalidTTL)

	// TTLs of Add and CompareAndSwap are honoured.
	require.NoError(t, sc.Add(ctx, p+"ttl1", []byte("x"), time.Second))
	require.NoError(t, sc.Add(ctx, p+"ttl2", []byte("x"), 0))
	require.NoError(t, sc.CompareAndSwap(ctx, p+"ttl2", []byte("x"), []byte("y"), time.Second))
	require.Eventually(t, func() bool {
		_, e1 := c.Get(ctx, p+"ttl1")
		_, e2 := c.Get(ctx, p+"ttl2")
		return errors.Is(e1, cache.ErrMiss) && errors.Is(e2, cache.ErrMiss)
	}, 3*time.Second, 50*time.Millisecond, "Add and CompareAndSwap with a 1s TTL must expire")
}

func testSwapConcurrent(t *testing.T, c cache.ObjectCache, p string) {
	sc := asSwap(t, c)
	ctx := t.Context()
	k := p + "counter"
	require.NoError(t, sc.Add(ctx, k, []byte("0"), 0))
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for done := 0; done < each; {
				old, err := c.Get(ctx, k)
				if err != nil {
					t.Error(err)
					return
				}
				n, _ := strconv.Atoi(string(old))
				err = sc.CompareAndSwap(ctx, k, old, []byte(strconv.Itoa(n+1)), 0)
				switch {
				case err == nil:
					done++
				case !errors.Is(err, cache.ErrNotStored):
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	requireValue(t, c, k, []byte(strconv.Itoa(workers*each)), "every successful CompareAndSwap counts once")
}

// testLoaderOneLoad stands two processes up with two Loaders: their
// in-process single flights are separate, so only the store's lease keeps
// the load count at one.
func testLoaderOneLoad(t *testing.T, c cache.ObjectCache, p string) {
	stores := newMissTogether(asSwap(t, c))
	var loads atomic.Int32
	load := func(context.Context) (string, error) {
		loads.Add(1)
		time.Sleep(100 * time.Millisecond)
		return "v", nil
	}
	loaders := make([]*cache.Loader[string], 2)
	for i := range loaders {
		l, err := cache.NewLoader(stores[i], cache.LoaderConfig[string]{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		loaders[i] = l
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			v, err := loaders[i%2].Get(t.Context(), p+"one", time.Minute, load)
			if err != nil || v != "v" {
				t.Errorf("Get = %q, %v", v, err)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), loads.Load(), "50 Gets from 2 Loaders must load once")
	st := loaders[0].Stats()
	st1 := loaders[1].Stats()
	require.Equal(t, uint64(1), st.Loads+st1.Loads)
	// At least one flight waited for the lease; a caller that read the
	// lease just before its Loader's flight ended starts a flight of its
	// own, which waits too (LeaseWaits counts flights), so not exactly one.
	require.Positive(t, st.LeaseWaits+st1.LeaseWaits, "the Loader that lost the lease waited for it")
}

func testLoaderDeleteVoidsFill(t *testing.T, c cache.ObjectCache, p string) {
	asSwap(t, c)
	l, err := cache.NewLoader(c, cache.LoaderConfig[string]{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	k := p + "void"
	loading, release := make(chan struct{}), make(chan struct{})
	done := make(chan string)
	go func() {
		v, err := l.Get(t.Context(), k, time.Minute, func(context.Context) (string, error) {
			close(loading)
			<-release
			return "read before the change", nil
		})
		if err != nil {
			t.Error(err)
		}
		done <- v
	}()
	<-loading
	require.NoError(t, l.Delete(t.Context(), k), "the source changed: delete")
	close(release)
	require.Equal(t, "read before the change", <-done, "the filler's caller still gets what it loaded")
	v, err := l.Get(t.Context(), k, time.Minute, func(context.Context) (string, error) { return "after", nil })
	require.NoError(t, err)
	require.Equal(t, "after", v, "the voided fill must not have been stored")
}

func testLoaderNotFound(t *testing.T, c cache.ObjectCache, p string) {
	l, err := cache.NewLoader(c, cache.LoaderConfig[string]{NegativeTTL: time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	var loads atomic.Int32
	load := func(context.Context) (string, error) {
		loads.Add(1)
		return "", cache.ErrNotFound
	}
	for range 3 {
		_, err := l.Get(t.Context(), p+"nf", time.Minute, load)
		require.ErrorIs(t, err, cache.ErrNotFound)
	}
	require.Equal(t, int32(1), loads.Load(), "not-found is cached for NegativeTTL")
}
