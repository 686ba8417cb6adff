// Package cachetest is the conformance kit for cache.ObjectCache: the tests
// every store runs (the in-memory cache, cache/rediscache on a single Redis
// and on a Redis Cluster, cache/memcachedcache), and that authors of other
// stores can run on their own.
//
// Run checks the ObjectCache contract and, when the store also implements
// it, the cache.BatchCache contract:
//
//   - Get of a missing key fails with cache.ErrMiss (errors.Is).
//   - Set/Get round-trips any bytes (all 256 byte values) and an empty
//     value (Get returns a zero-length slice and no error); Set overwrites.
//   - Delete removes one or several keys; missing keys are not an error,
//     and Delete with no keys does nothing.
//   - A TTL of one second is honoured: the key is gone at most three
//     seconds later (stores may have 1-second granularity, so the kit never
//     tests sub-second TTLs); a TTL of 0 keeps the key; a negative TTL fails
//     with cache.ErrInvalidTTL.
//   - Invalid keys (empty, longer than cache.MaxKeyLength) fail with
//     cache.ErrInvalidKey on Get, Set and Delete (and GetMulti, SetMulti);
//     odd but valid keys (spaces, control bytes, '{', unicode, invalid
//     UTF-8, 300 bytes, exactly MaxKeyLength bytes) work and do not
//     collide, including long keys that differ only in their last byte.
//   - A 512 KiB value and a 4 MiB value each round-trip exactly or fail
//     with cache.ErrTooLarge, in which case nothing is stored under the key
//     (Get is ErrMiss) — never a truncated value.
//   - Values are copied: mutating the caller's buffer after Set, or the
//     slice Get returned, does not change the stored value.
//   - Concurrent Set/Get of distinct keys from many goroutines is safe and
//     correct (run the kit with -race).
//   - A canceled context fails with an error other than ErrMiss or is
//     ignored and gives the correct result; it never turns a present key
//     into a false miss. A Set that returned nil stored its value.
//   - BatchCache: GetMulti returns exactly the present keys with their
//     values; SetMulti then GetMulti round-trips; empty and nil inputs work
//     (GetMulti gives an empty map); SetMulti with a negative TTL fails with
//     cache.ErrInvalidTTL.
//   - SwapCache (skipped for a store that is not one): Add stores only into an absent key (else
//     cache.ErrNotStored); CompareAndSwap stores only over exactly the
//     expected bytes (else ErrNotStored, also for an absent key), honours its
//     TTL, and validates keys and TTLs like Set; 8 goroutines incrementing
//     one counter by CompareAndSwap lose no increment.
//   - A cache.Loader on the store: 2 Loaders (standing for 2 processes)
//     with 50 concurrent Gets of one missing key, whose load takes 100 ms,
//     load it exactly once, although both Loaders' first Gets are made to
//     miss together (so only an atomic Add keeps one of them out); a
//     Delete while a fill is loading voids its
//     lease, so what it loaded is returned but never stored; ErrNotFound is
//     cached for NegativeTTL.
//   - Loader.GetMany on the store: one load for 20 missing keys, whose
//     values and not-found answers a second Loader then reads from the
//     store without loading; 8 concurrent GetManys of overlapping keys
//     from 2 Loaders load each key once; a Delete during a GetMany's load
//     voids that key's fill.
//
// The kit's own tests run each clause against a cache.Memory broken in it
// and require the clause to fail.
//
// The kit takes a few seconds, most of it waiting for one expiry. Each
// subtest calls newCache for a fresh cache; newCache should register its
// cleanup (closing the store, deleting keys) with t.Cleanup. Stores sharing
// one server may share one keyspace: every subtest uses a random key
// prefix.
//
// Usage, in a store's tests:
//
//	func TestConformance(t *testing.T) {
//		cachetest.Run(t, func(t *testing.T) cache.ObjectCache {
//			c, err := mystore.New(client, mystore.Config{Prefix: "test:"})
//			require.NoError(t, err)
//			t.Cleanup(func() { c.Close() })
//			return c
//		})
//	}
package cachetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
)

