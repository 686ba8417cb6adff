// Real-time tests in this file: TestStampedeAcrossProcesses (4 real
// processes on a real Redis; it asserts a count, not a duration: children
// that start late only find the value already filled).
package rediscache_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/internal/testenv"
)

// The stampede test runs this test binary as 4 processes. Each child
// finds its orders in these variables.
const (
	childEnv   = "SCALEOUT_STAMPEDE_CHILD" // the shared key prefix
	childAddr  = "SCALEOUT_STAMPEDE_ADDR"
	childStart = "SCALEOUT_STAMPEDE_START" // Unix nanoseconds at which all start
)

// TestStampedeAcrossProcesses: 1,000 concurrent Gets of one missing key,
// from 4 processes sharing one Redis, whose load takes 50 ms, load it once
// in all (go-redis/cache: once per process). The load counts itself in
// Redis, where all 4 processes can add to one counter.
func TestStampedeAcrossProcesses(t *testing.T) {
	c := testenv.RedisClient(t)
	prefix := testenv.Prefix(t)
	start := time.Now().Add(2 * time.Second) // time for the children to start and connect
	const procs = 4
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i := range procs {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestStampedeChild$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			childEnv+"="+prefix,
			childAddr+"="+testenv.RedisAddr(t),
			childStart+"="+strconv.FormatInt(start.UnixNano(), 10))
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i := range procs {
		require.NoError(t, errs[i], "child %d:\n%s", i, outs[i])
		require.Contains(t, string(outs[i]), "stampede child: 250 gets ok", "child %d:\n%s", i, outs[i])
	}
	loads, err := c.Get(t.Context(), prefix+"loads").Int()
	require.NoError(t, err)
	require.Equal(t, 1, loads, "1,000 Gets from 4 processes must load once")
}

// TestStampedeChild is one process of TestStampedeAcrossProcesses; it does
// nothing when run on its own.
func TestStampedeChild(t *testing.T) {
	prefix := os.Getenv(childEnv)
	if prefix == "" {
		return // not a child
	}
	c := redis.NewClient(&redis.Options{Addr: os.Getenv(childAddr), PoolSize: 64, ContextTimeoutEnabled: true})
	defer c.Close()
	rc, err := rediscache.New(c, rediscache.Config{Prefix: prefix})
	require.NoError(t, err)
	l, err := cache.NewLoader(rc, cache.LoaderConfig[string]{})
	require.NoError(t, err)
	defer l.Close()
	require.NoError(t, c.Ping(t.Context()).Err())

	ns, err := strconv.ParseInt(os.Getenv(childStart), 10, 64)
	require.NoError(t, err)
	time.Sleep(time.Until(time.Unix(0, ns)))

	load := func(ctx context.Context) (string, error) {
		if err := c.Incr(ctx, prefix+"loads").Err(); err != nil {
			return "", err
		}
		time.Sleep(50 * time.Millisecond)
		return "expensive", nil
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for range 250 {
		wg.Go(func() {
			v, err := l.Get(t.Context(), "hot", time.Minute, load)
			if err != nil || v != "expensive" {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%q %v", v, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Empty(t, bad, strings.Join(bad, "\n"))
	fmt.Printf("stampede child: 250 gets ok, stats %+v\n", l.Stats())
}
