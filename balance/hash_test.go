package balance_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/balancetest"
	"github.com/scaleout/scaleout/shard"
)

func newHash(t testing.TB, cfg balance.ConsistentHashConfig, set []balance.Backend) *balance.ConsistentHash {
	t.Helper()
	h, err := balance.NewConsistentHash(cfg)
	require.NoError(t, err)
	require.NoError(t, h.Update(set))
	return h
}

func TestConsistentHashConfig(t *testing.T) {
	for name, cfg := range map[string]balance.ConsistentHashConfig{
		"factor below 1":      {LoadFactor: 0.9},
		"factor NaN":          {LoadFactor: math.NaN()},
		"factor inf":          {LoadFactor: math.Inf(1)},
		"negative partitions": {Partitions: -1},
		"huge partitions":     {Partitions: 1 << 23},
	} {
		_, err := balance.NewConsistentHash(cfg)
		require.ErrorIs(t, err, balance.ErrInvalidConfig, name)
	}
	h := newHash(t, balance.ConsistentHashConfig{LoadFactor: 1, Partitions: 4}, balancetest.Backends(4))
	err := h.Update(balancetest.Backends(5))
	require.ErrorIs(t, err, balance.ErrInvalidBackend, "more backends than partitions")
	c, err := h.Pick(context.Background(), "k")
	require.NoError(t, err, "the previous set stays")
	c.Done(nil)
}

// homes returns the backend each key goes to on an unloaded balancer.
func homes(t *testing.T, h *balance.ConsistentHash, keys int) map[string]string {
	m := make(map[string]string, keys)
	for i := range keys {
		k := "user:" + strconv.Itoa(i)
		c, err := h.Pick(context.Background(), k)
		require.NoError(t, err)
		m[k] = c.Backend().Addr
		c.Done(nil)
	}
	return m
}

func TestConsistentHashSticky(t *testing.T) {
	h := newHash(t, balance.ConsistentHashConfig{}, balancetest.Backends(10))
	first, err := h.Pick(context.Background(), "session-abc")
	require.NoError(t, err)
	first.Done(nil)
	for range 10000 {
		c, err := h.Pick(context.Background(), "session-abc")
		require.NoError(t, err)
		require.Equal(t, first.Backend().Addr, c.Backend().Addr)
		c.Done(nil)
	}
	// Hash tags: keys sharing a {tag} share a backend, as in package shard.
	a, _ := h.Pick(context.Background(), "{user42}:profile")
	a.Done(nil)
	b, _ := h.Pick(context.Background(), "{user42}:orders")
	b.Done(nil)
	require.Equal(t, a.Backend().Addr, b.Backend().Addr)
	// With a request in flight on the home and none elsewhere, the bound
	// ceil(1.25·2/10) = 1 is reached: the next request for the key goes
	// elsewhere, and the key returns home when the first is Done.
	held, _ := h.Pick(context.Background(), "session-abc")
	other, _ := h.Pick(context.Background(), "session-abc")
	require.NotEqual(t, held.Backend().Addr, other.Backend().Addr)
	held.Done(nil)
	other.Done(nil)
	again, _ := h.Pick(context.Background(), "session-abc")
	require.Equal(t, first.Backend().Addr, again.Backend().Addr)
}

func TestConsistentHashDistribution(t *testing.T) {
	set := balancetest.Backends(10)
	set[0].Weight = 2
	h := newHash(t, balance.ConsistentHashConfig{}, set)
	count := map[string]int{}
	for _, addr := range homes(t, h, 100000) {
		count[addr]++
	}
	// 11 units of weight: an even unit is 100000/11 ≈ 9091 keys.
	for _, b := range set[1:] {
		require.InDelta(t, 9091, count[b.Addr], 9091*0.25, "%v", count)
	}
	require.InDelta(t, 2*9091, count[set[0].Addr], 2*9091*0.25, "%v", count)
}

