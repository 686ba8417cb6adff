package cache_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/cachetest"
)

func newMemory(t testing.TB, cfg cache.MemoryConfig) *cache.Memory {
	t.Helper()
	c, err := cache.NewMemory(cfg)
	require.NoError(t, err)
	return c
}

func TestMemoryConformance(t *testing.T) {
	for name, cfg := range map[string]cache.MemoryConfig{
		"default":   {},
		"one shard": {Shards: 1, MaxEntries: 10_000, MaxBytes: 8 << 20},
		"entries":   {MaxEntries: 5000, Shards: 4},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cachetest.Run(t, func(t *testing.T) cache.ObjectCache { return newMemory(t, cfg) })
		})
	}
}

func TestMemoryConfig(t *testing.T) {
	for _, cfg := range []cache.MemoryConfig{
		{MaxEntries: -1}, {MaxBytes: -1}, {Shards: -1}, {Shards: 1 << 20},
	} {
		_, err := cache.NewMemory(cfg)
		require.ErrorIs(t, err, cache.ErrInvalidConfig, "%+v", cfg)
	}
	for _, cfg := range []cache.MemoryConfig{
		{}, {MaxEntries: 1}, {MaxBytes: 1}, {Shards: 3}, {MaxEntries: 10, MaxBytes: 1 << 20, Shards: 64},
	} {
		c, err := cache.NewMemory(cfg)
		require.NoError(t, err, "%+v", cfg)
		require.NoError(t, c.Set(t.Context(), "k", nil, 0))
	}
}

func TestMemoryDefaultsBounded(t *testing.T) {
	c := newMemory(t, cache.MemoryConfig{})
	ctx := t.Context()
	for i := range cache.DefaultMemoryMaxEntries + 20_000 {
		require.NoError(t, c.Set(ctx, strconv.Itoa(i), nil, 0))
	}
	st := c.Stats()
	// Per-shard rounding may add up to one entry per shard.
	require.LessOrEqual(t, st.Entries, cache.DefaultMemoryMaxEntries+64)
	require.Greater(t, st.Entries, cache.DefaultMemoryMaxEntries*9/10)
	require.Equal(t, uint64(cache.DefaultMemoryMaxEntries+20_000-st.Entries), st.Evictions)
}

func TestMemoryLRUOrder(t *testing.T) {
	ctx := t.Context()
	c := newMemory(t, cache.MemoryConfig{Shards: 1, MaxEntries: 3, Policy: cache.PolicyLRU})
	for _, k := range []string{"a", "b", "c"} {
		require.NoError(t, c.Set(ctx, k, []byte(k), 0))
	}
	_, err := c.Get(ctx, "a") // a is now the most recent; b the least
	require.NoError(t, err)
	require.NoError(t, c.Set(ctx, "d", []byte("d"), 0))
	_, err = c.Get(ctx, "b")
	require.ErrorIs(t, err, cache.ErrMiss, "b was least recently used")
	for _, k := range []string{"a", "c", "d"} {
		_, err := c.Get(ctx, k)
		require.NoError(t, err, k)
	}
	// Order now (cold→hot): a c d. Overwriting a promotes it.
	require.NoError(t, c.Set(ctx, "a", []byte("A"), 0))
	require.NoError(t, c.Set(ctx, "e", []byte("e"), 0))
	_, err = c.Get(ctx, "c")
	require.ErrorIs(t, err, cache.ErrMiss)
	v, err := c.Get(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, []byte("A"), v)

	st := c.Stats()
	require.Equal(t, uint64(2), st.Evictions)
	require.Equal(t, 3, st.Entries)
	require.Equal(t, uint64(2), st.Misses)
	require.Equal(t, uint64(5), st.Hits)

	// Deleted nodes are reused and the list stays consistent.
	require.NoError(t, c.Delete(ctx, "a", "d", "e"))
	require.Zero(t, c.Stats().Entries)
	require.Zero(t, c.Stats().Bytes)
	for i := range 10 {
		require.NoError(t, c.Set(ctx, strconv.Itoa(i), nil, 0))
	}
	for i := range 10 {
		_, err := c.Get(ctx, strconv.Itoa(i))
		if i < 7 {
			require.ErrorIs(t, err, cache.ErrMiss, i)
		} else {
			require.NoError(t, err, i)
		}
	}
}

