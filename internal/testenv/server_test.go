package testenv

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func newClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: 3, DialTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// gone reports whether the process has exited and been reaped.
func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestStartRedisKillRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		aof      bool
		graceful bool
		survives bool
	}{
		{"aof survives kill", true, false, true},
		{"aof survives stop", true, true, true},
		{"no aof loses data on kill", false, false, false},
		{"no aof loses data on stop", false, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			srv := StartRedis(t, RedisOptions{AppendOnly: tc.aof})
			addr := srv.Addr()
			c := newClient(t, addr)
			require.NoError(t, c.Set(ctx, "k", "v", 0).Err())

			pid := srv.s.pid()
			if tc.graceful {
				srv.Stop()
			} else {
				srv.Kill()
			}
			require.True(t, gone(pid), "redis-server pid %d still exists", pid)
			require.Error(t, newClient(t, addr).Ping(ctx).Err(), "server should be down")
			srv.Kill() // no-op when not running
			srv.Stop()

			srv.Restart()
			require.Equal(t, addr, srv.Addr(), "Restart keeps the port")
			got, err := c.Get(ctx, "k").Result()
			if tc.survives {
				require.NoError(t, err)
				require.Equal(t, "v", got)
			} else {
				require.ErrorIs(t, err, redis.Nil)
			}
		})
	}
}

func TestStartRedisRestartWhileRunning(t *testing.T) {
	t.Parallel()
	srv := StartRedis(t, RedisOptions{AppendOnly: true})
	c := newClient(t, srv.Addr())
	require.NoError(t, c.Set(t.Context(), "k", "v", 0).Err())
	old := srv.s.pid()
	srv.Restart()
	require.NotEqual(t, old, srv.s.pid())
	require.True(t, gone(old))
	require.Equal(t, "v", c.Get(t.Context(), "k").Val())
	require.DirExists(t, srv.Dir())
}

func TestStartMemcachedKillRestart(t *testing.T) {
	t.Parallel()
	srv := StartMemcached(t)
	addr := srv.Addr()
	c := memcache.New(addr)
	require.NoError(t, c.Set(&memcache.Item{Key: "k", Value: []byte("v")}))
	it, err := c.Get("k")
	require.NoError(t, err)
	require.Equal(t, "v", string(it.Value))

	pid := srv.s.pid()
	srv.Kill()
	require.True(t, gone(pid))
	require.Error(t, memcache.New(addr).Ping())

	srv.Restart()
	require.Equal(t, addr, srv.Addr())
	c = memcache.New(addr)
	_, err = c.Get("k")
	require.ErrorIs(t, err, memcache.ErrCacheMiss, "memcached keeps nothing across a restart")
	require.NoError(t, c.Set(&memcache.Item{Key: "k", Value: []byte("v2")}))

	pid = srv.s.pid()
	srv.Stop()
	require.True(t, gone(pid))
	srv.Restart()
	require.NoError(t, memcache.New(addr).Ping())
}

func TestStartTwoServersGetDifferentPorts(t *testing.T) {
	t.Parallel()
	a, b := StartRedis(t, RedisOptions{}), StartRedis(t, RedisOptions{})
	require.NotEqual(t, a.Addr(), b.Addr())
}

// TestNothingOutlivesTheTest is not parallel, so the goroutines it checks are its own.
func TestNothingOutlivesTheTest(t *testing.T) {
	defer CheckGoroutines(t)()
	var pids []int
	t.Run("servers", func(t *testing.T) {
		r := StartRedis(t, RedisOptions{AppendOnly: true})
		m := StartMemcached(t)
		c := newClient(t, r.Addr())
		require.NoError(t, c.Set(t.Context(), "k", "v", 0).Err())
		r.Kill()
		r.Restart()
		require.NoError(t, memcache.New(m.Addr()).Ping())
		pids = append(pids, r.s.pid(), m.s.pid())
	})
	require.Len(t, pids, 2)
	for _, pid := range pids {
		require.True(t, gone(pid), "server pid %d outlived its test", pid)
	}
}

func TestStartRedisPauseResume(t *testing.T) {
	t.Parallel()
	r := StartRedis(t, RedisOptions{})
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, ReadTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Set(t.Context(), "k", "v", 0).Err())
	r.Pause()
	err := c.Get(t.Context(), "k").Err()
	require.Error(t, err, "GET on a paused server answered")
	r.Resume()
	require.Eventually(t, func() bool { return c.Get(t.Context(), "k").Val() == "v" }, 10*time.Second, 20*time.Millisecond,
		"GET after Resume does not see the value")
	r.Pause()
	r.Stop() // a paused server still stops gracefully
}

func TestCheckGoroutines(t *testing.T) {
	// A goroutine left running is reported; one that ends is not.
	stop := make(chan struct{})
	rec := &leakRecorder{TB: t}
	check := CheckGoroutines(rec)
	go func() { <-stop }()
	check()
	require.True(t, rec.failed, "a leaked goroutine was not reported")
	close(stop)
	done := make(chan struct{})
	check = CheckGoroutines(t)
	go func() { close(done) }()
	<-done
	check()
}

// leakRecorder is a testing.TB that records a failure instead of failing.
type leakRecorder struct {
	testing.TB
	failed bool
}

func (r *leakRecorder) Error(args ...any)                 { r.failed = true }
func (r *leakRecorder) Errorf(format string, args ...any) { r.failed = true }
func (r *leakRecorder) Helper()                           {}

// NoEviction: a full server refuses the store instead of evicting what it
// holds, so a test counting on every acknowledged write is told, not
// silently let down.
func TestStartMemcachedNoEviction(t *testing.T) {
	t.Parallel()
	m := StartMemcachedWith(t, MemcachedOptions{MemoryMB: 2, NoEviction: true})
	c := memcache.New(m.Addr())
	value := make([]byte, 100<<10)
	var stored int
	var refused error
	for stored = 0; stored < 1000; stored++ {
		if refused = c.Set(&memcache.Item{Key: fmt.Sprint("k", stored), Value: value}); refused != nil {
			break
		}
	}
	require.Error(t, refused, "%d items of 100 KiB fitted in 2 MB", stored)
	require.Contains(t, refused.Error(), "out of memory")
	for i := range stored {
		_, err := c.Get(fmt.Sprint("k", i))
		require.NoError(t, err, "item %d of %d evicted", i, stored)
	}
}
