// Real-time tests in this file: TestExpires (expiry runs on memcached's
// 1-second clock), TestFault (a real memcached killed and restarted).
package memcachedcache

import (
	"github.com/scaleout/scaleout/internal/mckey"

	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/internal/testenv"
)

// newCache returns a Cache on the shared memcached under the test's prefix,
// and the raw client.
// maxRelative is the longest expiration memcached takes as relative
// seconds: the boundary the expiration tables probe.
const maxRelative = 30 * 24 * 60 * 60

func newCache(t testing.TB) (*Cache, *memcache.Client) {
	t.Helper()
	mc := testenv.MemcachedClient(t)
	c, err := New(mc, Config{Prefix: testenv.Prefix(t)})
	require.NoError(t, err)
	return c, mc
}

func TestNewConfig(t *testing.T) {
	mc := memcache.New("127.0.0.1:1")
	c, err := New(mc, Config{})
	require.NoError(t, err)
	require.Equal(t, DefaultPrefix, c.prefix)

	_, err = New(nil, Config{})
	require.ErrorIs(t, err, cache.ErrInvalidConfig)
	for _, p := range []string{"has space", "ctl\n", "é", strings.Repeat("p", MaxPrefixLength+1)} {
		_, err = New(mc, Config{Prefix: p})
		require.ErrorIs(t, err, cache.ErrInvalidConfig, "%q", p)
	}
	_, err = New(mc, Config{Prefix: strings.Repeat("p", MaxPrefixLength)})
	require.NoError(t, err)
}

func TestKeyEncoding(t *testing.T) {
	c, err := New(memcache.New("127.0.0.1:1"), Config{Prefix: "p:"})
	require.NoError(t, err)
	long := strings.Repeat("k", 250)
	tests := []struct {
		key    string
		direct bool
	}{
		{"plain", true},
		{"a:b/c?d=e&f", true},
		{strings.Repeat("k", 248), true}, // 2 + 248 = 250
		{strings.Repeat("k", 249), false},
		{long, false},
		{"with space", false},
		{"tab\there", false},
		{"nl\n", false},
		{"del\x7f", false},
		{"ünïcode", false},
		{"~h" + strings.Repeat("A", 43), false}, // looks like a hashed key
		{"~", false},
	}
	for _, tt := range tests {
		k := c.key(tt.key)
		require.True(t, mckey.Safe(k) && len(k) <= 250, "%q -> %q", tt.key, k)
		if tt.direct {
			require.Equal(t, "p:"+tt.key, k)
		} else {
			require.True(t, strings.HasPrefix(k, "p:~h"), "%q -> %q", tt.key, k)
			require.Len(t, k, 2+2+43)
		}
	}
	// A direct key can never equal a hashed one: hashed ones start with '~'.
	h := c.key("with space")
	require.NotEqual(t, h, c.key(strings.TrimPrefix(h, "p:")))
}

// TestHashedKeysRoundTrip stores keys memcached would reject, and a direct
// key spelled like the hashed form of another key, on the real server.
func TestHashedKeysRoundTrip(t *testing.T) {
	c, _ := newCache(t)
	ctx := t.Context()
	keys := []string{
		strings.Repeat("x", 300),
		strings.Repeat("x", 301),
		"with space", "ctl\x01", "ünïcode", "~tilde", "plain",
		strings.Repeat("y", cache.MaxKeyLength),
	}
	for i, k := range keys {
		require.NoError(t, c.Set(ctx, k, []byte(fmt.Sprint("v", i)), time.Minute), "%q", k)
	}
	// The suffix of a hashed key used as a plain key: a different entry.
	hashedSuffix := strings.TrimPrefix(c.key("with space"), c.prefix)
	require.NoError(t, c.Set(ctx, hashedSuffix, []byte("other"), time.Minute))
	for i, k := range keys {
		v, err := c.Get(ctx, k)
		require.NoError(t, err, "%q", k)
		require.Equal(t, fmt.Sprint("v", i), string(v), "%q", k)
	}
	v, err := c.Get(ctx, hashedSuffix)
	require.NoError(t, err)
	require.Equal(t, "other", string(v))

	got, err := c.GetMulti(ctx, append(keys, "absent", hashedSuffix))
	require.NoError(t, err)
	require.Len(t, got, len(keys)+1)
	for i, k := range keys {
		require.Equal(t, fmt.Sprint("v", i), string(got[k]))
	}

	require.NoError(t, c.Delete(ctx, keys...))
	for _, k := range keys {
		_, err := c.Get(ctx, k)
		require.ErrorIs(t, err, cache.ErrMiss)
	}
	_, err = c.Get(ctx, hashedSuffix)
	require.NoError(t, err)
}

