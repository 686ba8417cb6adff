package shard

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestJumpHashIsMonotone: growing the bucket count by one either keeps a
// key's bucket or moves it to the new bucket, for every count up to 600.
func TestJumpHashIsMonotone(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for range 3000 {
		h := rng.Uint64()
		prev := jumpHash(h, 1)
		require.Equal(t, 0, prev)
		for n := 2; n <= 600; n++ {
			b := jumpHash(h, n)
			require.True(t, b == prev || b == n-1, "h=%x n=%d: %d -> %d", h, n, prev, b)
			require.Less(t, b, n)
			prev = b
		}
	}
}

// TestJumpHashIsUniform: the bucket is uniform over [0, n) (chi-square well
// within its 99.9% bound), and the share of keys moving to bucket n when it
// is added is 1/(n+1), as with Lamping and Veach's loop.
func TestJumpHashIsUniform(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	const keys = 200_000
	for _, n := range []int{2, 3, 5, 7, 10, 16, 17, 33, 100, 1000} {
		count := make([]int, n)
		moved := 0
		for range keys {
			h := rng.Uint64()
			b := jumpHash(h, n)
			count[b]++
			if jumpHash(h, n+1) != b {
				moved++
			}
		}
		exp := float64(keys) / float64(n)
		chi := 0.0
		for _, c := range count {
			chi += (float64(c) - exp) * (float64(c) - exp) / exp
		}
		df := float64(n - 1)
		// Wilson–Hilferty: the 99.9% quantile of chi-square(df).
		bound := df * math.Pow(1-2/(9*df)+3.09*math.Sqrt(2/(9*df)), 3)
		require.Less(t, chi, bound, "n=%d chi2=%.1f", n, chi)
		want := float64(keys) / float64(n+1)
		require.InDelta(t, want, float64(moved), 4*math.Sqrt(want), "n=%d", n)
	}
}