func TestMemoryByteBound(t *testing.T) {
	ctx := t.Context()
	c := newMemory(t, cache.MemoryConfig{Shards: 1, MaxBytes: 100, Policy: cache.PolicyLRU})
	val := make([]byte, 29) // 1-byte key + 29 = 30 bytes an entry
	for _, k := range []string{"a", "b", "c"} {
		require.NoError(t, c.Set(ctx, k, val, 0))
	}
	require.Equal(t, int64(90), c.Stats().Bytes)
	require.NoError(t, c.Set(ctx, "d", val, 0)) // 120 > 100: a goes
	_, err := c.Get(ctx, "a")
	require.ErrorIs(t, err, cache.ErrMiss)
	require.Equal(t, int64(90), c.Stats().Bytes)

	// Growing a value evicts colder entries, never the one just set.
	require.NoError(t, c.Set(ctx, "d", make([]byte, 99), 0))
	require.Equal(t, int64(100), c.Stats().Bytes)
	require.Equal(t, 1, c.Stats().Entries)
	_, err = c.Get(ctx, "d")
	require.NoError(t, err)

	// Over the shard budget: ErrTooLarge, and the old value is gone too.
	require.ErrorIs(t, c.Set(ctx, "d", make([]byte, 100), 0), cache.ErrTooLarge)
	_, err = c.Get(ctx, "d")
	require.ErrorIs(t, err, cache.ErrMiss)
	require.Zero(t, c.Stats().Bytes)

	// Keys count towards the bound.
	require.ErrorIs(t, c.Set(ctx, string(make([]byte, 101)), nil, 0), cache.ErrTooLarge)
	err = c.SetMulti(ctx, map[string][]byte{"x": nil, "y": make([]byte, 100)}, 0)
	require.ErrorIs(t, err, cache.ErrTooLarge)
	_, err = c.Get(ctx, "x")
	require.ErrorIs(t, err, cache.ErrMiss, "SetMulti stores nothing on ErrTooLarge")

	// The bound is split over shards.
	c4 := newMemory(t, cache.MemoryConfig{Shards: 4, MaxBytes: 400})
	require.NoError(t, c4.Set(ctx, "k", make([]byte, 99), 0))
	require.ErrorIs(t, c4.Set(ctx, "k", make([]byte, 100), 0), cache.ErrTooLarge)
}

// TestMemoryTinyLFUByteBound is TestMemoryByteBound under the default
// policy: the bound holds, the entry just set survives, and a growing
// value evicts others.
func TestMemoryTinyLFUByteBound(t *testing.T) {
	ctx := t.Context()
	c := newMemory(t, cache.MemoryConfig{Shards: 1, MaxBytes: 100})
	val := make([]byte, 29) // 1-byte key + 29 = 30 bytes an entry
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		require.NoError(t, c.Set(ctx, k, val, 0))
		require.LessOrEqual(t, c.Stats().Bytes, int64(100))
		v, err := c.Get(ctx, k)
		require.NoError(t, err, "the entry just set survives")
		require.Equal(t, val, v)
	}
	st := c.Stats()
	require.Equal(t, 3, st.Entries)
	require.Equal(t, int64(90), st.Bytes)
	require.Equal(t, uint64(2), st.Evictions)

	require.NoError(t, c.Set(ctx, "e", make([]byte, 99), 0))
	st = c.Stats()
	require.Equal(t, 1, st.Entries)
	require.Equal(t, int64(100), st.Bytes)
	require.Equal(t, uint64(4), st.Evictions)
	_, err := c.Get(ctx, "e")
	require.NoError(t, err)
	require.ErrorIs(t, c.Set(ctx, "e", make([]byte, 100), 0), cache.ErrTooLarge)
	_, err = c.Get(ctx, "e")
	require.ErrorIs(t, err, cache.ErrMiss)
	require.Zero(t, c.Stats().Bytes)
	require.Zero(t, c.Stats().Entries)
}

