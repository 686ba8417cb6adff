package rediscache_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/internal/testenv"
)

// BenchmarkGetHit reads one 1 KiB value through the Cache and through a raw
// go-redis GET of the same key on the same client, side by side:
//
//   - cache and raw: each alone, for ns/op and allocs/op;
//   - interleaved: one Cache Get then one raw GET per iteration, timed
//     separately, reporting cache-ns/op, raw-ns/op and their ratio (target
//     ≤ 1.10), so drift in the server's speed hits both equally.
func BenchmarkGetHit(b *testing.B) {
	c := testenv.RedisClient(b)
	p := testenv.Prefix(b)
	rc, err := rediscache.New(c, rediscache.Config{Prefix: p})
	require.NoError(b, err)
	ctx := b.Context()
	val := bytes.Repeat([]byte("x"), 1024)
	require.NoError(b, rc.Set(ctx, "hot", val, 0))
	raw := p + "hot"

	b.Run("cache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rc.Get(ctx, "hot"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(ctx, raw).Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interleaved", func(b *testing.B) {
		b.ReportAllocs()
		var tc, tr time.Duration
		n := 0
		for b.Loop() {
			t0 := time.Now()
			if _, err := rc.Get(ctx, "hot"); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := c.Get(ctx, raw).Bytes(); err != nil {
				b.Fatal(err)
			}
			tr += time.Since(t1)
			tc += t1.Sub(t0)
			n++
		}
		b.ReportMetric(float64(tc.Nanoseconds())/float64(n), "cache-ns/op")
		b.ReportMetric(float64(tr.Nanoseconds())/float64(n), "raw-ns/op")
		b.ReportMetric(float64(tc)/float64(tr), "ratio")
	})
}

func BenchmarkSet(b *testing.B) {
	c := testenv.RedisClient(b)
	rc, err := rediscache.New(c, rediscache.Config{Prefix: testenv.Prefix(b)})
	require.NoError(b, err)
	ctx := b.Context()
	val := bytes.Repeat([]byte("x"), 1024)
	b.ReportAllocs()
	for b.Loop() {
		if err := rc.Set(ctx, "k", val, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetMulti reads 100 keys of 1 KiB in one pipeline.
func BenchmarkGetMulti(b *testing.B) {
	for _, be := range testenv.RedisTopologies {
		b.Run(be.Name, func(b *testing.B) {
			c := be.Client(b)
			rc, err := rediscache.New(c, rediscache.Config{Prefix: testenv.Prefix(b)})
			require.NoError(b, err)
			ctx := b.Context()
			items := make(map[string][]byte, 100)
			keys := make([]string, 0, 100)
			for i := range 100 {
				k := "k" + strconv.Itoa(i)
				items[k] = bytes.Repeat([]byte("x"), 1024)
				keys = append(keys, k)
			}
			require.NoError(b, rc.SetMulti(ctx, items, time.Minute))
			b.ReportAllocs()
			for b.Loop() {
				got, err := rc.GetMulti(ctx, keys)
				if err != nil || len(got) != 100 {
					b.Fatal(err, len(got))
				}
			}
		})
	}
}

// BenchmarkLoaderGetHit reads one 1 KiB value through a cache.Loader on the
// Cache, interleaved with a raw go-redis GET as in BenchmarkGetHit: the
// ratio is the Loader's whole cost (single flight, envelope, timeouts)
// over the round trip (target ≤ 1.10).
func BenchmarkLoaderGetHit(b *testing.B) {
	c := testenv.RedisClient(b)
	p := testenv.Prefix(b)
	rc, err := rediscache.New(c, rediscache.Config{Prefix: p})
	require.NoError(b, err)
	l, err := cache.NewLoader(rc, cache.LoaderConfig[[]byte]{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = l.Close() })
	ctx := b.Context()
	val := bytes.Repeat([]byte("x"), 1024)
	require.NoError(b, l.Set(ctx, "hot", val, time.Hour))
	require.NoError(b, c.Set(ctx, p+"raw", val, time.Hour).Err())
	load := func(context.Context) ([]byte, error) {
		b.Fatal("a hit must not load")
		return nil, nil
	}
	b.ReportAllocs()
	var tl, tr time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		if _, err := l.Get(ctx, "hot", time.Hour, load); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := c.Get(ctx, p+"raw").Bytes(); err != nil {
			b.Fatal(err)
		}
		tr += time.Since(t1)
		tl += t1.Sub(t0)
		n++
	}
	b.ReportMetric(float64(tl.Nanoseconds())/float64(n), "loader-ns/op")
	b.ReportMetric(float64(tr.Nanoseconds())/float64(n), "raw-ns/op")
	b.ReportMetric(float64(tl)/float64(tr), "ratio")
}

// BenchmarkLoaderGetMany reads a page of 100 cached 1 KiB values through a
// cache.Loader on Redis: 100 Gets (one round trip each) against one
// GetMany (one GetMulti pipeline). ns/op and allocs/op are per page.
func BenchmarkLoaderGetMany(b *testing.B) {
	c := testenv.RedisClient(b)
	rc, err := rediscache.New(c, rediscache.Config{Prefix: testenv.Prefix(b)})
	require.NoError(b, err)
	l, err := cache.NewLoader(rc, cache.LoaderConfig[[]byte]{EarlyRefresh: -1})
	require.NoError(b, err)
	b.Cleanup(func() { _ = l.Close() })
	ctx := b.Context()
	val := bytes.Repeat([]byte("x"), 1024)
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = "page:" + strconv.Itoa(i)
		require.NoError(b, l.Set(ctx, keys[i], val, time.Hour))
	}
	load := func(context.Context) ([]byte, error) {
		b.Fatal("a hit must not load")
		return nil, nil
	}
	loadMany := func(context.Context, []string) (map[string][]byte, error) {
		b.Fatal("a hit must not load")
		return nil, nil
	}
	b.Run("gets", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, k := range keys {
				if _, err := l.Get(ctx, k, time.Hour, load); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("getmany", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := l.GetMany(ctx, keys, time.Hour, loadMany)
			if err != nil || len(got) != len(keys) {
				b.Fatal(err, len(got))
			}
		}
	})
}