// TestConsistentHashEmptyKeySpreads: requests without a key have no home;
// they spread over all backends.
func TestConsistentHashEmptyKeySpreads(t *testing.T) {
	set := balancetest.Backends(5)
	h := newHash(t, balance.ConsistentHashConfig{}, set)
	count := map[string]int{}
	var held []balance.Choice
	for range 500 {
		c, err := h.Pick(context.Background(), "")
		require.NoError(t, err)
		count[c.Backend().Addr]++
		held = append(held, c)
	}
	for _, b := range set {
		require.InDelta(t, 100, count[b.Addr], 10, "%v", count)
	}
	for i := range held {
		held[i].Done(nil)
	}
}

// TestConsistentHashBoundSerial: requests are held (never Done), so
// in-flight only grows; after every pick, no backend is above the bound
// ceil(c·T/n) that the pick enforced. A hot key gets most of the traffic.
// boundSetSizes are below and above the count from which ConsistentHash
// keeps a running total of requests in flight instead of summing the
// backends' counts: the bounds must hold on both paths.
var boundSetSizes = []int{10, 100}

func TestConsistentHashBoundSerial(t *testing.T) {
	for _, n := range boundSetSizes {
		for _, c := range []float64{1, 1.25, 2} {
			t.Run(fmt.Sprintf("%d/%v", n, c), func(t *testing.T) { testBoundSerial(t, n, c) })
		}
	}
}

func testBoundSerial(t *testing.T, n int, c float64) {
	set := balancetest.Backends(n)
	h := newHash(t, balance.ConsistentHashConfig{LoadFactor: c}, set)
	load := map[string]int{}
	total := 0
	var home string
	for i := range 2000 {
		key := "hot"
		if i%4 == 0 {
			key = "k" + strconv.Itoa(i)
		}
		ch, err := h.Pick(context.Background(), key)
		require.NoError(t, err)
		if i == 0 {
			home = ch.Backend().Addr
		}
		load[ch.Backend().Addr]++
		total++
		bound := int(math.Ceil(c * float64(total) / float64(len(set))))
		for addr, l := range load {
			require.LessOrEqual(t, l, bound, "pick %d: %s over the bound: %v", i, addr, load)
		}
	}
	// The hot key's home is kept full: it is at the bound.
	require.GreaterOrEqual(t, load[home], int(math.Ceil(c*float64(total)/float64(len(set))))-1)
}

// TestConsistentHashBoundConcurrent: with goroutines picking and finishing
// concurrently, no backend goes above the bound by more than the number of
// racing pickers (each can read the counts before the others' picks land).
func TestConsistentHashBoundConcurrent(t *testing.T) {
	for _, n := range boundSetSizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) { testBoundConcurrent(t, n) })
	}
}

func testBoundConcurrent(t *testing.T, n int) {
	const workers, hold = 8, 16
	set := balancetest.Backends(n)
	h := newHash(t, balance.ConsistentHashConfig{}, set)
	var mu sync.Mutex
	load := map[string]int{}
	total := 0
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			var held []balance.Choice
			for i := range 3000 {
				key := "hot"
				if i%3 == 0 {
					key = fmt.Sprintf("%d-%d", g, i)
				}
				c, err := h.Pick(context.Background(), key)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				load[c.Backend().Addr]++
				total++
				bound := int(math.Ceil(1.25*float64(total)/float64(len(set)))) + workers
				if l := load[c.Backend().Addr]; l > bound {
					t.Errorf("%s has %d in flight, bound %d", c.Backend().Addr, l, bound)
				}
				mu.Unlock()
				held = append(held, c)
				if len(held) == hold {
					for j := range held {
						mu.Lock()
						load[held[j].Backend().Addr]--
						total--
						mu.Unlock()
						held[j].Done(nil)
					}
					held = held[:0]
				}
			}
		})
	}
	wg.Wait()
}

