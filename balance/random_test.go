package balance_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/balancetest"
)

// TestRandomDistribution: each backend's share of many picks is within a
// few standard deviations of weight/total, for uniform and weighted sets.
func TestRandomDistribution(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []int
	}{
		{"uniform", []int{1, 1, 1, 1, 1}},
		{"zero means one", []int{0, 1, 0}},
		{"weighted", []int{1, 2, 3, 4}},
		{"skewed", []int{100, 1, 1, 1}},
		{"single", []int{9}},
		{"many", []int{5, 1, 9, 2, 2, 7, 1, 1, 3, 8, 4, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := balance.NewRandom()
			set := rrSet(tc.weights...)
			require.NoError(t, lb.Update(set))
			const n = 200_000
			count := rrCount(rrPicks(t, lb, n))
			total := 0
			for _, b := range set {
				total += max(b.Weight, 1)
			}
			for _, b := range set {
				p := float64(max(b.Weight, 1)) / float64(total)
				sd := math.Sqrt(n * p * (1 - p))
				require.InDelta(t, n*p, float64(count[b.Addr]), 5*sd+1, "backend %s: %v", b.Addr, count)
			}
		})
	}
}

func BenchmarkRandom(b *testing.B) {
	lb := balance.NewRandom()
	if err := lb.Update(balancetest.Backends(10)); err != nil {
		b.Fatal(err)
	}
	rrBench(b, "10", lb)
	weighted := balance.NewRandom()
	set := balancetest.Backends(10)
	for i := range set {
		set[i].Weight = i + 1
	}
	if err := weighted.Update(set); err != nil {
		b.Fatal(err)
	}
	rrBench(b, "10-weighted", weighted)
}
