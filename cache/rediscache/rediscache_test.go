// Real-time tests in this file: TestTTL (expiry runs on Redis's clock),
// TestServerDown (a real redis-server killed and restarted).
package rediscache_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/internal/redisopt"
	"github.com/scaleout/scaleout/internal/testenv"
)

func eachBackend(t *testing.T, f func(t *testing.T, c redis.UniversalClient, rc *rediscache.Cache)) {
	for _, b := range testenv.RedisTopologies {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			c := b.Client(t)
			rc, err := rediscache.New(c, rediscache.Config{Prefix: testenv.Prefix(t)})
			require.NoError(t, err)
			f(t, c, rc)
		})
	}
}

func TestNewConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true}) // never dialled
	t.Cleanup(func() { _ = c.Close() })
	for _, tc := range []struct {
		name string
		cfg  rediscache.Config
		ok   bool
	}{
		{"zero", rediscache.Config{}, true},
		{"prefix", rediscache.Config{Prefix: "app:c:"}, true},
		{"tagged prefix", rediscache.Config{Prefix: "app:{c}:"}, true},
		{"max bytes", rediscache.Config{MaxBytes: 10}, true},
		{"negative max", rediscache.Config{MaxBytes: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := rediscache.New(c, tc.cfg)
			if tc.ok {
				require.NoError(t, err)
				require.NotNil(t, rc)
			} else {
				require.ErrorIs(t, err, cache.ErrInvalidConfig)
			}
		})
	}
	_, err := rediscache.New(nil, rediscache.Config{})
	require.ErrorIs(t, err, cache.ErrInvalidConfig)
}

// A client that ignores context deadlines is refused by New and
// NewInvalidator, with an error naming the option to set, for every kind
// of go-redis client.
func TestRefusesClientWithoutContextTimeouts(t *testing.T) {
	clients := []redis.UniversalClient{
		redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}),
		redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}}),
		redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}}),
	}
	for _, c := range clients {
		t.Cleanup(func() { _ = c.Close() })
		_, err := rediscache.New(c, rediscache.Config{})
		require.ErrorIs(t, err, cache.ErrInvalidConfig)
		require.ErrorIs(t, err, redisopt.ErrContextTimeouts)
		require.ErrorContains(t, err, "ContextTimeoutEnabled")
		_, err = rediscache.NewInvalidator(t.Context(), c, rediscache.InvalidatorConfig{})
		require.ErrorIs(t, err, cache.ErrInvalidConfig)
		require.ErrorIs(t, err, redisopt.ErrContextTimeouts)
	}
}

func TestBasics(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient, rc *rediscache.Cache) {
		ctx := t.Context()
		keys := []string{
			"a", "a{b}c", "{", "}", "{}", "sp ace", "nul\x00byte", "\xff\xfe", "line\r\nbreak",
			strings.Repeat("k", 300), strings.Repeat("{", cache.MaxKeyLength),
		}
		for i, k := range keys {
			_, err := rc.Get(ctx, k)
			require.ErrorIs(t, err, cache.ErrMiss, k)
			require.NoError(t, rc.Set(ctx, k, []byte("v"+strconv.Itoa(i)), time.Hour))
		}
		for i, k := range keys {
			v, err := rc.Get(ctx, k)
			require.NoError(t, err)
			require.Equal(t, "v"+strconv.Itoa(i), string(v), k)
		}
		// Overwrite; binary value; empty value is a hit.
		bin := []byte{0, 1, 2, '\r', '\n', 255}
		require.NoError(t, rc.Set(ctx, "a", bin, 0))
		v, err := rc.Get(ctx, "a")
		require.NoError(t, err)
		require.Equal(t, bin, v)
		for _, empty := range [][]byte{nil, {}} {
			require.NoError(t, rc.Set(ctx, "empty", empty, time.Hour))
			v, err = rc.Get(ctx, "empty")
			require.NoError(t, err)
			require.Empty(t, v)
		}

		// Delete of many keys spans slots (cluster nodes) in one call.
		require.NoError(t, rc.Delete(ctx, keys...))
		for _, k := range keys {
			_, err := rc.Get(ctx, k)
			require.ErrorIs(t, err, cache.ErrMiss, k)
		}
		require.NoError(t, rc.Delete(ctx, "never-there"))
		require.NoError(t, rc.Delete(ctx, "never-1", "never-2"))
		require.NoError(t, rc.Delete(ctx))

		// Bad input: nothing is touched.
		require.NoError(t, rc.Set(ctx, "keep", []byte("x"), 0))
		for _, bad := range []string{"", strings.Repeat("x", cache.MaxKeyLength+1)} {
			_, err := rc.Get(ctx, bad)
			require.ErrorIs(t, err, cache.ErrInvalidKey)
			require.ErrorIs(t, rc.Set(ctx, bad, nil, 0), cache.ErrInvalidKey)
			require.ErrorIs(t, rc.Delete(ctx, "keep", bad), cache.ErrInvalidKey)
			_, err = rc.GetMulti(ctx, []string{"keep", bad})
			require.ErrorIs(t, err, cache.ErrInvalidKey)
			require.ErrorIs(t, rc.SetMulti(ctx, map[string][]byte{"keep": []byte("y"), bad: nil}, 0), cache.ErrInvalidKey)
		}
		require.ErrorIs(t, rc.Set(ctx, "keep", []byte("y"), -time.Millisecond), cache.ErrInvalidTTL)
		require.ErrorIs(t, rc.SetMulti(ctx, map[string][]byte{"keep": []byte("y")}, -1), cache.ErrInvalidTTL)
		v, err = rc.Get(ctx, "keep")
		require.NoError(t, err)
		require.Equal(t, "x", string(v))
	})
}

