package cachetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
)

// FailOpen runs a cache.Loader on c under a steady load from 4 goroutines,
// calls kill to take the server away mid-run, then restart, and checks
// what a user relies on: every Get keeps answering from the source while
// the server is down (counted in Stats.CacheErrors), none takes longer
// than its cache calls' CacheTimeouts allow (a read, a lease and a
// write-back: 3 × 300 ms, plus 1 s for a loaded machine), and hits resume
// after the restart without a new Loader. c's client should have short
// timeouts (a few hundred ms).
func FailOpen(t *testing.T, c cache.ObjectCache, kill, restart func()) {
	t.Helper()
	const cacheTimeout = 300 * time.Millisecond
	l, err := cache.NewLoader(c, cache.LoaderConfig[string]{CacheTimeout: cacheTimeout})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	load := func(context.Context) (string, error) { return "v", nil }

	var stop atomic.Bool
	var wg sync.WaitGroup
	var worst atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				start := time.Now()
				v, err := l.Get(t.Context(), "k"+string(rune('a'+(g+i)%8)), time.Minute, load)
				if err != nil || v != "v" {
					t.Errorf("Get = %q, %v", v, err)
					return
				}
				if d := int64(time.Since(start)); d > worst.Load() {
					worst.Store(d)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	kill()
	time.Sleep(time.Second)
	require.Positive(t, l.Stats().CacheErrors, "Gets while the server was down failed open")
	restart()
	require.Eventually(t, func() bool {
		before := l.Stats().Hits
		time.Sleep(100 * time.Millisecond)
		return l.Stats().Hits > before+10
	}, 15*time.Second, 50*time.Millisecond, "hits resume once the server is back")
	stop.Store(true)
	wg.Wait()
	worstGet, bound := time.Duration(worst.Load()), 3*cacheTimeout+time.Second
	require.Less(t, worstGet, bound, "no Get hung on the dead server: the slowest took %v (CacheTimeout %v)", worstGet, cacheTimeout)
}