// TestMemoryTinyLFUOrder checks what W-TinyLFU guarantees over LRU: keys
// read often survive a scan of keys read once (the hot keys are read now
// and then during the scan, as hot keys are), which flushes an LRU; the
// entry just set is always there; and a key read often enough displaces
// rarer ones.
func TestMemoryTinyLFUOrder(t *testing.T) {
	ctx := t.Context()
	hot := []string{"h0", "h1", "h2", "h3", "h4"}
	var hotMisses int
	scan := func(c *cache.Memory) {
		hotMisses = 0
		for i := range 1000 {
			if i%20 == 0 {
				for _, k := range hot {
					if _, err := c.Get(ctx, k); err != nil {
						hotMisses++
					}
				}
			}
			k := "scan" + strconv.Itoa(i)
			require.NoError(t, c.Set(ctx, k, []byte(k), 0))
			v, err := c.Get(ctx, k)
			require.NoError(t, err, "the entry just set survives")
			require.Equal(t, []byte(k), v)
			require.LessOrEqual(t, c.Stats().Entries, 10)
		}
	}
	warm := func(c *cache.Memory) {
		for _, k := range hot {
			require.NoError(t, c.Set(ctx, k, []byte(k), 0))
		}
		for range 5 {
			for _, k := range hot {
				_, err := c.Get(ctx, k)
				require.NoError(t, err, k)
			}
		}
	}

	c := newMemory(t, cache.MemoryConfig{Shards: 1, MaxEntries: 10})
	warm(c)
	scan(c)
	require.Zero(t, hotMisses, "the hot keys stay during the scan")
	for _, k := range hot {
		v, err := c.Get(ctx, k)
		require.NoError(t, err, "%s survives the scan", k)
		require.Equal(t, []byte(k), v)
	}
	st := c.Stats()
	require.Equal(t, 10, st.Entries)
	require.Equal(t, uint64(1005-10), st.Evictions)

	lru := newMemory(t, cache.MemoryConfig{Shards: 1, MaxEntries: 10, Policy: cache.PolicyLRU})
	warm(lru)
	scan(lru)
	require.Equal(t, 49*len(hot), hotMisses, "LRU: the scan flushes the hot keys between reads")
	for _, k := range hot {
		_, err := lru.Get(ctx, k)
		require.ErrorIs(t, err, cache.ErrMiss, "LRU: %s was flushed by the scan", k)
	}

	// A new key read more often than the coldest old ones is admitted
	// into the main area and stays, while the scan keys come and go.
	require.NoError(t, c.Set(ctx, "new", []byte("n"), 0))
	for range 3 {
		_, err := c.Get(ctx, "new")
		require.NoError(t, err)
	}
	hot = append(hot, "new")
	scan(c)
	require.Zero(t, hotMisses)
	for _, k := range append(hot, "new") {
		_, err := c.Get(ctx, k)
		require.NoError(t, err, "%s survives the second scan", k)
	}
}

func TestMemoryAdd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newMemory(t, cache.MemoryConfig{Shards: 1, MaxBytes: 100})
		val := []byte("v1")
		require.NoError(t, c.Add(ctx, "k", val, time.Minute))
		val[0] = 'X' // Add stored a copy
		require.ErrorIs(t, c.Add(ctx, "k", []byte("v2"), 0), cache.ErrNotStored)
		requireGet(t, c, "k", "v1")

		require.ErrorIs(t, c.Add(ctx, "", nil, 0), cache.ErrInvalidKey)
		require.ErrorIs(t, c.Add(ctx, "x", nil, -1), cache.ErrInvalidTTL)
		require.ErrorIs(t, c.Add(ctx, "k", make([]byte, 100), 0), cache.ErrTooLarge)
		requireGet(t, c, "k", "v1") // ErrTooLarge keeps an existing value
		require.ErrorIs(t, c.Add(ctx, "big", make([]byte, 100), 0), cache.ErrTooLarge)

		// An expired value is no value: Add replaces it.
		time.Sleep(time.Minute)
		require.NoError(t, c.Add(ctx, "k", []byte("v3"), 0))
		requireGet(t, c, "k", "v3")
		st := c.Stats()
		require.Equal(t, uint64(1), st.Expirations)
		require.Equal(t, 1, st.Entries)
		require.Equal(t, int64(3), st.Bytes)

		// A deleted key can be added again.
		require.NoError(t, c.Delete(ctx, "k"))
		require.NoError(t, c.Add(ctx, "k", nil, 0))
		requireGet(t, c, "k", "")
	})
}