func TestTTL(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient, rc *rediscache.Cache) {
		ctx := t.Context()
		p := testenv.Prefix(t)
		require.NoError(t, rc.Set(ctx, "forever", []byte("x"), 0))
		require.NoError(t, rc.Set(ctx, "hour", []byte("x"), time.Hour))
		require.NoError(t, rc.Set(ctx, "odd", []byte("x"), 90*time.Minute+1500*time.Microsecond))
		require.NoError(t, rc.SetMulti(ctx, map[string][]byte{"m1": []byte("x"), "m2": []byte("y")}, 2*time.Hour))

		ttl, err := c.PTTL(ctx, p+"forever").Result()
		require.NoError(t, err)
		require.Equal(t, time.Duration(-1), ttl) // no expiry
		for k, want := range map[string]time.Duration{
			"hour": time.Hour, "odd": 90*time.Minute + 2*time.Millisecond, "m1": 2 * time.Hour, "m2": 2 * time.Hour,
		} {
			ttl, err := c.PTTL(ctx, p+k).Result()
			require.NoError(t, err)
			// The minute of slack is for the time between Set and PTTL on a
			// loaded machine; the upper bound is exact.
			require.LessOrEqual(t, ttl, want, "PTTL of %q is %v, above the %v it was set with", k, ttl, want)
			require.Greater(t, ttl, want-time.Minute, "PTTL of %q is %v, set with %v", k, ttl, want)
		}

		// Real expiry on the server (Redis's clock, so no synctest here).
		// Redis expires a key on access once its time is up, so both are
		// gone 50 ms after Set; 5 s is the margin for a loaded machine.
		set := time.Now()
		require.NoError(t, rc.Set(ctx, "short", []byte("x"), 50*time.Millisecond))
		require.NoError(t, rc.Set(ctx, "tiny", []byte("x"), time.Microsecond)) // rounded up to 1 ms
		var e1, e2 error
		for {
			_, e1 = rc.Get(ctx, "short")
			_, e2 = rc.Get(ctx, "tiny")
			if errors.Is(e1, cache.ErrMiss) && errors.Is(e2, cache.ErrMiss) {
				break
			}
			if took := time.Since(set); took > 5*time.Second {
				t.Fatalf("keys set with TTLs 50ms and 1µs still there %v after Set: Get short: %v, Get tiny: %v", took, e1, e2)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestKeyLayout(t *testing.T) {
	t.Parallel()
	c := testenv.RedisClient(t)
	p := testenv.Prefix(t)
	rc, err := rediscache.New(c, rediscache.Config{Prefix: p})
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, rc.Set(ctx, "user:1", []byte("x"), 0))
	require.NoError(t, rc.Set(ctx, "a\x00{b}", []byte("y"), 0))
	keys, err := c.Keys(ctx, p+"*").Result()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{p + "user:1", p + "a\x00{b}"}, keys)
	raw, err := c.Get(ctx, p+"user:1").Result()
	require.NoError(t, err)
	require.Equal(t, "x", raw)

	// The default prefix.
	d, err := rediscache.New(c, rediscache.Config{})
	require.NoError(t, err)
	k := p + "default" // still under the test's prefix for cleanup
	require.NoError(t, d.Set(ctx, k, []byte("z"), time.Minute))
	raw, err = c.Get(ctx, rediscache.DefaultPrefix+k).Result()
	require.NoError(t, err)
	require.Equal(t, "z", raw)
	require.NoError(t, c.Del(ctx, rediscache.DefaultPrefix+k).Err())
}

func TestMaxBytes(t *testing.T) {
	t.Parallel()
	c := testenv.RedisClient(t)
	rc, err := rediscache.New(c, rediscache.Config{Prefix: testenv.Prefix(t), MaxBytes: 8})
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, rc.Set(ctx, "ok", make([]byte, 8), 0))
	require.ErrorIs(t, rc.Set(ctx, "big", make([]byte, 9), 0), cache.ErrTooLarge)
	require.ErrorIs(t, rc.SetMulti(ctx, map[string][]byte{"a": {1}, "big": make([]byte, 9)}, 0), cache.ErrTooLarge)
	for _, k := range []string{"big", "a"} {
		_, err := rc.Get(ctx, k)
		require.ErrorIs(t, err, cache.ErrMiss, "nothing of a refused batch is written")
	}
}

