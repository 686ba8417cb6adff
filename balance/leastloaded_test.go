package balance_test

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/balancetest"
)

func newLeastLoaded(t testing.TB, cfg balance.LeastLoadedConfig, set []balance.Backend) *balance.LeastLoaded {
	t.Helper()
	l := balance.NewLeastLoaded(cfg)
	require.NoError(t, l.Update(set))
	return l
}

// leastLoadedKinds are LeastLoaded's two ways of finding the least loaded
// backend, each of which must keep its semantics: the scan of small sets
// and the index of large ones, forced here on small sets too.
var leastLoadedKinds = []struct {
	name string
	new  func(balance.LeastLoadedConfig) *balance.LeastLoaded
}{
	{"scan", balance.NewLeastLoaded},
	{"index", balance.NewLeastLoadedIndexed},
}

// forEachLeastLoaded runs test on each kind of LeastLoaded, over n
// backends, and over 100 backends with the default construction (which
// indexes them).
func forEachLeastLoaded(t *testing.T, n int, test func(t *testing.T, l *balance.LeastLoaded, set []balance.Backend)) {
	for _, k := range leastLoadedKinds {
		t.Run(k.name, func(t *testing.T) {
			set := balancetest.Backends(n)
			l := k.new(balance.LeastLoadedConfig{})
			require.NoError(t, l.Update(set))
			test(t, l, set)
		})
	}
	t.Run("100", func(t *testing.T) {
		set := balancetest.Backends(100)
		test(t, newLeastLoaded(t, balance.LeastLoadedConfig{}, set), set)
	})
}

// TestLeastLoadedPicksIdle: with requests held on every backend but one,
// the next pick goes to the idle one.
func TestLeastLoadedPicksIdle(t *testing.T) {
	forEachLeastLoaded(t, 5, func(t *testing.T, l *balance.LeastLoaded, set []balance.Backend) {
		ctx := context.Background()
		held := map[string][]balance.Choice{}
		for range len(set) * 3 {
			c, err := l.Pick(ctx, "")
			require.NoError(t, err)
			held[c.Backend().Addr] = append(held[c.Backend().Addr], c)
		}
		for _, b := range set { // 3n picks over n idle backends: 3 each, exactly
			require.Len(t, held[b.Addr], 3, b.Addr)
		}
		victim := set[2].Addr
		for i := range held[victim] {
			held[victim][i].Done(nil)
		}
		for range 3 {
			c, err := l.Pick(ctx, "")
			require.NoError(t, err)
			require.Equal(t, victim, c.Backend().Addr)
		}
	})
}

// TestLeastLoadedTiesAreSpread: when every backend is idle (serial
// Pick+Done), all are tied, and the picks must spread over all of them
// instead of going to the first (haproxy#1099).
func TestLeastLoadedTiesAreSpread(t *testing.T) {
	forEachLeastLoaded(t, 10, func(t *testing.T, l *balance.LeastLoaded, set []balance.Backend) {
		count := map[string]int{}
		for range 1000 * len(set) {
			c, err := l.Pick(context.Background(), "")
			require.NoError(t, err)
			count[c.Backend().Addr]++
			c.Done(nil)
		}
		for _, b := range set { // ±200 is over 6 standard deviations
			require.InDelta(t, 1000, count[b.Addr], 200, "%v", count)
		}
	})
}

