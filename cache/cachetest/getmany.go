package cachetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
)

// testLoaderGetMany: Loader.GetMany on the store, from 2 Loaders standing
// for 2 processes. The first loads the missing keys in one call, the
// second finds them all (values and not-found entries) in the store;
// concurrent GetManys of overlapping keys from both load each key once;
// a Delete during a GetMany's load voids that key's fill.
func testLoaderGetMany(t *testing.T, c cache.ObjectCache, p string) {
	asSwap(t, c)
	loaders := make([]*cache.Loader[string], 2)
	for i := range loaders {
		l, err := cache.NewLoader(c, cache.LoaderConfig[string]{NegativeTTL: time.Minute})
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		loaders[i] = l
	}
	var mu sync.Mutex
	loaded := map[string]int{}
	var calls atomic.Int32
	load := func(_ context.Context, keys []string) (map[string]string, error) {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		out := map[string]string{}
		for _, k := range keys {
			loaded[k]++
			if len(k)%2 == 0 { // every other key length: not in the source
				out[k] = "v:" + k
			}
		}
		return out, nil
	}
	keys := make([]string, 20)
	want := map[string]string{}
	for i := range keys {
		keys[i] = fmt.Sprintf("%smany:%0*d", p, 1+i%2, i) // lengths alternate
		if len(keys[i])%2 == 0 {
			want[keys[i]] = "v:" + keys[i]
		}
	}
	got, err := loaders[0].GetMany(t.Context(), keys, time.Minute, load)
	require.NoError(t, err)
	require.Equal(t, want, got, "GetMany answers the values the load found, and leaves out the others")
	require.Equal(t, int32(1), calls.Load(), "one load for all the missing keys")
	got, err = loaders[1].GetMany(t.Context(), keys, time.Minute, load)
	require.NoError(t, err)
	require.Equal(t, want, got, "another Loader reads what the first stored")
	require.Equal(t, int32(1), calls.Load(), "values and not-found entries are all in the store")

	// Overlapping GetManys from both Loaders at once: the stores' leases
	// keep every key to one load.
	clear(loaded)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			ks := []string{fmt.Sprintf("%sconc:%02d", p, g), fmt.Sprintf("%sconc:%02d", p, g+1), fmt.Sprintf("%sconc:%02d", p, g+2)}
			got, err := loaders[g%2].GetMany(t.Context(), ks, time.Minute, load)
			if err != nil {
				t.Errorf("GetMany: %v", err)
				return
			}
			for _, k := range ks {
				if got[k] != "v:"+k {
					t.Errorf("GetMany[%q] = %q", k, got[k])
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	for k, n := range loaded {
		if n != 1 {
			t.Errorf("%q loaded %d times by concurrent GetManys, want once", k, n)
		}
	}
	mu.Unlock()

	// A Delete while GetMany loads voids its fill of that key.
	k := p + "void:00"
	loading, release := make(chan struct{}), make(chan struct{})
	done := make(chan map[string]string)
	go func() {
		got, err := loaders[0].GetMany(t.Context(), []string{k}, time.Minute, func(context.Context, []string) (map[string]string, error) {
			close(loading)
			<-release
			return map[string]string{k: "read before the change"}, nil
		})
		if err != nil {
			t.Error(err)
		}
		done <- got
	}()
	<-loading
	require.NoError(t, loaders[1].Delete(t.Context(), k))
	close(release)
	require.Equal(t, map[string]string{k: "read before the change"}, <-done, "the caller still gets what it loaded")
	got, err = loaders[1].GetMany(t.Context(), []string{k}, time.Minute, func(context.Context, []string) (map[string]string, error) {
		return map[string]string{k: "after"}, nil
	})
	require.NoError(t, err)
	require.Equal(t, "after", got[k], "the voided fill must not have been stored")
}