// counter counts the GET, SET and DEL commands and pipelines a client sends
// (not the ones go-redis sends itself, such as HELLO on a new connection).
type counter struct{ cmds, pipes, pipedCmds atomic.Int64 }

func (h *counter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if ours(cmd) {
			h.cmds.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && ours(cmds[0]) {
			h.pipes.Add(1)
			h.pipedCmds.Add(int64(len(cmds)))
		}
		return next(ctx, cmds)
	}
}

func ours(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "get", "set", "del":
		return true
	}
	return false
}

func TestBatch(t *testing.T) {
	t.Parallel()
	for _, b := range testenv.RedisTopologies {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			c := b.Client(t)
			h := &counter{}
			c.AddHook(h)
			rc, err := rediscache.New(c, rediscache.Config{Prefix: testenv.Prefix(t)})
			require.NoError(t, err)

			const n = 200 // spread over every slot range of the cluster
			items := make(map[string][]byte, n)
			keys := make([]string, 0, 2*n)
			for i := range n {
				k := "k" + strconv.Itoa(i)
				items[k] = []byte("v" + strconv.Itoa(i))
				keys = append(keys, k, "missing"+strconv.Itoa(i))
			}
			keys = append(keys, "k0", "k0") // duplicates

			require.NoError(t, rc.SetMulti(ctx, items, time.Hour))
			got, err := rc.GetMulti(ctx, keys)
			require.NoError(t, err)
			require.Equal(t, items, got)
			// One pipeline each, no single commands (the cluster client
			// splits a pipeline by node underneath this hook).
			require.Equal(t, int64(2), h.pipes.Load())
			require.Equal(t, int64(0), h.cmds.Load())
			require.Equal(t, int64(n+2*n), h.pipedCmds.Load()) // duplicates read once

			// All missing: an empty map, not an error.
			got, err = rc.GetMulti(ctx, []string{"nope1", "nope2"})
			require.NoError(t, err)
			require.Empty(t, got)
			got, err = rc.GetMulti(ctx, nil)
			require.NoError(t, err)
			require.NotNil(t, got)
			require.Empty(t, got)
			require.NoError(t, rc.SetMulti(ctx, nil, 0))

			// Values written one way are read the other.
			v, err := rc.Get(ctx, "k7")
			require.NoError(t, err)
			require.Equal(t, "v7", string(v))
			require.NoError(t, rc.Set(ctx, "single", []byte("s"), 0))
			got, err = rc.GetMulti(ctx, []string{"single", "k8"})
			require.NoError(t, err)
			require.Equal(t, map[string][]byte{"single": []byte("s"), "k8": []byte("v8")}, got)

			del := make([]string, 0, n)
			for k := range items {
				del = append(del, k)
			}
			require.NoError(t, rc.Delete(ctx, del...))
			got, err = rc.GetMulti(ctx, del)
			require.NoError(t, err)
			require.Empty(t, got)
		})
	}
}

// A large batch of large values, to exercise pipelines bigger than socket
// buffers.
func TestBatchLarge(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient, rc *rediscache.Cache) {
		ctx := t.Context()
		items := make(map[string][]byte, 500)
		for i := range 500 {
			items["big"+strconv.Itoa(i)] = bytes.Repeat([]byte{byte(i)}, 16<<10)
		}
		require.NoError(t, rc.SetMulti(ctx, items, time.Minute))
		keys := make([]string, 0, len(items))
		for k := range items {
			keys = append(keys, k)
		}
		got, err := rc.GetMulti(ctx, keys)
		require.NoError(t, err)
		require.Equal(t, items, got)
	})
}