func TestMemoryCompareAndSwap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newMemory(t, cache.MemoryConfig{Shards: 1, MaxBytes: 100})
		require.ErrorIs(t, c.CompareAndSwap(ctx, "k", nil, []byte("v"), 0), cache.ErrNotStored, "absent")
		_, err := c.Get(ctx, "k")
		require.ErrorIs(t, err, cache.ErrMiss)

		require.NoError(t, c.Set(ctx, "k", []byte("v1"), 0))
		require.ErrorIs(t, c.CompareAndSwap(ctx, "k", []byte("v0"), []byte("v2"), 0), cache.ErrNotStored)
		require.ErrorIs(t, c.CompareAndSwap(ctx, "k", nil, []byte("v2"), 0), cache.ErrNotStored)
		requireGet(t, c, "k", "v1")
		val := []byte("v2")
		require.NoError(t, c.CompareAndSwap(ctx, "k", []byte("v1"), val, time.Minute))
		val[0] = 'X' // CompareAndSwap stored a copy
		requireGet(t, c, "k", "v2")
		require.Equal(t, int64(3), c.Stats().Bytes)

		require.ErrorIs(t, c.CompareAndSwap(ctx, "", nil, nil, 0), cache.ErrInvalidKey)
		require.ErrorIs(t, c.CompareAndSwap(ctx, "k", []byte("v2"), nil, -1), cache.ErrInvalidTTL)
		require.ErrorIs(t, c.CompareAndSwap(ctx, "k", []byte("v2"), make([]byte, 100), 0), cache.ErrTooLarge)
		requireGet(t, c, "k", "v2") // ErrTooLarge keeps the old value

		// The swap set the TTL: once expired, nothing compares equal.
		time.Sleep(time.Minute)
		require.ErrorIs(t, c.CompareAndSwap(ctx, "k", []byte("v2"), []byte("v3"), 0), cache.ErrNotStored)
		_, err = c.Get(ctx, "k")
		require.ErrorIs(t, err, cache.ErrMiss)
		require.Equal(t, uint64(1), c.Stats().Expirations)

		// nil and empty values are equal (bytes.Equal).
		require.NoError(t, c.Set(ctx, "e", []byte{}, 0))
		require.NoError(t, c.CompareAndSwap(ctx, "e", nil, []byte("full"), 0))
		requireGet(t, c, "e", "full")
		require.NoError(t, c.CompareAndSwap(ctx, "e", []byte("full"), nil, 0))
		requireGet(t, c, "e", "")
	})
}

func TestMemoryClear(t *testing.T) {
	ctx := t.Context()
	c := newMemory(t, cache.MemoryConfig{MaxEntries: 1000})
	for i := range 2000 {
		require.NoError(t, c.Set(ctx, strconv.Itoa(i), []byte("v"), 0))
	}
	_, _ = c.Get(ctx, "1999")
	_, _ = c.Get(ctx, "absent")
	before := c.Stats()
	require.Positive(t, before.Evictions)
	c.Clear()
	st := c.Stats()
	require.Zero(t, st.Entries)
	require.Zero(t, st.Bytes)
	require.Equal(t, before.Hits, st.Hits)
	require.Equal(t, before.Misses, st.Misses)
	require.Equal(t, before.Evictions, st.Evictions, "cleared entries are not evictions")
	for i := range 2000 {
		_, err := c.Get(ctx, strconv.Itoa(i))
		require.ErrorIs(t, err, cache.ErrMiss)
	}
	// Still bounded and usable.
	for i := range 3000 {
		require.NoError(t, c.Set(ctx, strconv.Itoa(i), []byte("v"), 0))
	}
	require.LessOrEqual(t, c.Stats().Entries, 1000+16)
	requireGet(t, c, "2999", "v")
	require.NoError(t, c.Add(ctx, "new", []byte("n"), 0))
	requireGet(t, c, "new", "n")
}

// TestMemoryStatsConcurrent checks that hits and misses counted from many
// goroutines add up.
func TestMemoryStatsConcurrent(t *testing.T) {
	ctx := t.Context()
	c := newMemory(t, cache.MemoryConfig{MaxEntries: 1000})
	for i := range 100 {
		require.NoError(t, c.Set(ctx, "k"+strconv.Itoa(i), nil, 0))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				_, _ = c.Get(ctx, "k"+strconv.Itoa((i*7+g)%200)) // half are absent
			}
		})
	}
	wg.Wait()
	st := c.Stats()
	require.Equal(t, uint64(2000), st.Hits)
	require.Equal(t, uint64(2000), st.Misses)
}