func TestInvalidKeys(t *testing.T) {
	c, _ := newCache(t)
	ctx := t.Context()
	for _, k := range []string{"", strings.Repeat("z", cache.MaxKeyLength+1)} {
		_, err := c.Get(ctx, k)
		require.ErrorIs(t, err, cache.ErrInvalidKey)
		require.ErrorIs(t, c.Set(ctx, k, []byte("v"), 0), cache.ErrInvalidKey)
		require.ErrorIs(t, c.Delete(ctx, "ok", k), cache.ErrInvalidKey)
		_, err = c.GetMulti(ctx, []string{"ok", k})
		require.ErrorIs(t, err, cache.ErrInvalidKey)
		require.ErrorIs(t, c.SetMulti(ctx, map[string][]byte{"ok": nil, k: nil}, 0), cache.ErrInvalidKey)
	}
	_, err := c.Get(ctx, "ok")
	require.ErrorIs(t, err, cache.ErrMiss, "nothing written by a refused SetMulti")
}

func TestExpiration(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	day := 24 * time.Hour
	tests := []struct {
		ttl  time.Duration
		want int32
	}{
		{0, 0},
		{time.Nanosecond, 2}, // rounded up, and a second for the server's tick
		{time.Second, 2},
		{time.Second + time.Millisecond, 3},
		{90 * time.Second, 91},
		{30*day - time.Second, maxRelative},
		{30*day - time.Second + time.Nanosecond, int32(now.Unix()) + maxRelative + 1},
		{365 * day, int32(now.Unix() + 365*86400 + 1)},
		{100 * 365 * day, math.MaxInt32},
		{time.Duration(math.MaxInt64), math.MaxInt32},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, expiration(now, tt.ttl), "%v", tt.ttl)
	}
}

func TestTTL(t *testing.T) {
	c, mc := newCache(t)
	ctx := t.Context()
	require.ErrorIs(t, c.Set(ctx, "k", []byte("v"), -time.Second), cache.ErrInvalidTTL)
	require.ErrorIs(t, c.SetMulti(ctx, map[string][]byte{"k": nil}, -1), cache.ErrInvalidTTL)
	_, err := c.Get(ctx, "k")
	require.ErrorIs(t, err, cache.ErrMiss)

	// Beyond 30 days: an absolute time the server accepts (the item is live).
	require.NoError(t, c.Set(ctx, "far", []byte("v"), 60*24*time.Hour))
	v, err := c.Get(ctx, "far")
	require.NoError(t, err)
	require.Equal(t, "v", string(v))

	// A sub-second TTL is rounded up, not down to 0 (= forever) or expired.
	require.NoError(t, c.Set(ctx, "short", []byte("v"), time.Millisecond))
	_, err = c.Get(ctx, "short")
	require.NoError(t, err)

	// ttl 0: no expiration on the item.
	require.NoError(t, c.Set(ctx, "forever", []byte("v"), 0))
	_, err = mc.Get(c.key("forever"))
	require.NoError(t, err)
}