// A server that is down is an error, never a miss; when it comes back the
// same Cache on the same client works again.
func TestServerDown(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	c := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr(),
		ContextTimeoutEnabled: true,
		DialTimeout:           500 * time.Millisecond,
		ReadTimeout:           500 * time.Millisecond,
		MaxRetries:            -1,
	})
	t.Cleanup(func() { _ = c.Close() })
	rc, err := rediscache.New(c, rediscache.Config{Prefix: "fault:"})
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, rc.Set(ctx, "k", []byte("v"), 0))
	require.NoError(t, rc.SetMulti(ctx, map[string][]byte{"a": {1}, "b": {2}}, 0))

	srv.Kill()
	for range 3 { // including on pooled connections the kill broke
		// No deadline: one try (go-redis's own retries aside), as before the
		// switch retries, so a Loader without CacheTimeout fails open at once.
		tctx, cancel := context.WithCancel(ctx)
		_, err := rc.Get(tctx, "k")
		requireDown(t, err)
		_, err = rc.Get(tctx, "absent")
		requireDown(t, err)
		_, err = rc.GetMulti(tctx, []string{"a", "b", "absent"})
		requireDown(t, err)
		requireDown(t, rc.Set(tctx, "k", []byte("w"), 0))
		requireDown(t, rc.SetMulti(tctx, map[string][]byte{"a": {3}}, 0))
		requireDown(t, rc.Delete(tctx, "k"))
		requireDown(t, rc.Delete(tctx, "a", "b"))
		cancel()
	}

	// With a deadline, the calls ride out what could be a switch, and report
	// the client's error at the deadline. (A go-redis pipeline to a server
	// that keeps refusing dials waits out the deadline itself and answers the
	// context's error, so GetMulti and SetMulti are not here.)
	for _, f := range []func(context.Context) error{
		func(ctx context.Context) error { _, err := rc.Get(ctx, "k"); return err },
		func(ctx context.Context) error { return rc.Set(ctx, "k", []byte("w"), 0) },
		func(ctx context.Context) error { return rc.Delete(ctx, "a") },
	} {
		tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		start := time.Now()
		requireDown(t, f(tctx))
		require.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "retried until about the deadline")
		cancel()
	}

	srv.Restart() // empty: no AOF
	// No duration promise here, only that the Cache recovers: 15 s is room
	// for the client to drop its broken connections on a loaded machine.
	require.Eventually(t, func() bool {
		_, err := rc.Get(ctx, "k")
		return errors.Is(err, cache.ErrMiss)
	}, 15*time.Second, 50*time.Millisecond, "the Cache did not answer a miss within 15s of Restart")
	require.NoError(t, rc.Set(ctx, "k", []byte("again"), 0))
	v, err := rc.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "again", string(v))
	require.NoError(t, rc.SetMulti(ctx, map[string][]byte{"a": {1}}, 0))
	got, err := rc.GetMulti(ctx, []string{"a", "b"})
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{"a": {1}}, got)
}

func requireDown(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.NotErrorIs(t, err, cache.ErrMiss)
	require.True(t, strings.HasPrefix(err.Error(), "rediscache: "), err.Error())
	var op *net.OpError
	require.True(t, errors.As(err, &op) || strings.Contains(err.Error(), "connection") ||
		strings.Contains(err.Error(), "EOF"), "client error wrapped: %v", err)
}

// A canceled context is the context's error, not a miss.
func TestCanceled(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient, rc *rediscache.Cache) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := rc.Get(ctx, "k")
		require.ErrorIs(t, err, context.Canceled)
		_, err = rc.GetMulti(ctx, []string{"a", "b"})
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, rc.Set(ctx, "k", nil, 0), context.Canceled)
	})
}

// The Cache never closes the caller's client.
func TestClientStaysOpen(t *testing.T) {
	t.Parallel()
	c := testenv.RedisClient(t)
	rc, err := rediscache.New(c, rediscache.Config{Prefix: testenv.Prefix(t)})
	require.NoError(t, err)
	require.NoError(t, rc.Set(t.Context(), "k", []byte("v"), 0))
	require.NoError(t, c.Ping(t.Context()).Err())
}