// Run runs the conformance tests against the caches newCache returns, one
// fresh cache per subtest.
func Run(t *testing.T, newCache func(t *testing.T) cache.ObjectCache) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, c cache.ObjectCache, p string)
	}{
		{"GetMissing", testGetMissing},
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"TTL", testTTL},
		{"NegativeTTL", testNegativeTTL},
		{"InvalidKeys", testInvalidKeys},
		{"OddKeys", testOddKeys},
		{"LargeValues", testLargeValues},
		{"Copies", testCopies},
		{"Concurrent", testConcurrent},
		{"CanceledContext", testCanceledContext},
		{"Batch", testBatch},
		{"Swap", testSwap},
		{"SwapConcurrent", testSwapConcurrent},
		{"LoaderOneLoad", testLoaderOneLoad},
		{"LoaderDeleteVoidsFill", testLoaderDeleteVoidsFill},
		{"LoaderNotFound", testLoaderNotFound},
		{"LoaderGetMany", testLoaderGetMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t)
			require.NotNil(t, c, "newCache returned nil")
			tc.fn(t, c, prefix(t))
		})
	}
}

// prefix returns a random key prefix, so that stores sharing a server (and
// repeated runs) never see each other's keys.
func prefix(t *testing.T) string {
	var b [8]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return "cachetest:" + hex.EncodeToString(b[:]) + ":"
}

func requireMiss(t *testing.T, c cache.ObjectCache, key string, msgAndArgs ...any) {
	t.Helper()
	v, err := c.Get(t.Context(), key)
	require.ErrorIs(t, err, cache.ErrMiss, msgAndArgs...)
	require.Nil(t, v, msgAndArgs...)
}

func requireValue(t *testing.T, c cache.ObjectCache, key string, want []byte, msgAndArgs ...any) {
	t.Helper()
	got, err := c.Get(t.Context(), key)
	require.NoError(t, err, msgAndArgs...)
	require.Len(t, got, len(want), msgAndArgs...)
	require.True(t, bytes.Equal(want, got), msgAndArgs...)
}

func testGetMissing(t *testing.T, c cache.ObjectCache, p string) {
	requireMiss(t, c, p+"missing")
	// A deleted key is a miss too.
	require.NoError(t, c.Set(t.Context(), p+"k", []byte("v"), 0))
	require.NoError(t, c.Delete(t.Context(), p+"k"))
	requireMiss(t, c, p+"k")
}

func allBytes() []byte {
	b := make([]byte, 0, 512)
	for i := range 256 {
		b = append(b, byte(i))
	}
	for i := 255; i >= 0; i-- {
		b = append(b, byte(i))
	}
	return b
}

func testRoundTrip(t *testing.T, c cache.ObjectCache, p string) {
	ctx := t.Context()
	bin := allBytes()
	require.NoError(t, c.Set(ctx, p+"bin", bin, 0))
	requireValue(t, c, p+"bin", bin)

	require.NoError(t, c.Set(ctx, p+"empty", []byte{}, 0))
	requireValue(t, c, p+"empty", []byte{})
	require.NoError(t, c.Set(ctx, p+"nil", nil, 0))
	requireValue(t, c, p+"nil", []byte{}, "a nil value is stored as an empty value")

	require.NoError(t, c.Set(ctx, p+"text", []byte("hello, world"), time.Hour))
	requireValue(t, c, p+"text", []byte("hello, world"))
}

func testOverwrite(t *testing.T, c cache.ObjectCache, p string) {
	ctx := t.Context()
	k := p + "k"
	require.NoError(t, c.Set(ctx, k, []byte("first value"), 0))
	require.NoError(t, c.Set(ctx, k, []byte("second"), 0))
	requireValue(t, c, k, []byte("second"))
	long := bytes.Repeat([]byte("x"), 10000)
	require.NoError(t, c.Set(ctx, k, long, time.Hour))
	requireValue(t, c, k, long)
	require.NoError(t, c.Set(ctx, k, []byte{}, 0))
	requireValue(t, c, k, []byte{})
}

func testDelete(t *testing.T, c cache.ObjectCache, p string) {
	ctx := t.Context()
	for i := range 5 {
		require.NoError(t, c.Set(ctx, p+strconv.Itoa(i), []byte{byte(i)}, 0))
	}
	require.NoError(t, c.Delete(ctx, p+"0"))
	requireMiss(t, c, p+"0")
	requireValue(t, c, p+"1", []byte{1}, "Delete removed another key")

	require.NoError(t, c.Delete(ctx, p+"1", p+"2", p+"missing", p+"0"))
	requireMiss(t, c, p+"1")
	requireMiss(t, c, p+"2")
	requireValue(t, c, p+"3", []byte{3})

	require.NoError(t, c.Delete(ctx), "Delete with no keys")
	require.NoError(t, c.Delete(ctx, p+"never-set"), "Delete of a missing key")
	requireValue(t, c, p+"4", []byte{4})
}

