// Real-time tests in this file: TestLoaderCacheTimeoutHolds and
// TestLoaderWithoutCacheTimeoutHonoursCallers (a real redis-server paused
// with SIGSTOP or killed, and go-redis's own socket deadlines and dial
// retries: none of it runs on a synctest clock). Each bounds the slowest Get
// by what it configured (CacheTimeout, the caller's deadline) plus a margin
// for a loaded machine, and reports the time it measured.
package rediscache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/internal/testenv"
)

// A Redis fault for the time-bound tests: a hung server (SIGSTOP: it
// accepts connections and never answers) or a dead one (SIGKILL: refused).
type redisFault struct {
	name       string
	start, end func(*testenv.RedisServer)
}

var redisFaults = []redisFault{
	{"hung", (*testenv.RedisServer).Pause, (*testenv.RedisServer).Resume},
	{"dead", (*testenv.RedisServer).Kill, (*testenv.RedisServer).Restart},
}

// defaultClient is a client as a user builds it: go-redis's defaults
// (ReadTimeout 3 s, 3 retries), plus the ContextTimeoutEnabled that New
// requires.
func defaultClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A Loader with CacheTimeout fails open within it: against a hung or a dead
// Redis, with a default client, each Get answers from the load function in
// about CacheTimeout, and hits again once Redis is back.
func TestLoaderCacheTimeoutHolds(t *testing.T) {
	const cacheTimeout = 100 * time.Millisecond
	for _, f := range redisFaults {
		t.Run(f.name, func(t *testing.T) {
			srv := testenv.StartRedis(t, testenv.RedisOptions{})
			rc, err := rediscache.New(defaultClient(t, srv.Addr()), rediscache.Config{})
			require.NoError(t, err)
			l, err := cache.NewLoader(rc, cache.LoaderConfig[string]{CacheTimeout: cacheTimeout})
			require.NoError(t, err)
			t.Cleanup(func() { _ = l.Close() })
			load := func(context.Context) (string, error) { return "v", nil }
			ctx := t.Context()
			_, err = l.Get(ctx, "k", time.Minute, load) // connected
			require.NoError(t, err)

			f.start(srv)
			var worst time.Duration
			for i := range 5 {
				start := time.Now()
				v, err := l.Get(ctx, "k"+string(rune('a'+i)), time.Minute, load)
				took := time.Since(start)
				require.NoError(t, err)
				require.Equal(t, "v", v)
				worst = max(worst, took)
			}
			require.Less(t, worst, cacheTimeout+400*time.Millisecond,
				"a Get against a %s Redis took %v with CacheTimeout %v", f.name, worst, cacheTimeout)
			require.Positive(t, l.Stats().CacheErrors)
			t.Logf("Loader.Get, CacheTimeout %v, %s Redis: failed open in at most %v", cacheTimeout, f.name, worst)

			f.end(srv)
			require.Eventually(t, func() bool {
				before := l.Stats().Hits
				_, _ = l.Get(ctx, "k", time.Minute, load)
				return l.Stats().Hits > before
			}, 15*time.Second, 20*time.Millisecond, "hits resume once Redis is back")
		})
	}
}

// Without CacheTimeout, a hung or dead Redis holds each Get for its
// caller's own deadline and no longer: callers of one key (sharing a
// flight) and of others all return when their contexts end (with the
// value, once the client gave up and the Loader failed open, or with the
// context's error), none waits out the freeze. A default client gives up
// on a dead Redis after about 1.7 s of dial retries, past a 1 s deadline.
func TestLoaderWithoutCacheTimeoutHonoursCallers(t *testing.T) {
	const deadline = time.Second
	for _, f := range redisFaults {
		t.Run(f.name, func(t *testing.T) {
			srv := testenv.StartRedis(t, testenv.RedisOptions{})
			rc, err := rediscache.New(defaultClient(t, srv.Addr()), rediscache.Config{})
			require.NoError(t, err)
			l, err := cache.NewLoader(rc, cache.LoaderConfig[string]{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = l.Close() })
			t.Cleanup(func() { srv.Resume() }) // before the client closes
			load := func(context.Context) (string, error) { return "v", nil }
			_, err = l.Get(t.Context(), "warm", time.Minute, load)
			require.NoError(t, err)

			f.start(srv)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var worst time.Duration
			for i := range 8 {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), deadline)
					defer cancel()
					start := time.Now()
					key := "shared"
					if i%2 == 1 {
						key += string(rune('a' + i))
					}
					v, err := l.Get(ctx, key, time.Minute, load)
					took := time.Since(start)
					if err != nil {
						require.ErrorIs(t, err, context.DeadlineExceeded)
					} else {
						require.Equal(t, "v", v)
					}
					mu.Lock()
					worst = max(worst, took)
					mu.Unlock()
				})
			}
			wg.Wait()
			require.Less(t, worst, deadline+time.Second,
				"a Get with a %v deadline against a %s Redis took %v", deadline, f.name, worst)
			t.Logf("Loader.Get, no CacheTimeout, %v deadline, %s Redis: returned in at most %v", deadline, f.name, worst)
		})
	}
}
