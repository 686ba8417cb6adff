package cache_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/observe"
)

// TestLoaderMetrics runs a known workload through two Loaders on one
// Memory, one with a local tier, and checks the figures of observe's table
// for cache against the workload and against Stats, which counts the same.
func TestLoaderMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		mem := newMemory(t, cache.MemoryConfig{})
		recA, recB := observe.NewRecorder(), observe.NewRecorder()
		la := newLoader(t, mem, cache.LoaderConfig[string]{Meter: recA, LocalTTL: time.Minute})
		lb := newLoader(t, mem, cache.LoaderConfig[string]{Meter: recB, StaleFor: time.Hour})
		ok := func(context.Context) (string, error) { time.Sleep(5 * time.Millisecond); return "v", nil }
		boom := errors.New("db down")
		fail := func(context.Context) (string, error) { return "", boom }

		// A: a miss and its 5 ms load, then two local hits.
		for range 3 {
			if _, err := la.Get(ctx, "a", time.Minute, ok); err != nil {
				t.Fatal(err)
			}
		}
		// B: a shared hit of what A stored; a miss whose load fails; a key
		// stored for 1 s, read again after 2 s when its reload fails: the
		// stale value is served.
		if _, err := lb.Get(ctx, "a", time.Minute, ok); err != nil {
			t.Fatal(err)
		}
		if _, err := lb.Get(ctx, "x", time.Minute, fail); !errors.Is(err, boom) {
			t.Fatalf("failing load: %v", err)
		}
		if _, err := lb.Get(ctx, "s", time.Second, ok); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if v, err := lb.Get(ctx, "s", time.Second, fail); err != nil || v != "v" {
			t.Fatalf("stale serve: %q, %v", v, err)
		}

		for _, tc := range []struct {
			rec  *observe.Recorder
			want map[string]float64
			st   cache.Stats
		}{
			{recA, map[string]float64{
				"scaleout.cache.hits": 2, "scaleout.cache.misses": 1, "scaleout.cache.loads": 1,
				"scaleout.cache.load_errors": 0, "scaleout.cache.stale_served": 0,
			}, la.Stats()},
			{recB, map[string]float64{
				// s read again is a miss (its reload fails) answered stale.
				"scaleout.cache.hits": 1, "scaleout.cache.misses": 3, "scaleout.cache.loads": 3,
				"scaleout.cache.load_errors": 2, "scaleout.cache.stale_served": 1,
			}, lb.Stats()},
		} {
			fromStats := map[string]uint64{
				"scaleout.cache.hits": tc.st.Hits, "scaleout.cache.misses": tc.st.Misses,
				"scaleout.cache.loads": tc.st.Loads, "scaleout.cache.load_errors": tc.st.LoadErrors,
				"scaleout.cache.stale_served": tc.st.StaleServes, "scaleout.cache.lease_waits": tc.st.LeaseWaits,
				"scaleout.cache.refreshes": tc.st.Refreshes, "scaleout.cache.errors": tc.st.CacheErrors,
			}
			for name, want := range tc.want {
				if got := tc.rec.Value(name); got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			for name, st := range fromStats {
				if got := tc.rec.Value(name); got != float64(st) {
					t.Errorf("%s = %v, Stats says %d", name, got, st)
				}
			}
		}
		if got := recA.Value("scaleout.cache.hits", "tier", "local"); got != 2 {
			t.Errorf("local hits of A = %v, want 2", got)
		}
		if got := recB.Value("scaleout.cache.hits", "tier", "shared"); got != 1 {
			t.Errorf("shared hits of B = %v, want 1", got)
		}
		if n, sum := recA.Count("scaleout.cache.load.duration"), recA.Value("scaleout.cache.load.duration"); n != 1 || sum != 0.005 {
			t.Errorf("load duration of A: %d loads, %v s, want 1 of 0.005 s", n, sum)
		}
	})
}

// TestMemoryEvictionMetric checks that a bounded Memory reports each
// eviction Stats counts.
func TestMemoryEvictionMetric(t *testing.T) {
	rec := observe.NewRecorder()
	mem := newMemory(t, cache.MemoryConfig{MaxEntries: 10, Shards: 1, Policy: cache.PolicyLRU, Meter: rec})
	for i := range 50 {
		if err := mem.Set(context.Background(), fmt.Sprint(i), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	want := mem.Stats().Evictions
	if want < 40 {
		t.Fatalf("Stats().Evictions = %d after 50 sets into 10 entries, want at least 40", want)
	}
	if got := rec.Value("scaleout.cache.evictions"); got != float64(want) {
		t.Errorf("evictions = %v, Stats says %d", got, want)
	}
}

// TestLocalHitAllocs checks that a local-tier hit allocates nothing, with
// a Meter and without.
func TestLocalHitAllocs(t *testing.T) {
	if cache.StoreRaceEnabled {
		t.Skip("under -race, sync.Pool drops items at random: the hit path then allocates")
	}
	for _, m := range []observe.Meter{nil, observe.NewRecorder()} {
		l := newLoader(t, newMemory(t, cache.MemoryConfig{}), cache.LoaderConfig[string]{Meter: m, LocalTTL: time.Minute})
		ctx := context.Background()
		load := func(context.Context) (string, error) { return "v", nil }
		if _, err := l.Get(ctx, "k", time.Minute, load); err != nil {
			t.Fatal(err)
		}
		if allocs := testing.AllocsPerRun(1000, func() { _, _ = l.Get(ctx, "k", time.Minute, load) }); allocs != 0 {
			t.Errorf("Meter %T: %v allocations per local hit, want 0", m, allocs)
		}
	}
}