func testTTL(t *testing.T, c cache.ObjectCache, p string) {
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, p+"short", []byte("v"), time.Second))
	require.NoError(t, c.Set(ctx, p+"forever", []byte("kept"), 0))
	require.NoError(t, c.Set(ctx, p+"hour", []byte("hour"), time.Hour))
	requireValue(t, c, p+"hour", []byte("hour"))

	deadline := time.Now().Add(3 * time.Second)
	for {
		v, err := c.Get(ctx, p+"short")
		if errors.Is(err, cache.ErrMiss) {
			require.Nil(t, v)
			break
		}
		require.NoError(t, err)
		require.Equal(t, []byte("v"), v)
		require.True(t, time.Now().Before(deadline), "a key with a TTL of 1s is still there after 3s")
		time.Sleep(50 * time.Millisecond)
	}
	requireValue(t, c, p+"forever", []byte("kept"), "TTL 0 must keep the key")
	requireValue(t, c, p+"hour", []byte("hour"))

	// An expired key can be set again.
	require.NoError(t, c.Set(ctx, p+"short", []byte("again"), 0))
	requireValue(t, c, p+"short", []byte("again"))
}

func testNegativeTTL(t *testing.T, c cache.ObjectCache, p string) {
	ctx := t.Context()
	require.ErrorIs(t, c.Set(ctx, p+"k", []byte("v"), -time.Second), cache.ErrInvalidTTL)
	requireMiss(t, c, p+"k", "nothing stored on ErrInvalidTTL")
	require.NoError(t, c.Set(ctx, p+"k", []byte("old"), 0))
	require.ErrorIs(t, c.Set(ctx, p+"k", []byte("new"), -1), cache.ErrInvalidTTL)
	requireValue(t, c, p+"k", []byte("old"), "a failed Set must not change the key")
}

func testInvalidKeys(t *testing.T, c cache.ObjectCache, p string) {
	ctx := t.Context()
	tooLong := p + strings.Repeat("k", cache.MaxKeyLength)
	for name, key := range map[string]string{"empty": "", "too long": tooLong} {
		_, err := c.Get(ctx, key)
		require.ErrorIs(t, err, cache.ErrInvalidKey, "Get, %s key", name)
		require.ErrorIs(t, c.Set(ctx, key, []byte("v"), 0), cache.ErrInvalidKey, "Set, %s key", name)
		require.ErrorIs(t, c.Delete(ctx, p+"fine", key), cache.ErrInvalidKey, "Delete, %s key", name)
		if bc, ok := c.(cache.BatchCache); ok {
			_, err := bc.GetMulti(ctx, []string{p + "fine", key})
			require.ErrorIs(t, err, cache.ErrInvalidKey, "GetMulti, %s key", name)
			err = bc.SetMulti(ctx, map[string][]byte{p + "fine": []byte("v"), key: []byte("v")}, 0)
			require.ErrorIs(t, err, cache.ErrInvalidKey, "SetMulti, %s key", name)
		}
	}
}

func oddKeys(p string) []string {
	long := p + strings.Repeat("k", 300-len(p))
	maxKey := p + strings.Repeat("m", cache.MaxKeyLength-len(p))
	return []string{
		p + "with space",
		p + "with  two spaces",
		p + " leading",
		p + "trailing ",
		p + "tab\tkey",
		p + "newline\nkey",
		p + "crlf\r\nkey",
		p + "nul\x00key",
		p + "del\x7fkey",
		p + "\x01\x02\x03",
		p + "{hash}tag",
		p + "}{",
		p + "%s%d",
		p + "ключ",
		p + "日本語のキー",
		p + "emoji 🙂",
		p + "invalid utf8 \xff\xfe",
		long,
		long[:len(long)-1] + "x",
		long + "k",
		p + "x" + long[len(p)+1:],
		maxKey,
		maxKey[:len(maxKey)-1] + "x",
		p + strings.Repeat("a", 250),
		p + strings.Repeat("a", 251),
	}
}