func requireGet(t *testing.T, c *cache.Memory, key, want string) {
	t.Helper()
	v, err := c.Get(context.Background(), key)
	require.NoError(t, err, key)
	require.Equal(t, want, string(v), key)
}

func TestMemoryTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newMemory(t, cache.MemoryConfig{Shards: 1})
		require.NoError(t, c.Set(ctx, "minute", []byte("m"), time.Minute))
		require.NoError(t, c.Set(ctx, "forever", []byte("f"), 0))
		require.NoError(t, c.Set(ctx, "huge", []byte("h"), math.MaxInt64))

		time.Sleep(time.Minute - time.Nanosecond)
		v, err := c.Get(ctx, "minute")
		require.NoError(t, err)
		require.Equal(t, []byte("m"), v)

		time.Sleep(time.Nanosecond)
		_, err = c.Get(ctx, "minute")
		require.ErrorIs(t, err, cache.ErrMiss)
		require.Equal(t, uint64(1), c.Stats().Expirations)
		require.Equal(t, 2, c.Stats().Entries, "the expired entry was removed")

		time.Sleep(10_000 * time.Hour)
		for _, k := range []string{"forever", "huge"} {
			_, err = c.Get(ctx, k)
			require.NoError(t, err, k)
		}

		// Overwriting resets the TTL, in both directions.
		require.NoError(t, c.Set(ctx, "k", []byte("1"), time.Second))
		require.NoError(t, c.Set(ctx, "k", []byte("2"), 0))
		time.Sleep(time.Hour)
		_, err = c.Get(ctx, "k")
		require.NoError(t, err)
		require.NoError(t, c.Set(ctx, "k", []byte("3"), time.Second))
		time.Sleep(time.Second)
		_, err = c.Get(ctx, "k")
		require.ErrorIs(t, err, cache.ErrMiss)

		// Set reclaims expired entries at the cold end without a Get.
		require.NoError(t, c.Delete(ctx, "forever", "huge"))
		require.NoError(t, c.SetMulti(ctx, map[string][]byte{"x": nil, "y": nil}, time.Second))
		time.Sleep(2 * time.Second)
		require.NoError(t, c.Set(ctx, "z", nil, 0))
		st := c.Stats()
		require.Equal(t, 1, st.Entries)
		require.Equal(t, uint64(4), st.Expirations)
		require.Zero(t, st.Evictions)
	})
}

func TestMemoryGetAllocs(t *testing.T) {
	if cache.StoreRaceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	c := newMemory(t, cache.MemoryConfig{})
	ctx := t.Context()
	require.NoError(t, c.Set(ctx, "key", make([]byte, 1024), 0))
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := c.Get(ctx, "key"); err != nil {
			t.Fatal(err)
		}
	})
	require.Equal(t, 1.0, allocs, "one allocation per Get: the copy")
	allocs = testing.AllocsPerRun(1000, func() { _, _ = c.Get(ctx, "absent") })
	require.Zero(t, allocs)
}

