// Real-time tests in this file: TestLoaderSurvivesMemcachedRestart and
// TestLoaderSurvivesHungMemcached (a real memcached killed or paused with
// SIGSTOP; cachetest.FailOpen bounds each Get by 2 s), and
// TestLoaderFailOpenBoundIsTheClientTimeout (gomemcache's socket
// deadlines: it bounds the slowest Get by the client's Timeout plus a
// margin for a loaded machine, and reports the time it measured).
package memcachedcache_test

import (
	"cmp"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/cachetest"
	"github.com/scaleout/scaleout/cache/memcachedcache"
	"github.com/scaleout/scaleout/internal/testenv"
)

// TestLoaderSurvivesMemcachedRestart stops a real memcached under a
// running Loader: it fails open, then hits again once memcached is back.
func TestLoaderSurvivesMemcachedRestart(t *testing.T) {
	srv := testenv.StartMemcached(t)
	mc := memcache.New(srv.Addr())
	mc.Timeout = 300 * time.Millisecond
	c, err := memcachedcache.New(mc, memcachedcache.Config{Prefix: "fault:"})
	require.NoError(t, err)
	cachetest.FailOpen(t, c, srv.Kill, srv.Restart)
}

// TestLoaderSurvivesHungMemcached: the same with a memcached that hangs
// (SIGSTOP: it accepts connections and never answers) instead of dying.
func TestLoaderSurvivesHungMemcached(t *testing.T) {
	srv := testenv.StartMemcached(t)
	mc := memcache.New(srv.Addr())
	mc.Timeout = 300 * time.Millisecond
	c, err := memcachedcache.New(mc, memcachedcache.Config{Prefix: "fault:"})
	require.NoError(t, err)
	t.Cleanup(srv.Resume)
	cachetest.FailOpen(t, c, srv.Pause, srv.Resume)
}

// What bounds a Loader's Get on memcached is the client's Timeout, not
// CacheTimeout: gomemcache takes no context, and cannot be interrupted
// within a round trip. Against a hung or dead memcached, a Get fails open
// after at most max(CacheTimeout, Timeout).
func TestLoaderFailOpenBoundIsTheClientTimeout(t *testing.T) {
	faults := []struct {
		name       string
		start, end func(*testenv.MemcachedServer)
	}{
		{"hung", (*testenv.MemcachedServer).Pause, (*testenv.MemcachedServer).Resume},
		{"dead", (*testenv.MemcachedServer).Kill, (*testenv.MemcachedServer).Restart},
	}
	for _, timeout := range []time.Duration{0, 200 * time.Millisecond} { // 0: gomemcache's default, 500 ms
		for _, f := range faults {
			t.Run(fmt.Sprintf("%s/Timeout=%v", f.name, timeout), func(t *testing.T) {
				srv := testenv.StartMemcached(t)
				mc := memcache.New(srv.Addr())
				mc.Timeout = timeout
				bound := cmp.Or(timeout, memcache.DefaultTimeout)
				c, err := memcachedcache.New(mc, memcachedcache.Config{})
				require.NoError(t, err)
				l, err := cache.NewLoader(c, cache.LoaderConfig[string]{CacheTimeout: 100 * time.Millisecond})
				require.NoError(t, err)
				t.Cleanup(func() { _ = l.Close() })
				t.Cleanup(func() { f.end(srv) })
				load := func(context.Context) (string, error) { return "v", nil }
				_, err = l.Get(t.Context(), "warm", time.Minute, load) // connected
				require.NoError(t, err)

				f.start(srv)
				var worst time.Duration
				for i := range 3 {
					start := time.Now()
					v, err := l.Get(t.Context(), fmt.Sprint("k", i), time.Minute, load)
					worst = max(worst, time.Since(start))
					require.NoError(t, err)
					require.Equal(t, "v", v)
				}
				require.Less(t, worst, bound+400*time.Millisecond,
					"a Get against a %s memcached took %v with client Timeout %v", f.name, worst, bound)
				require.Positive(t, l.Stats().CacheErrors)
				t.Logf("Loader.Get, CacheTimeout 100ms, client Timeout %v, %s memcached: failed open in at most %v", bound, f.name, worst)
			})
		}
	}
}