func testOddKeys(t *testing.T, c cache.ObjectCache, p string) {
	ctx := t.Context()
	keys := oddKeys(p)
	for i, k := range keys {
		require.NoError(t, c.Set(ctx, k, []byte("value "+strconv.Itoa(i)), 0), "key %d %q", i, trunc(k))
	}
	for i, k := range keys {
		requireValue(t, c, k, []byte("value "+strconv.Itoa(i)), "key %d %q", i, trunc(k))
	}
	require.NoError(t, c.Delete(ctx, keys[0], keys[len(keys)-1]))
	requireMiss(t, c, keys[0])
	requireMiss(t, c, keys[len(keys)-1])
	requireValue(t, c, keys[1], []byte("value 1"))
	if bc, ok := c.(cache.BatchCache); ok {
		got, err := bc.GetMulti(ctx, keys)
		require.NoError(t, err)
		require.Len(t, got, len(keys)-2)
		for i, k := range keys[1 : len(keys)-1] {
			require.Equal(t, []byte("value "+strconv.Itoa(i+1)), got[k], "GetMulti, key %q", trunc(k))
		}
	}
}

func trunc(k string) string {
	if len(k) > 80 {
		return k[:80] + "…(" + strconv.Itoa(len(k)) + " bytes)"
	}
	return k
}

func testLargeValues(t *testing.T, c cache.ObjectCache, p string) {
	ctx := t.Context()
	for _, size := range []int{512 << 10, 4 << 20} {
		v := make([]byte, size)
		for i := range v {
			v[i] = byte(i*7 + i>>11)
		}
		k := p + "large" + strconv.Itoa(size)
		err := c.Set(ctx, k, v, 0)
		if err != nil {
			require.ErrorIs(t, err, cache.ErrTooLarge, "Set of %d bytes", size)
			requireMiss(t, c, k, "nothing may be stored when Set of %d bytes fails", size)
			continue
		}
		requireValue(t, c, k, v, "value of %d bytes", size)
	}
}

func testCopies(t *testing.T, c cache.ObjectCache, p string) {
	ctx := t.Context()
	buf := []byte("original")
	require.NoError(t, c.Set(ctx, p+"k", buf, 0))
	copy(buf, "MUTATED!")
	requireValue(t, c, p+"k", []byte("original"), "mutating the buffer after Set changed the stored value")

	got, err := c.Get(ctx, p+"k")
	require.NoError(t, err)
	copy(got, "MUTATED!")
	requireValue(t, c, p+"k", []byte("original"), "mutating the slice Get returned changed the stored value")

	if bc, ok := c.(cache.BatchCache); ok {
		items := map[string][]byte{p + "b": []byte("batch")}
		require.NoError(t, bc.SetMulti(ctx, items, 0))
		copy(items[p+"b"], "XXXXX")
		m, err := bc.GetMulti(ctx, []string{p + "b"})
		require.NoError(t, err)
		require.Equal(t, []byte("batch"), m[p+"b"], "mutating the buffer after SetMulti changed the stored value")
		copy(m[p+"b"], "YYYYY")
		requireValue(t, c, p+"b", []byte("batch"), "mutating the slice GetMulti returned changed the stored value")
	}
}