// TestExpires waits for a real 1-second expiry (memcached's clock has
// 1-second resolution, so synctest cannot stand in for it).
func TestExpires(t *testing.T) {
	if testing.Short() {
		t.Skip("sleeps")
	}
	c, _ := newCache(t)
	ctx := t.Context()
	set := time.Now()
	require.NoError(t, c.Set(ctx, "k", []byte("v"), time.Second))
	// memcached's clock ticks once a second, so a 1 s item lives up to
	// 2 s; 5 s leaves 3 s of margin for a loaded machine.
	for {
		_, err := c.Get(ctx, "k")
		if errors.Is(err, cache.ErrMiss) {
			break
		}
		if took := time.Since(set); took > 5*time.Second {
			t.Fatalf("an item set with a 1s TTL still there %v after Set (Get: %v)", took, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestTooLarge(t *testing.T) {
	c, _ := newCache(t)
	ctx := t.Context()
	big := bytes.Repeat([]byte("b"), 2<<20) // above the default 1 MB item limit
	err := c.Set(ctx, "big", big, time.Minute)
	require.ErrorIs(t, err, cache.ErrTooLarge)
	_, err = c.Get(ctx, "big")
	require.ErrorIs(t, err, cache.ErrMiss, "nothing stored")

	// A too-large overwrite does not leave the old value behind.
	require.NoError(t, c.Set(ctx, "old", []byte("small"), time.Minute))
	require.ErrorIs(t, c.Set(ctx, "old", big, time.Minute), cache.ErrTooLarge)
	_, err = c.Get(ctx, "old")
	require.ErrorIs(t, err, cache.ErrMiss)

	err = c.SetMulti(ctx, map[string][]byte{"big2": big}, time.Minute)
	require.ErrorIs(t, err, cache.ErrTooLarge)

	// The connection stays usable.
	require.NoError(t, c.Set(ctx, "after", []byte("ok"), time.Minute))
	v, err := c.Get(ctx, "after")
	require.NoError(t, err)
	require.Equal(t, "ok", string(v))
}

func TestBatch(t *testing.T) {
	c, _ := newCache(t)
	ctx := t.Context()
	got, err := c.GetMulti(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, got)

	items := map[string][]byte{"a": []byte("1"), "b c": []byte("2"), "empty": {}}
	require.NoError(t, c.SetMulti(ctx, items, time.Minute))
	got, err = c.GetMulti(ctx, []string{"a", "b c", "empty", "missing", "a"})
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{"a": []byte("1"), "b c": []byte("2"), "empty": {}}, got)
	require.NoError(t, c.SetMulti(ctx, nil, 0))
}

func TestDeleteMissingAndContext(t *testing.T) {
	c, _ := newCache(t)
	require.NoError(t, c.Delete(t.Context(), "never-set", "also"))
	require.NoError(t, c.Delete(t.Context()))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Get(ctx, "k")
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, cache.ErrMiss)
	require.ErrorIs(t, c.Set(ctx, "k", nil, 0), context.Canceled)
	require.ErrorIs(t, c.Delete(ctx, "k"), context.Canceled)
	_, err = c.GetMulti(ctx, []string{"k"})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, c.SetMulti(ctx, map[string][]byte{"k": nil}, 0), context.Canceled)
}

// TestFault runs on a private memcached: a killed server gives errors (never
// ErrMiss), and after a restart the same client works again.
func TestFault(t *testing.T) {
	srv := testenv.StartMemcached(t)
	mc := memcache.New(srv.Addr())
	mc.Timeout = time.Second
	c, err := New(mc, Config{})
	require.NoError(t, err)
	ctx := t.Context()

	require.NoError(t, c.Set(ctx, "k", []byte("x"), time.Hour))
	v, err := c.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "x", string(v))

	srv.Kill()
	for range 3 { // also drains the client's idle connections
		_, err = c.Get(ctx, "k")
		require.Error(t, err)
		require.NotErrorIs(t, err, cache.ErrMiss)
	}
	_, err = c.GetMulti(ctx, []string{"k", "other"})
	require.Error(t, err)
	require.NotErrorIs(t, err, cache.ErrMiss)
	require.Error(t, c.Set(ctx, "k", []byte("y"), time.Hour))
	require.Error(t, c.SetMulti(ctx, map[string][]byte{"k": nil}, time.Hour))
	err = c.Delete(ctx, "k")
	require.Error(t, err)
	require.NotErrorIs(t, err, cache.ErrMiss)

	srv.Restart()
	_, err = c.Get(ctx, "k") // memcached restarts empty
	require.ErrorIs(t, err, cache.ErrMiss)
	require.NoError(t, c.Set(ctx, "k", []byte("z"), time.Hour))
	v, err = c.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, "z", string(v))
}

func FuzzKey(f *testing.F) {
	f.Add("abc", "abd")
	f.Add("a b", "~h")
	f.Add(strings.Repeat("x", 300), "ü")
	c, err := New(memcache.New("127.0.0.1:1"), Config{Prefix: "p:"})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, a, b string) {
		if cache.CheckKey(a) != nil || cache.CheckKey(b) != nil {
			return
		}
		ka, kb := c.key(a), c.key(b)
		require.True(t, mckey.Safe(ka) && len(ka) <= 250)
		if a != b {
			require.NotEqual(t, ka, kb)
		}
	})
}

// BenchmarkGetHit measures a 1 KiB hit through the cache and, in the same
// loop, a raw gomemcache Get of the same item, alternating the two so that
// machine noise hits both alike. It reports each one's ns per Get and their
// ratio (cache/raw); B/op and allocs/op cover one of each.
func BenchmarkGetHit(b *testing.B) {
	c, mc := newCache(b)
	ctx := context.Background()
	val := bytes.Repeat([]byte("v"), 1024)
	require.NoError(b, c.Set(ctx, "bench", val, time.Hour))
	mkey := c.key("bench")
	var raw, ours time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := mc.Get(mkey); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := c.Get(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
		raw += t1.Sub(t0)
		ours += time.Since(t1)
	}
	b.ReportMetric(float64(raw)/float64(b.N), "raw-ns/get")
	b.ReportMetric(float64(ours)/float64(b.N), "cache-ns/get")
	b.ReportMetric(float64(ours)/float64(raw), "cache/raw")
}

func BenchmarkSet(b *testing.B) {
	c, _ := newCache(b)
	ctx := context.Background()
	val := bytes.Repeat([]byte("v"), 1024)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Set(ctx, "bench", val, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetMulti10(b *testing.B) {
	c, _ := newCache(b)
	ctx := context.Background()
	val := bytes.Repeat([]byte("v"), 1024)
	keys := make([]string, 10)
	items := map[string][]byte{}
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
		items[keys[i]] = val
	}
	require.NoError(b, c.SetMulti(ctx, items, time.Hour))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetMulti(ctx, keys); err != nil {
			b.Fatal(err)
		}
	}
}