// TestMemoryConcurrentEviction hammers a small cache with overlapping keys
// so that sets, gets, deletes and evictions race on the same shards.
func TestMemoryConcurrentEviction(t *testing.T) {
	ctx := t.Context()
	c := newMemory(t, cache.MemoryConfig{Shards: 2, MaxEntries: 50, MaxBytes: 4000})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 5000 {
				k := "k" + strconv.Itoa(r.IntN(200))
				switch r.IntN(12) {
				case 0:
					_ = c.Delete(ctx, k)
				case 10:
					v := []byte(k + ":add")
					if err := c.Add(ctx, k, v, 0); err != nil && !errors.Is(err, cache.ErrNotStored) {
						t.Error(err)
						return
					}
				case 11:
					old, err := c.Get(ctx, k)
					if err != nil {
						break
					}
					v := []byte(k + ":cas")
					if err := c.CompareAndSwap(ctx, k, old, v, 0); err != nil && !errors.Is(err, cache.ErrNotStored) {
						t.Error(err)
						return
					}
				case 1, 2, 3:
					v := []byte(k + ":" + strconv.Itoa(r.IntN(20)))
					if err := c.Set(ctx, k, v, time.Duration(r.IntN(2))*time.Hour); err != nil {
						t.Error(err)
						return
					}
				case 4:
					if _, err := c.GetMulti(ctx, []string{k, "k1", "k2"}); err != nil {
						t.Error(err)
						return
					}
				default:
					v, err := c.Get(ctx, k)
					if err == nil && string(v[:len(k)+1]) != k+":" {
						t.Errorf("Get %s = %q", k, v)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	st := c.Stats()
	require.LessOrEqual(t, st.Entries, 50)
	require.LessOrEqual(t, st.Bytes, int64(4000))
	require.Positive(t, st.Evictions)
	m, err := c.GetMulti(ctx, keysN(200))
	require.NoError(t, err)
	require.Len(t, m, c.Stats().Entries)
	var bytes int64
	for k, v := range m {
		bytes += int64(len(k) + len(v))
	}
	require.Equal(t, c.Stats().Bytes, bytes)
}

func keysN(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	return keys
}

func ExampleNewMemory() {
	ctx := context.Background()
	c, err := cache.NewMemory(cache.MemoryConfig{MaxEntries: 10_000, MaxBytes: 64 << 20})
	if err != nil {
		panic(err)
	}
	_ = c.Set(ctx, "greeting", []byte("hello"), time.Minute)
	v, err := c.Get(ctx, "greeting")
	fmt.Println(string(v), err)
	_, err = c.Get(ctx, "absent")
	fmt.Println(err)
	fmt.Printf("%+v\n", c.Stats())
	// Output:
	// hello <nil>
	// cache: miss
	// {Hits:1 Misses:1 Evictions:0 Expirations:0 Entries:1 Bytes:13}
}

const benchKeys = 10_000

var benchSizes = []int{64, 1024}

func benchCache(b *testing.B, size int) (*cache.Memory, []string) {
	c := newMemory(b, cache.MemoryConfig{MaxEntries: 2 * benchKeys})
	keys := make([]string, benchKeys)
	val := make([]byte, size)
	for i := range keys {
		keys[i] = "bench:key:" + strconv.Itoa(i)
		require.NoError(b, c.Set(context.Background(), keys[i], val, 0))
	}
	return c, keys
}

// BenchmarkMemoryGet is a hit, serially, over 10,000 keys.
func BenchmarkMemoryGet(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			c, keys := benchCache(b, size)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := c.Get(ctx, keys[i%benchKeys]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkMemoryGetParallel is a hit from GOMAXPROCS goroutines. The
// parallel rate over the serial one is BenchmarkMemoryGet's ns/op at -cpu 1
// divided by this one's at -cpu 2.
func BenchmarkMemoryGetParallel(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			c, keys := benchCache(b, size)
			ctx := context.Background()
			b.ReportAllocs()
			var mu sync.Mutex
			n := 0
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				i := n * 7919
				n++
				mu.Unlock()
				for pb.Next() {
					if _, err := c.Get(ctx, keys[i%benchKeys]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

// BenchmarkMemorySet overwrites 1 KiB values of existing keys, and sets new
// keys that evict old ones.
func BenchmarkMemorySet(b *testing.B) {
	val := make([]byte, 1024)
	ctx := context.Background()
	b.Run("overwrite", func(b *testing.B) {
		c, keys := benchCache(b, len(val))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := c.Set(ctx, keys[i%benchKeys], val, time.Hour); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("evict", func(b *testing.B) {
		c := newMemory(b, cache.MemoryConfig{MaxEntries: benchKeys})
		keys := make([]string, 4*benchKeys)
		for i := range keys {
			keys[i] = "bench:key:" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := c.Set(ctx, keys[i%len(keys)], val, 0); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkMemoryGetZipf is a hit of a 64-byte value with keys drawn from
// Zipf(s=1.01) over 10,000 keys, serially and from GOMAXPROCS goroutines:
// the skewed access of real caches, where hot entries stay near the hot
// end and are not relinked on every hit.
func BenchmarkMemoryGetZipf(b *testing.B) {
	c, keys := benchCache(b, 64)
	ctx := context.Background()
	trace := make([]int, 1<<16)
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.01, 1, benchKeys-1)
	for i := range trace {
		trace[i] = int(z.Uint64())
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := c.Get(ctx, keys[trace[i&(len(trace)-1)]]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		var mu sync.Mutex
		n := 0
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			i := n * 7919
			n++
			mu.Unlock()
			for pb.Next() {
				if _, err := c.Get(ctx, keys[trace[i&(len(trace)-1)]]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