// TestConsistentHashMinimalDisruption: removing a backend moves only its
// keys; adding one moves about 1/n of the keys, all to the new backend.
func TestConsistentHashMinimalDisruption(t *testing.T) {
	const keys = 20000
	set := balancetest.Backends(11)
	h := newHash(t, balance.ConsistentHashConfig{}, set[:10])
	before := homes(t, h, keys)

	removed := set[4].Addr
	require.NoError(t, h.Update(append(append([]balance.Backend(nil), set[:4]...), set[5:10]...)))
	after := homes(t, h, keys)
	moved := 0
	for k, addr := range before {
		if addr != removed && after[k] != addr {
			moved++
		}
	}
	t.Logf("removal: %d of %d keys of surviving backends moved", moved, keys)
	require.LessOrEqual(t, float64(moved)/keys, 0.01)

	require.NoError(t, h.Update(set[:10]))
	require.Equal(t, before, homes(t, h, keys), "the same set gives the same homes")

	require.NoError(t, h.Update(set))
	grown := homes(t, h, keys)
	moved, toNew := 0, 0
	for k, addr := range before {
		if grown[k] != addr {
			moved++
			if grown[k] == set[10].Addr {
				toNew++
			}
		}
	}
	t.Logf("addition: %.2f%% of keys moved (ideal %.2f%%), %d to the new backend", 100*float64(moved)/keys, 100.0/11, toNew)
	require.InDelta(t, 1.0/11, float64(moved)/keys, 0.03)
	require.GreaterOrEqual(t, float64(toNew)/float64(moved), 0.95)
}

func BenchmarkConsistentHash(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%018d", i)
	}
	for _, n := range []int{10, 100} {
		h := newHash(b, balance.ConsistentHashConfig{}, balancetest.Backends(n))
		ctx := context.Background()
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c, _ := h.Pick(ctx, keys[i&1023])
				c.Done(nil)
				i++
			}
		})
	}
}

func BenchmarkConsistentHashParallel(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%018d", i)
	}
	h := newHash(b, balance.ConsistentHashConfig{}, balancetest.Backends(10))
	b.Run("10", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			i := 0
			for pb.Next() {
				c, _ := h.Pick(ctx, keys[i&1023])
				c.Done(nil)
				i++
			}
		})
	})
}

// BenchmarkConsistentHashLoaded is a pick and Done with a request in flight
// on every backend, so that the home is never idle and the bound is
// computed: the cost must not grow with the number of backends.
func BenchmarkConsistentHashLoaded(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%018d", i)
	}
	for _, n := range []int{10, 100, 1000, 10000} {
		// At 10,000 backends, more partitions than backends.
		h, err := balance.NewConsistentHash(balance.ConsistentHashConfig{Partitions: max(shard.DefaultPartitions, 16384*(n/10000))})
		require.NoError(b, err)
		if err := h.Update(balancetest.Backends(n)); errors.Is(err, shard.ErrInvalidConfig) {
			b.Logf("n=%d: %v", n, err)
			continue // shard.NewBounded's limit, not this package's
		} else {
			require.NoError(b, err)
		}
		ctx := context.Background()
		for _, be := range balancetest.Backends(n) {
			c, err := h.PickAddr(ctx, be.Addr)
			require.NoError(b, err)
			defer c.Done(nil)
		}
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c, _ := h.Pick(ctx, keys[i&1023])
				c.Done(nil)
				i++
			}
		})
	}
}

// TestConsistentHashTenThousandBackends: ConsistentHash puts no cap of its
// own on the set; 10,000 backends (with Partitions above that) are
// accepted as far as shard.NewBounded accepts them, and then every pick
// lands on a backend of the set.
func TestConsistentHashTenThousandBackends(t *testing.T) {
	h, err := balance.NewConsistentHash(balance.ConsistentHashConfig{Partitions: 16384})
	require.NoError(t, err)
	set := balancetest.Backends(10000)
	err = h.Update(set)
	if errors.Is(err, shard.ErrInvalidConfig) {
		t.Skipf("shard.NewBounded refuses 10,000 members: %v", err)
	}
	require.NoError(t, err)
	in := map[string]bool{}
	for _, b := range set {
		in[b.Addr] = true
	}
	for i := range 1000 {
		c, err := h.Pick(context.Background(), fmt.Sprintf("user:%d", i))
		require.NoError(t, err)
		require.True(t, in[c.Backend().Addr])
		c.Done(nil)
	}
	// Still no more backends than partitions.
	small, err := balance.NewConsistentHash(balance.ConsistentHashConfig{Partitions: 100})
	require.NoError(t, err)
	require.ErrorIs(t, small.Update(balancetest.Backends(101)), balance.ErrInvalidBackend)
}
