package balance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func llBackends(n int, weights ...int) []Backend {
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{Addr: fmt.Sprintf("b%d", i)}
		if len(weights) > 0 {
			bs[i].Weight = weights[i%len(weights)]
		}
	}
	return bs
}

// TestLeastLoadedLargeSetIsNotScanned: over 10,000 busy backends a pick
// finds the least loaded without reading every backend's count. The set's
// scan array is taken away, so a pick that scanned would fail; and the
// pick must still be exact: the backends released are the ones picked
// next.
func TestLeastLoadedLargeSetIsNotScanned(t *testing.T) {
	l := NewLeastLoaded(LeastLoadedConfig{})
	set := llBackends(10000)
	require.NoError(t, l.Update(set))
	ctx := context.Background()
	held := make([]Choice, len(set))
	for i, b := range set {
		c, err := l.PickAddr(ctx, b.Addr)
		require.NoError(t, err)
		held[i] = c
	}
	s := l.set.Load()
	require.True(t, s.indexed)
	l.set.Store(&llSet{eps: s.eps, indexed: true}) // no loads to scan

	idle := map[string]bool{}
	for _, i := range []int{17, 4242, 9999} {
		held[i].Done(nil)
		idle[set[i].Addr] = true
	}
	for range len(idle) {
		c, err := l.Pick(ctx, "")
		require.NoError(t, err)
		require.True(t, idle[c.Backend().Addr], c.Backend().Addr)
		delete(idle, c.Backend().Addr)
	}
	checkIndex(t, l)
}

// TestLeastLoadedIndexFollowsCounts: under concurrent picks, Dones,
// PickAddrs and Updates that move backends in and out of the index and
// between the index and the scan, the index ends with every backend in the
// bucket of its in-flight count and every group's lowest bucket known.
func TestLeastLoadedIndexFollowsCounts(t *testing.T) {
	l := NewLeastLoaded(LeastLoadedConfig{})
	sets := [][]Backend{llBackends(200, 1, 3), llBackends(100), llBackends(30), llBackends(300, 2)}
	require.NoError(t, l.Update(sets[0]))
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var held []Choice
			for i := range 5000 {
				var c Choice
				var err error
				if i%7 == 0 {
					c, err = l.PickAddr(ctx, fmt.Sprintf("b%d", rand.IntN(30)))
				} else {
					c, err = l.Pick(ctx, "")
				}
				if err == nil {
					held = append(held, c)
				}
				if len(held) > 20+g || rand.IntN(3) == 0 && len(held) > 0 {
					k := rand.IntN(len(held))
					held[k].Done(nil)
					held = append(held[:k], held[k+1:]...)
				}
			}
			for i := range held[:len(held)/2] { // leave some in flight
				held[i].Done(nil)
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			if err := l.Update(sets[i%len(sets)]); err != nil {
				panic(err)
			}
		}
	})
	wg.Wait()
	require.NoError(t, l.Update(sets[3]))
	checkIndex(t, l)
}

// checkIndex asserts the index's invariants, with no pick in progress.
func checkIndex(t *testing.T, l *LeastLoaded) {
	t.Helper()
	ix := l.ix
	ix.mu.Lock()
	defer ix.mu.Unlock()
	seen := 0
	for gi, g := range ix.groups {
		low := -1
		for lv, b := range g.buckets {
			for p, slot := range b {
				s := ix.slots[slot]
				require.Equal(t, int32(gi), s.group)
				require.Equal(t, lv, s.level)
				require.Equal(t, int32(p), s.pos)
				require.Equal(t, int64(lv), ix.st[slot].inflight.Load(), ix.eps[slot].Addr)
				require.Equal(t, g.weight, int64(ix.eps[slot].weight()))
				require.True(t, ix.st[slot].llOn.Load())
				seen++
			}
			if low < 0 && len(b) > 0 {
				low = lv
			}
		}
		require.Equal(t, low, g.min)
	}
	require.Equal(t, len(ix.eps), seen)
}

// BenchmarkLeastLoadedScanOrIndex compares the two ways of finding the
// least loaded backend at the same sizes, serially and under RunParallel
// (idle backends, as a lightly loaded balancer sees them): the costs that
// set llIndexMin.
func BenchmarkLeastLoadedScanOrIndex(b *testing.B) {
	for _, n := range []int{10, 64} {
		for _, kind := range []string{"scan", "index"} {
			l := NewLeastLoaded(LeastLoadedConfig{})
			if kind == "index" {
				l.indexMin = 2
			} else {
				l.indexMin = n + 1
			}
			if err := l.Update(llBackends(n)); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.Run(fmt.Sprintf("%s/n=%d", kind, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c, _ := l.Pick(ctx, "")
					c.Done(nil)
				}
			})
			b.Run(fmt.Sprintf("%s/n=%d/parallel", kind, n), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						c, _ := l.Pick(ctx, "")
						c.Done(nil)
					}
				})
			})
		}
	}
}
