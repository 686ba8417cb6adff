package balance_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/balancetest"
)

func TestWeightedRoundRobinOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []int
		round   string
	}{
		{"heavy among light", []int{5, 1, 1}, "abaacaa"},
		{"zero means one", []int{0, 0, 2}, "cabc"},
		{"equal is round robin", []int{3, 3, 3, 3}, "abcd"},
		{"common divisor", []int{10, 20, 30}, "cbcabc"},
		{"descending", []int{3, 2, 1}, "ababac"},
		{"single", []int{4}, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lb balance.WeightedRoundRobin
			require.NoError(t, lb.Update(rrSet(tc.weights...)))
			var want string
			for range 3 {
				want += tc.round
			}
			got := ""
			for _, a := range rrPicks(t, &lb, len(want)) {
				got += a
			}
			require.Equal(t, want, got)
		})
	}
}

// wrrCheckSmooth checks the order's guarantees over seq, which must start
// at the beginning of a round: every window of sum(weights) consecutive
// picks gives each backend exactly its weight, no backend runs longer
// than ⌈w/(W−w)⌉+1, and every prefix is within one turn of each share.
func wrrCheckSmooth(t *testing.T, set []balance.Backend, seq []string) {
	t.Helper()
	weight := map[string]int{}
	total := 0
	for _, b := range set {
		weight[b.Addr] = max(b.Weight, 1)
		total += max(b.Weight, 1)
	}
	window := map[string]int{}
	prefix := map[string]int{}
	run, runOf := 0, ""
	for i, a := range seq {
		window[a]++
		if i >= total {
			window[seq[i-total]]--
		}
		if i >= total-1 {
			for _, b := range set {
				require.Equal(t, weight[b.Addr], window[b.Addr], "window ending at %d", i)
			}
		}
		if a == runOf {
			run++
		} else {
			run, runOf = 1, a
		}
		if others := total - weight[a]; others > 0 {
			bound := (weight[a]+others-1)/others + 1
			require.LessOrEqual(t, run, bound, "run of %s (weight %d of %d) ending at %d", a, weight[a], total, i)
		}
		prefix[a]++
		for _, b := range set {
			ideal := float64(i+1) * float64(weight[b.Addr]) / float64(total)
			require.Less(t, math.Abs(float64(prefix[b.Addr])-ideal), 1.0, "backend %s after %d picks", b.Addr, i+1)
		}
	}
}

func TestWeightedRoundRobinSmooth(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n := 1 + rnd.IntN(12)
		weights := make([]int, n)
		for i := range weights {
			weights[i] = rnd.IntN(1 + rnd.IntN(30)) // 0 means 1
		}
		t.Run(strconv.Itoa(trial), func(t *testing.T) {
			set := rrSet(weights...)
			var lb balance.WeightedRoundRobin
			require.NoError(t, lb.Update(set))
			total := 0
			for _, w := range weights {
				total += max(w, 1)
			}
			wrrCheckSmooth(t, set, rrPicks(t, &lb, 3*total))
		})
	}
}

// TestWeightedRoundRobinExactUnderConcurrency: picks from many goroutines
// that add up to whole rounds give each backend exactly its share.
func TestWeightedRoundRobinExactUnderConcurrency(t *testing.T) {
	lb := balance.NewWeightedRoundRobin()
	set := rrSet(1, 2, 3, 4, 5, 6, 0) // total 22
	require.NoError(t, lb.Update(set))
	const goroutines, each = 8, 22 * 100
	var mu sync.Mutex
	total := map[string]int{}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			local := map[string]int{}
			for range each {
				c, err := lb.Pick(context.Background(), "")
				if err != nil {
					panic(err)
				}
				local[c.Backend().Addr]++
				c.Done(nil)
			}
			mu.Lock()
			defer mu.Unlock()
			for a, n := range local {
				total[a] += n
			}
		})
	}
	wg.Wait()
	for _, b := range set {
		require.Equal(t, goroutines*100*max(b.Weight, 1), total[b.Addr], "%v", total)
	}
}

// TestWeightedRoundRobinHugeWeights: rounds too long to precompute are
// generated pick by pick with the same guarantees; weights whose sum
// overflows the arithmetic are refused.
func TestWeightedRoundRobinHugeWeights(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("needs 64-bit int")
	}
	var lb balance.WeightedRoundRobin
	set := []balance.Backend{{Addr: "a", Weight: 1 << 40}, {Addr: "b", Weight: 3}, {Addr: "c", Weight: 1<<40 + 1}}
	require.NoError(t, lb.Update(set))
	seq := rrPicks(t, &lb, 20_000)
	count := rrCount(seq)
	require.InDelta(t, 10_000, count["a"], 1)
	require.InDelta(t, 10_000, count["c"], 1)
	for i := 2; i < len(seq); i++ {
		require.False(t, seq[i] == seq[i-1] && seq[i] == seq[i-2], "three in a row at %d", i)
	}

	err := lb.Update([]balance.Backend{{Addr: "x", Weight: math.MaxInt}, {Addr: "y", Weight: math.MaxInt - 1}})
	require.ErrorIs(t, err, balance.ErrInvalidBackend)
	require.Subset(t, []string{"a", "b", "c"}, rrPicks(t, &lb, 10), "the previous set stays")
	// Large but with a large common divisor: fine.
	require.NoError(t, lb.Update([]balance.Backend{{Addr: "x", Weight: math.MaxInt - 1}, {Addr: "y", Weight: (math.MaxInt - 1) / 2}}))
	require.Equal(t, rrCount([]string{"x", "x", "y"}), rrCount(rrPicks(t, &lb, 3)))
}

func BenchmarkWRR(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		lb := balance.NewWeightedRoundRobin()
		set := balancetest.Backends(n)
		for i := range set {
			set[i].Weight = 1 + i%10
		}
		if err := lb.Update(set); err != nil {
			b.Fatal(err)
		}
		rrBench(b, strconv.Itoa(n), lb)
	}
}

func BenchmarkWRRUpdate(b *testing.B) {
	set := balancetest.Backends(10_000)
	for i := range set {
		set[i].Weight = 1 + i%10
	}
	lb := balance.NewWeightedRoundRobin()
	b.ReportAllocs()
	for b.Loop() {
		if err := lb.Update(set); err != nil {
			b.Fatal(err)
		}
	}
}
