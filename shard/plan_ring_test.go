package shard

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRingPlanCutsMatchUnion: the plan from the changed members' points
// alone is exactly the plan from every point of both rings, for joins,
// leaves, reweights and several changes at once, with few enough points
// that positions collide.
func TestRingPlanCutsMatchUnion(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	member := func(i int) Member { return Member{Name: fmt.Sprintf("m%d", i), Weight: 1 + rng.IntN(3)} }
	for trial := range 300 {
		n := 1 + rng.IntN(40)
		var from []Member
		for i := range n {
			from = append(from, member(i))
		}
		var to []Member
		for _, m := range from {
			switch rng.IntN(6) {
			case 0: // removed
			case 1:
				m.Weight = 1 + rng.IntN(4)
				to = append(to, m)
			default:
				to = append(to, m)
			}
		}
		for i := range rng.IntN(3) {
			to = append(to, member(n+i))
		}
		if len(to) == 0 {
			to = append(to, member(n))
		}
		cfg := RingConfig{Points: []int{1, 3, 160}[rng.IntN(3)]}
		a, err := NewRing(from, cfg)
		require.NoError(t, err)
		b, err := NewRing(to, cfg)
		require.NoError(t, err)
		gotMoves, gotFrac := planRing(a, b)
		wantMoves, wantFrac := planArcs(a, b, mergeSorted(a.points, b.points))
		require.Equal(t, wantMoves, gotMoves, "trial %d", trial)
		require.Equal(t, wantFrac, gotFrac, "trial %d", trial)
	}
}