func testConcurrent(t *testing.T, c cache.ObjectCache, p string) {
	ctx := t.Context()
	const goroutines, keys, rounds = 16, 20, 3
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for r := range rounds {
				for i := range keys {
					k := fmt.Sprintf("%sg%d:k%d", p, g, i)
					want := fmt.Appendf(nil, "g%d k%d r%d", g, i, r)
					if err := c.Set(ctx, k, want, time.Hour); err != nil {
						errs <- fmt.Errorf("set %s: %w", k, err)
						return
					}
					got, err := c.Get(ctx, k)
					if err != nil {
						errs <- fmt.Errorf("get %s: %w", k, err)
						return
					}
					if !bytes.Equal(got, want) {
						errs <- fmt.Errorf("get %s = %q, want %q", k, got, want)
						return
					}
				}
				if r == rounds-1 {
					if err := c.Delete(ctx, fmt.Sprintf("%sg%d:k0", p, g)); err != nil {
						errs <- fmt.Errorf("delete: %w", err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for g := range goroutines {
		requireMiss(t, c, fmt.Sprintf("%sg%d:k0", p, g))
		requireValue(t, c, fmt.Sprintf("%sg%d:k1", p, g), fmt.Appendf(nil, "g%d k1 r%d", g, rounds-1))
	}
}

func testCanceledContext(t *testing.T, c cache.ObjectCache, p string) {
	require.NoError(t, c.Set(t.Context(), p+"k", []byte("v"), 0))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	v, err := c.Get(ctx, p+"k")
	if err != nil {
		require.NotErrorIs(t, err, cache.ErrMiss, "a canceled Get of a present key must not be a miss")
	} else {
		require.Equal(t, []byte("v"), v)
	}

	if err := c.Set(ctx, p+"k2", []byte("v2"), 0); err == nil {
		requireValue(t, c, p+"k2", []byte("v2"), "Set with a canceled context returned nil but stored nothing")
	}

	if err := c.Delete(ctx, p+"k"); err == nil {
		requireMiss(t, c, p+"k", "Delete with a canceled context returned nil but did not delete")
	} else {
		requireValue(t, c, p+"k", []byte("v"), "a Delete that failed with a canceled context must not delete")
	}

	if bc, ok := c.(cache.BatchCache); ok {
		require.NoError(t, c.Set(t.Context(), p+"b", []byte("b"), 0))
		m, err := bc.GetMulti(ctx, []string{p + "b", p + "absent"})
		if err == nil {
			require.Equal(t, map[string][]byte{p + "b": []byte("b")}, m,
				"GetMulti with a canceled context returned no error but wrong results")
		} else {
			require.NotErrorIs(t, err, cache.ErrMiss)
		}
		if err := bc.SetMulti(ctx, map[string][]byte{p + "b2": []byte("b2")}, 0); err == nil {
			requireValue(t, c, p+"b2", []byte("b2"), "SetMulti with a canceled context returned nil but stored nothing")
		}
	}
}

func testBatch(t *testing.T, c cache.ObjectCache, p string) {
	bc, ok := c.(cache.BatchCache)
	if !ok {
		t.Skip("not a cache.BatchCache")
	}
	ctx := t.Context()

	m, err := bc.GetMulti(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, m)
	m, err = bc.GetMulti(ctx, []string{})
	require.NoError(t, err)
	require.Empty(t, m)
	require.NoError(t, bc.SetMulti(ctx, nil, 0))
	require.NoError(t, bc.SetMulti(ctx, map[string][]byte{}, time.Minute))

	m, err = bc.GetMulti(ctx, []string{p + "a", p + "b"})
	require.NoError(t, err)
	require.Empty(t, m, "GetMulti of missing keys")
	require.NotNil(t, m, "GetMulti returns an empty map, not nil")

	require.NoError(t, c.Set(ctx, p+"a", []byte("A"), 0))
	require.NoError(t, c.Set(ctx, p+"empty", []byte{}, 0))
	m, err = bc.GetMulti(ctx, []string{p + "a", p + "b", p + "empty", p + "c"})
	require.NoError(t, err)
	require.Len(t, m, 2, "GetMulti returns exactly the present keys")
	require.Equal(t, []byte("A"), m[p+"a"])
	e, ok := m[p+"empty"]
	require.True(t, ok, "an empty value is present")
	require.Empty(t, e)

	items := make(map[string][]byte)
	var keys []string
	for i := range 50 {
		k := p + "multi" + strconv.Itoa(i)
		keys = append(keys, k)
		items[k] = fmt.Appendf(nil, "value %d", i)
	}
	items[p+"bin"] = allBytes()
	keys = append(keys, p+"bin", p+"missing")
	require.NoError(t, bc.SetMulti(ctx, items, time.Hour))
	m, err = bc.GetMulti(ctx, keys)
	require.NoError(t, err)
	require.Equal(t, items, m)
	for k, v := range items {
		requireValue(t, c, k, v, "Get after SetMulti")
	}

	// SetMulti overwrites; a duplicate key in GetMulti is harmless.
	require.NoError(t, bc.SetMulti(ctx, map[string][]byte{p + "a": []byte("A2")}, 0))
	m, err = bc.GetMulti(ctx, []string{p + "a", p + "a"})
	require.NoError(t, err)
	require.Equal(t, map[string][]byte{p + "a": []byte("A2")}, m)

	err = bc.SetMulti(ctx, map[string][]byte{p + "neg": []byte("v")}, -time.Second)
	require.ErrorIs(t, err, cache.ErrInvalidTTL)
	requireMiss(t, c, p+"neg")
}
