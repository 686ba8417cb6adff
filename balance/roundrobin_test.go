package balance_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/balancetest"
)

// rrSet returns backends named a, b, c, ... with the given weights.
func rrSet(weights ...int) []balance.Backend {
	bs := make([]balance.Backend, len(weights))
	for i, w := range weights {
		bs[i] = balance.Backend{Addr: string(rune('a' + i)), Weight: w}
	}
	return bs
}

// rrPicks picks n times and returns the addresses in order.
func rrPicks(t testing.TB, lb balance.Balancer, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		c, err := lb.Pick(context.Background(), "")
		require.NoError(t, err)
		out[i] = c.Backend().Addr
		c.Done(nil)
	}
	return out
}

func rrCount(addrs []string) map[string]int {
	m := map[string]int{}
	for _, a := range addrs {
		m[a]++
	}
	return m
}

func TestRoundRobinRotation(t *testing.T) {
	var lb balance.RoundRobin
	require.NoError(t, lb.Update(rrSet(7, 0, 1))) // weights are ignored
	require.Equal(t, []string{"a", "b", "c", "a", "b", "c", "a"}, rrPicks(t, &lb, 7))
	// Update carries the rotation on from where it stands.
	require.NoError(t, lb.Update(rrSet(1, 1, 1, 1)))
	require.Equal(t, []string{"d", "a", "b", "c", "d"}, rrPicks(t, &lb, 5))
}

// TestRoundRobinStrictUnderConcurrency: however goroutines interleave,
// every n picks in total give each of n backends exactly one.
func TestRoundRobinStrictUnderConcurrency(t *testing.T) {
	lb := balance.NewRoundRobin()
	set := balancetest.Backends(7)
	require.NoError(t, lb.Update(set))
	const goroutines, each = 8, 7 * 500
	counts := make([]map[string]int, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			counts[g] = map[string]int{}
			for range each {
				c, err := lb.Pick(context.Background(), "")
				if err != nil {
					panic(err)
				}
				counts[g][c.Backend().Addr]++
				c.Done(nil)
			}
		})
	}
	wg.Wait()
	total := map[string]int{}
	for _, m := range counts {
		for a, n := range m {
			total[a] += n
		}
	}
	for _, b := range set {
		require.Equal(t, goroutines*each/len(set), total[b.Addr], "%v", total)
	}
}

func BenchmarkRoundRobin(b *testing.B) {
	lb := balance.NewRoundRobin()
	if err := lb.Update(balancetest.Backends(10)); err != nil {
		b.Fatal(err)
	}
	rrBench(b, "10", lb)

	// The floor: a bare atomic counter indexing a slice, as the issue
	// measured it, in the same run, so that the numbers above can be read
	// on a machine busy with other work.
	set := balancetest.Backends(10)
	var next atomic.Uint64
	floor := func() int { return len(set[(next.Add(1)-1)%uint64(len(set))].Addr) }
	b.Run("floor", func(b *testing.B) {
		for b.Loop() {
			rrSink += floor()
		}
	})
	b.Run("floor-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			n := 0
			for pb.Next() {
				n += floor()
			}
			rrSinkAtomic.Add(int64(n))
		})
	})
}

var (
	rrSink       int
	rrSinkAtomic atomic.Int64
)

// rrBench benchmarks Pick+Done serially (name) and under RunParallel
// (name-parallel).
func rrBench(b *testing.B, name string, lb balance.Balancer) {
	ctx := context.Background()
	b.Run(name, func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c, err := lb.Pick(ctx, "")
			if err != nil {
				b.Fatal(err)
			}
			c.Done(nil)
		}
	})
	b.Run(name+"-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c, err := lb.Pick(ctx, "")
				if err != nil {
					b.Fatal(err)
				}
				c.Done(nil)
			}
		})
	})
}
