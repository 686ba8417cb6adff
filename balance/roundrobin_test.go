package balance_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
		out[i] = c.Backend.Addr
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

// rrCommon runs the tests every balancer of this file group shares, beyond
// the conformance kit: bad input, empty sets, contexts, Done, allocations
// and Update during picks. newLB returns a balancer with no backends whose
// picks spread over every backend it is given.
func rrCommon(t *testing.T, newLB func(t *testing.T) balance.Balancer) {
	t.Run("Conformance", func(t *testing.T) { balancetest.Run(t, newLB) })

	t.Run("BadUpdate", func(t *testing.T) {
		good := rrSet(1, 2, 3)
		for _, tc := range []struct {
			name string
			set  []balance.Backend
		}{
			{"empty address", []balance.Backend{{Addr: "x"}, {Addr: ""}}},
			{"duplicate", []balance.Backend{{Addr: "x"}, {Addr: "y"}, {Addr: "x"}}},
			{"negative weight", []balance.Backend{{Addr: "x", Weight: -3}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				lb := newLB(t)
				require.NoError(t, lb.Update(good))
				err := lb.Update(tc.set)
				require.ErrorIs(t, err, balance.ErrInvalidBackend)
				for addr := range rrCount(rrPicks(t, lb, 60)) {
					require.Contains(t, []string{"a", "b", "c"}, addr, "the previous set stays")
				}
			})
		}
	})

	t.Run("Empty", func(t *testing.T) {
		lb := newLB(t)
		_, err := lb.Pick(context.Background(), "")
		require.ErrorIs(t, err, balance.ErrNoBackend)
		require.NoError(t, lb.Update(rrSet(1)))
		require.NoError(t, lb.Update([]balance.Backend{}))
		_, err = lb.Pick(context.Background(), "")
		require.ErrorIs(t, err, balance.ErrNoBackend)
	})

	t.Run("Context", func(t *testing.T) {
		lb := newLB(t)
		require.NoError(t, lb.Update(rrSet(1, 1)))
		canceled, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := lb.Pick(canceled, "")
		require.ErrorIs(t, err, context.Canceled)
		expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(1, 0))
		defer cancel2()
		_, err = lb.Pick(expired, "")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		// A done context wins over an empty set: the caller gave up first.
		require.NoError(t, lb.Update(nil))
		_, err = lb.Pick(canceled, "")
		require.ErrorIs(t, err, context.Canceled)
	})

	t.Run("Done", func(t *testing.T) {
		lb := newLB(t)
		require.NoError(t, lb.Update(rrSet(1, 2, 3)))
		c, err := lb.Pick(context.Background(), "")
		require.NoError(t, err)
		c.Done(nil)
		c.Done(errors.New("again")) // ignored
		held, err := lb.Pick(context.Background(), "")
		require.NoError(t, err)
		require.NoError(t, lb.Update([]balance.Backend{{Addr: "z"}}))
		held.Done(errors.New("reset")) // its backend is gone: harmless
		held.Done(nil)
		require.Equal(t, []string{"z", "z"}, rrPicks(t, lb, 2))
	})

	t.Run("Allocs", func(t *testing.T) {
		lb := newLB(t)
		require.NoError(t, lb.Update(balancetest.Backends(10)))
		ctx := context.Background()
		allocs := testing.AllocsPerRun(1000, func() {
			c, err := lb.Pick(ctx, "key")
			if err != nil {
				panic(err)
			}
			c.Done(nil)
		})
		require.Zero(t, allocs)
	})

	t.Run("UpdateDuringPicks", func(t *testing.T) {
		lb := newLB(t)
		old, next := balancetest.Backends(5), balancetest.Backends(12)[5:]
		in := map[string]bool{}
		for _, b := range append(append([]balance.Backend{}, old...), next...) {
			in[b.Addr] = true
		}
		require.NoError(t, lb.Update(old))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := lb.Pick(context.Background(), "k")
					if err == nil && !in[c.Backend.Addr] {
						err = fmt.Errorf("picked %q from neither set", c.Backend.Addr)
					}
					if err != nil {
						errs <- err
						return
					}
					c.Done(nil)
				}
			})
		}
		for i := range 500 {
			set := old
			if i%2 == 0 {
				set = next
			}
			require.NoError(t, lb.Update(set))
		}
		close(stop)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	})
}

func TestRoundRobin(t *testing.T) {
	rrCommon(t, func(*testing.T) balance.Balancer { return balance.NewRoundRobin() })
	t.Run("ZeroValue", func(t *testing.T) {
		rrCommon(t, func(*testing.T) balance.Balancer { return new(balance.RoundRobin) })
	})
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
				counts[g][c.Backend.Addr]++
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
