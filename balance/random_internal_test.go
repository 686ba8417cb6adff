package balance

import (
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRandomAliasExact: the alias table gives each backend exactly its
// share of the 2^64·n outcomes of a pick, up to float64 rounding.
func TestRandomAliasExact(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for trial := range 300 {
		n := 2 + rnd.IntN(60)
		set := make([]Backend, n)
		total := 0
		for i := range set {
			set[i] = Backend{Addr: strconv.Itoa(i), Weight: rnd.IntN(1 + rnd.IntN(1000))}
			total += set[i].weight()
		}
		keep, alias := randomAlias(set)
		if keep == nil {
			continue
		}
		// Outcomes of column i: keep[i] go to i, 2^64-keep[i] to alias[i]
		// (for a full column, one outcome "goes" to its alias, itself).
		two64 := new(big.Int).Lsh(big.NewInt(1), 64)
		got := make([]*big.Int, n)
		for i := range got {
			got[i] = new(big.Int)
		}
		for i := range n {
			k := new(big.Int).SetUint64(keep[i])
			got[i].Add(got[i], k)
			got[alias[i]].Add(got[alias[i]], new(big.Int).Sub(two64, k))
		}
		all := new(big.Float).SetInt(new(big.Int).Mul(two64, big.NewInt(int64(n))))
		for i := range n {
			share, _ := new(big.Float).Quo(new(big.Float).SetInt(got[i]), all).Float64()
			want := float64(set[i].weight()) / float64(total)
			require.InDelta(t, want, share, 1e-12, "trial %d backend %d", trial, i)
		}
	}
	keep, alias := randomAlias([]Backend{{Addr: "a"}, {Addr: "b", Weight: 1}})
	require.Nil(t, keep, "equal weights need no table")
	require.Nil(t, alias)
	require.Equal(t, uint64(math.MaxUint64), randomScale(1))
	require.Equal(t, uint64(0), randomScale(0))
}