// TestLeastLoadedWeighted: with requests held, in-flight counts settle in
// proportion to the weights.
func TestLeastLoadedWeighted(t *testing.T) {
	set := []balance.Backend{{Addr: "a", Weight: 4}, {Addr: "b", Weight: 2}, {Addr: "c"}, {Addr: "d", Weight: 0}}
	for _, k := range leastLoadedKinds {
		l := k.new(balance.LeastLoadedConfig{})
		require.NoError(t, l.Update(set))
		count := map[string]int{}
		for range 800 {
			c, err := l.Pick(context.Background(), "")
			require.NoError(t, err)
			count[c.Backend().Addr]++
		}
		require.Equal(t, map[string]int{"a": 400, "b": 200, "c": 100, "d": 100}, count, k.name)
	}

	// 128 backends in three weights, indexed: after 128·k picks held,
	// every backend has exactly k·weight in flight, since a least-loaded
	// pick takes the loads in increasing order of in-flight/weight.
	var big []balance.Backend
	for i, w := range []int{4, 2, 1} {
		for j := range 32 + 32*(i/2) {
			big = append(big, balance.Backend{Addr: fmt.Sprintf("w%d-%d", w, j), Weight: w})
		}
	}
	l := newLeastLoaded(t, balance.LeastLoadedConfig{}, big)
	count := map[string]int{}
	const k = 5
	for range 32 * (4 + 2 + 2) * k {
		c, err := l.Pick(context.Background(), "")
		require.NoError(t, err)
		count[c.Backend().Addr]++
	}
	for _, b := range big {
		require.Equal(t, k*b.Weight, count[b.Addr], b.Addr)
	}
}

// TestLeastLoadedReportedLoad: the Load hook raises a backend's load to
// what it reports, and the local count still rises between reports.
func TestLeastLoadedReportedLoad(t *testing.T) {
	set := balancetest.Backends(3)
	var busy atomic.Int64 // the report of set[0]
	busy.Store(10)
	cfg := balance.LeastLoadedConfig{Load: func(addr string) float64 {
		if addr == set[0].Addr {
			return float64(busy.Load())
		}
		return 0
	}}
	l := newLeastLoaded(t, cfg, set)
	count := map[string]int{}
	for range 20 { // held: set[1] and set[2] rise to 10 each before set[0] gets any
		c, err := l.Pick(context.Background(), "")
		require.NoError(t, err)
		count[c.Backend().Addr]++
	}
	require.Equal(t, map[string]int{set[1].Addr: 10, set[2].Addr: 10}, count)
	busy.Store(0) // the report says idle; our own 0 in flight there is the load
	c, err := l.Pick(context.Background(), "")
	require.NoError(t, err)
	require.Equal(t, set[0].Addr, c.Backend().Addr)

	// A report that is NaN or negative counts as 0: the local counts decide.
	for _, bad := range []float64{math.NaN(), -5} {
		l = newLeastLoaded(t, balance.LeastLoadedConfig{Load: func(string) float64 { return bad }}, set)
		got := map[string]int{}
		for range 6 {
			c, err := l.Pick(context.Background(), "")
			require.NoError(t, err)
			got[c.Backend().Addr]++
		}
		require.Equal(t, map[string]int{set[0].Addr: 2, set[1].Addr: 2, set[2].Addr: 2}, got)
	}
}

func BenchmarkLeastLoaded(b *testing.B) {
	for _, n := range []int{10, 100} {
		l := newLeastLoaded(b, balance.LeastLoadedConfig{}, balancetest.Backends(n))
		ctx := context.Background()
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, _ := l.Pick(ctx, "")
				c.Done(nil)
			}
		})
	}
}

// BenchmarkLeastLoadedPickLoaded is a Pick and Done with one request in
// flight on every backend, so that no backend is idle and a scan could not
// stop early: the cost must not grow with the number of backends.
func BenchmarkLeastLoadedPickLoaded(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		set := balancetest.Backends(n)
		l := newLeastLoaded(b, balance.LeastLoadedConfig{}, set)
		ctx := context.Background()
		for _, be := range set {
			c, err := l.PickAddr(ctx, be.Addr)
			require.NoError(b, err)
			defer c.Done(nil)
		}
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, _ := l.Pick(ctx, "")
				c.Done(nil)
			}
		})
	}
}

func BenchmarkLeastLoadedParallel(b *testing.B) {
	l := newLeastLoaded(b, balance.LeastLoadedConfig{}, balancetest.Backends(10))
	b.Run("10", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				c, _ := l.Pick(ctx, "")
				c.Done(nil)
			}
		})
	})
}
