package rediscache_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/internal/testenv"
)

// TestInvalidationThroughFailover: a Sentinel failover must not leave a local
// tier stale. The reader's subscription sits on the master; while SENTINEL
// FAILOVER promotes a replica and demotes the master, most of what is
// published never reaches the subscription (with the Invalidator's
// drop-everything on a resubscription mutated out, 2,691 of 3,000 keys stayed
// stale). Each key is written at most once, so no later write heals a lost
// invalidation. Once the switch is over, the reader's local tier (LocalTTL an
// hour: only invalidations keep it true) must agree with the shared cache,
// whatever writes the switch itself lost (TestFailover counts those).
func TestInvalidationThroughFailover(t *testing.T) {
	t.Parallel()
	g := testenv.StartSentinelGroup(t, testenv.SentinelGroupOptions{})
	proc := func(localTTL time.Duration) *cache.Loader[int] {
		c := g.Client(t)
		rc, err := rediscache.New(c, rediscache.Config{Prefix: "inv-fo:"})
		require.NoError(t, err)
		inv, err := rediscache.NewInvalidator(t.Context(), c, rediscache.InvalidatorConfig{Channel: "inv-fo"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = inv.Close() })
		l, err := cache.NewLoader(rc, cache.LoaderConfig[int]{LocalTTL: localTTL, Invalidator: inv, EarlyRefresh: -1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		return l
	}
	writer, reader := proc(time.Hour), proc(time.Hour)
	shared := proc(0) // no local tier: what the shared cache holds

	var mu sync.Mutex
	source := map[string]int{}
	load := func(k string) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { mu.Lock(); defer mu.Unlock(); return source[k], nil }
	}
	keys := make([]string, 3000) // each written at most once a switch: no later write heals a lost invalidation
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	readAll := func(l *cache.Loader[int]) map[string]int {
		got := map[string]int{}
		for _, k := range keys {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			v, err := l.Get(ctx, k, time.Hour, load(k))
			cancel()
			require.NoError(t, err)
			got[k] = v
		}
		return got
	}
	const settle = time.Second // for the resubscription, on a loaded machine
	readAll(reader)            // the reader's local tier holds every key
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // writes before, during and after the switch
		for _, k := range keys {
			select {
			case <-done:
				return
			default:
			}
			mu.Lock()
			source[k] = 1
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_ = writer.Set(ctx, k, 1, time.Hour) // a write lost in the switch is the shared cache's business
			cancel()
			time.Sleep(3 * time.Millisecond)
		}
	})
	start := time.Now()
	g.Failover()
	time.Sleep(300 * time.Millisecond)
	close(done)
	wg.Wait()
	switched := time.Since(start)
	time.Sleep(settle)
	want, got := readAll(shared), readAll(reader)
	n := 0
	for _, k := range keys {
		if got[k] != want[k] {
			n++
		}
	}
	t.Logf("switch (%v): %d of %d keys stale in the reader's local tier %v after the last write", switched.Round(time.Millisecond), n, len(keys), settle)
	require.Zero(t, n, "keys whose invalidation the failover lost, left stale in a local tier")
}
