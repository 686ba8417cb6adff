// Real-time tests in this file: TestLoaderSurvivesRedisRestart and
// TestInvalidatorAcrossProcesses (a real Redis killed and restarted under a
// Loader; Redis's pub/sub). The Loader's own timing (fail-open, leases
// left behind by a failed write) is checked in synctest in package cache.
package rediscache_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/cachetest"
	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/internal/testenv"
)

func privateClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           200 * time.Millisecond,
		MaxRetries:            -1,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestLoaderSurvivesRedisRestart stops a real Redis under a running
// Loader: it fails open, then hits again once Redis is back.
func TestLoaderSurvivesRedisRestart(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rc, err := rediscache.New(privateClient(t, srv.Addr()), rediscache.Config{Prefix: "fault:"})
	require.NoError(t, err)
	cachetest.FailOpen(t, rc, srv.Kill, srv.Restart)
}

// TestInvalidatorAcrossProcesses: two Loaders with local tiers, each with
// its own client and Invalidator as two processes would have. A change in
// one reaches the other's local tier; killing Redis empties both local
// tiers (invalidations may have been lost) and invalidations flow again
// after the restart.
func TestInvalidatorAcrossProcesses(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	type proc struct {
		l   *cache.Loader[string]
		inv *rediscache.Invalidator
	}
	newProc := func() proc {
		c := privateClient(t, srv.Addr())
		rc, err := rediscache.New(c, rediscache.Config{Prefix: "inv:"})
		require.NoError(t, err)
		inv, err := rediscache.NewInvalidator(t.Context(), c, rediscache.InvalidatorConfig{Channel: "inv-test"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = inv.Close() })
		l, err := cache.NewLoader(rc, cache.LoaderConfig[string]{LocalTTL: time.Hour, Invalidator: inv})
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		return proc{l, inv}
	}
	a, b := newProc(), newProc()
	ctx := t.Context()
	get := func(p proc) string {
		v, err := p.l.Get(ctx, "k", time.Hour, func(context.Context) (string, error) { return "loaded", nil })
		require.NoError(t, err)
		return v
	}
	require.Equal(t, "loaded", get(a))
	require.Equal(t, "loaded", get(b))
	require.Equal(t, "loaded", get(b))
	require.Equal(t, uint64(1), b.l.Stats().LocalHits)

	require.NoError(t, a.l.Set(ctx, "k", "changed", time.Hour))
	require.Eventually(t, func() bool { return get(b) == "changed" }, 2*time.Second, 5*time.Millisecond,
		"b's local copy is dropped by a's publish")

	// Redis dies: the local tiers are emptied, since pub/sub may lose
	// what is published meanwhile.
	require.Equal(t, "changed", get(b))
	hits := b.l.Stats().LocalHits
	require.Equal(t, "changed", get(b))
	require.Equal(t, hits+1, b.l.Stats().LocalHits)
	srv.Kill()
	require.Eventually(t, func() bool {
		before := b.l.Stats().LocalHits
		get(b) // fails open to the load: no local hit
		return b.l.Stats().LocalHits == before
	}, 15*time.Second, 50*time.Millisecond, "the local tier is emptied when the channel drops")

	srv.Restart()
	require.Eventually(t, func() bool {
		return a.l.Set(ctx, "k", "after restart", time.Hour) == nil
	}, 15*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { return get(b) == "after restart" }, 15*time.Second, 20*time.Millisecond)
	// The subscription is back: a new change still reaches b's local tier.
	require.Eventually(t, func() bool {
		if err := a.l.Set(ctx, "k", "again", time.Hour); err != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
		first := get(b)
		return first == "again" && get(b) == "again"
	}, 15*time.Second, 100*time.Millisecond)
}
