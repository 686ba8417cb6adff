package balance

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// wrrReference is the WF²Q order computed the obvious way, O(n) per pick:
// among backends whose next start k/w is at or before t/W, the earliest
// finish (k+1)/w, ties to the lower index.
func wrrReference(w []int, picks int) []int {
	total := 0
	for _, x := range w {
		total += x
	}
	k := make([]int, len(w))
	out := make([]int, picks)
	for t := range picks {
		tt := t % total
		if tt == 0 {
			clear(k)
		}
		best := -1
		for i := range w {
			if k[i]*total > tt*w[i] {
				continue
			}
			if best < 0 || (k[i]+1)*w[best] < (k[best]+1)*w[i] {
				best = i
			}
		}
		out[t] = best
		k[best]++
	}
	return out
}

// wrrNginx is nginx's smooth weighted round robin, O(n) per pick.
func wrrNginx(w []int, picks int) []int {
	total := 0
	for _, x := range w {
		total += x
	}
	cur := make([]int, len(w))
	out := make([]int, picks)
	for t := range out {
		best := -1
		for i := range w {
			cur[i] += w[i]
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out[t] = best
	}
	return out
}

// wrrLongestRun is the longest run of one backend in the repeated round.
func wrrLongestRun(round []int, of int) int {
	longest, run := 0, 0
	for _, i := range append(append([]int{}, round...), round...) {
		if i == of {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return min(longest, len(round))
}

func TestWrrOrderMatchesReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for trial := range 500 {
		n := 1 + rnd.IntN(40)
		w := make([]int, n)
		u := make([]uint64, n)
		total := 0
		for i := range w {
			w[i] = 1 + rnd.IntN(1+rnd.IntN(50))
			u[i] = uint64(w[i])
			total += w[i]
		}
		want := wrrReference(w, 3*total)
		o := newWrrOrder(u, uint64(total))
		for j, i := range want {
			require.Equal(t, i, int(o.next()), "trial %d weights %v pick %d", trial, w, j)
		}
	}
}

// TestWrrLiveMatchesRound: the order computed pick by pick (rounds too
// long to store) is the one Update precomputes.
func TestWrrLiveMatchesRound(t *testing.T) {
	set := make([]Backend, 300)
	for i := range set {
		set[i] = Backend{Addr: strconv.Itoa(i), Weight: (i*7)%13 + 1}
	}
	var stored, live WeightedRoundRobin
	require.NoError(t, stored.Update(set))
	require.NotNil(t, stored.set.Load().round)
	defer func(old uint64) { wrrMaxRound = old }(wrrMaxRound)
	wrrMaxRound = 0
	require.NoError(t, live.Update(set))
	require.NotNil(t, live.set.Load().live)
	ctx := context.Background()
	for j := range 3 * len(stored.set.Load().round) {
		a, err := stored.Pick(ctx, "")
		require.NoError(t, err)
		b, err := live.Pick(ctx, "")
		require.NoError(t, err)
		require.Equal(t, a.Backend().Addr, b.Backend().Addr, "pick %d", j)
	}
}

// TestWrrBurstsLessThanNginx documents the comparison in the type's doc.
func TestWrrBurstsLessThanNginx(t *testing.T) {
	w := []int{16, 1, 1}
	require.Equal(t, 11, wrrLongestRun(wrrNginx(w, 18), 0))
	require.Equal(t, 8, wrrLongestRun(wrrReference(w, 18), 0))
}

func BenchmarkWRRLive(b *testing.B) {
	defer func(old uint64) { wrrMaxRound = old }(wrrMaxRound)
	wrrMaxRound = 0
	for _, n := range []int{10, 10_000} {
		set := make([]Backend, n)
		for i := range set {
			set[i] = Backend{Addr: strconv.Itoa(i), Weight: 1 + i%10}
		}
		var lb WeightedRoundRobin
		require.NoError(b, lb.Update(set))
		ctx := context.Background()
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, err := lb.Pick(ctx, "")
				if err != nil {
					b.Fatal(err)
				}
				c.Done(nil)
			}
		})
	}
}
