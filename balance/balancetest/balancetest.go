// Package balancetest is the conformance kit every balance.Balancer runs:
// the built-in strategies run it, and so can a Balancer written elsewhere.
//
//	func TestMyBalancer(t *testing.T) {
//		balancetest.Run(t, func(t *testing.T) balance.Balancer { return mylb.New() })
//	}
//
// Run checks what every caller relies on, one subtest per clause:
//
//   - EmptySetHasNoBackend: Pick fails with ErrNoBackend before any Update
//     and after an Update to no backends.
//   - PicksComeFromTheSet: every pick is a backend of the latest Update.
//   - BadUpdateKeepsPreviousSet: an Update with an empty address, a
//     duplicate address or a negative weight fails with ErrInvalidBackend
//     and picks keep coming from the previous set.
//   - DoneContext: a canceled or expired context fails Pick with its
//     error, even on an empty set.
//   - EveryBackendGetsTraffic: over 8000 picks of distinct keys, each of
//     8 backends of equal weight gets at least a third of an even share.
//   - UpdateDuringPicks: while the set alternates between two in another
//     goroutine, concurrent picks never fail and always come from one of
//     them (an Update is atomic).
//   - DoneLateOrTwice: Done may come after its backend was removed, or
//     twice (the second is ignored), and the zero Choice's Done does
//     nothing, without skewing the spread over the backends that stayed.
//   - PickAddr (a balance.Pinner only; skipped otherwise): PickAddr hands
//     out exactly the backends of the current set, fails with
//     ErrNoBackend for any other address, and honours a done context.
//
// The kit's own tests run each clause against a Balancer broken in it and
// require the clause to fail.
package balancetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
)

// Run runs the conformance tests against Balancers made by newBalancer,
// which is called once per subtest and must return a Balancer with no
// backends.
func Run(t *testing.T, newBalancer func(t *testing.T) balance.Balancer) {
	t.Run("EmptySetHasNoBackend", func(t *testing.T) { testEmpty(t, newBalancer(t)) })
	t.Run("PicksComeFromTheSet", func(t *testing.T) { testMembership(t, newBalancer(t)) })
	t.Run("BadUpdateKeepsPreviousSet", func(t *testing.T) { testBadUpdate(t, newBalancer(t)) })
	t.Run("DoneContext", func(t *testing.T) { testContext(t, newBalancer(t)) })
	t.Run("EveryBackendGetsTraffic", func(t *testing.T) { testSpread(t, newBalancer(t)) })
	t.Run("UpdateDuringPicks", func(t *testing.T) { testConcurrentUpdate(t, newBalancer(t)) })
	t.Run("DoneLateOrTwice", func(t *testing.T) { testDone(t, newBalancer(t)) })
	t.Run("PickAddr", func(t *testing.T) {
		lb, ok := newBalancer(t).(balance.Pinner)
		if !ok {
			t.Skip("not a balance.Pinner")
		}
		testPickAddr(t, lb)
	})
}

// Backends returns n backends with addresses 10.0.0.1:80 onwards, spread
// over zones "a" and "b".
func Backends(n int) []balance.Backend {
	bs := make([]balance.Backend, n)
	for i := range bs {
		bs[i] = balance.Backend{Addr: fmt.Sprintf("10.0.%d.%d:80", i/250, i%250+1), Zone: string(rune('a' + i%2))}
	}
	return bs
}

func addrs(bs []balance.Backend) map[string]bool {
	m := make(map[string]bool, len(bs))
	for _, b := range bs {
		m[b.Addr] = true
	}
	return m
}

func testEmpty(t *testing.T, lb balance.Balancer) {
	_, err := lb.Pick(context.Background(), "k")
	require.ErrorIs(t, err, balance.ErrNoBackend)
	require.NoError(t, lb.Update(Backends(3)))
	require.NoError(t, lb.Update(nil))
	_, err = lb.Pick(context.Background(), "k")
	require.ErrorIs(t, err, balance.ErrNoBackend, "an Update to no backends empties the set")
}

func testMembership(t *testing.T, lb balance.Balancer) {
	ctx := context.Background()
	for _, set := range [][]balance.Backend{Backends(1), Backends(5), Backends(2)[1:], Backends(40)} {
		require.NoError(t, lb.Update(set))
		in := addrs(set)
		for i := range 500 {
			c, err := lb.Pick(ctx, fmt.Sprintf("key-%d", i))
			require.NoError(t, err)
			require.True(t, in[c.Backend().Addr], "picked %q, not in the set", c.Backend().Addr)
			c.Done(nil)
		}
	}
}

func testBadUpdate(t *testing.T, lb balance.Balancer) {
	good := Backends(3)
	require.NoError(t, lb.Update(good))
	for name, bad := range map[string][]balance.Backend{
		"empty address":   {{Addr: "10.9.9.9:80"}, {Addr: ""}},
		"duplicate":       {{Addr: "10.9.9.9:80"}, {Addr: "10.9.9.9:80"}},
		"negative weight": {{Addr: "10.9.9.9:80", Weight: -1}},
	} {
		err := lb.Update(bad)
		require.ErrorIs(t, err, balance.ErrInvalidBackend, name)
	}
	in := addrs(good)
	for i := range 100 {
		c, err := lb.Pick(context.Background(), fmt.Sprint(i))
		require.NoError(t, err)
		require.True(t, in[c.Backend().Addr], "after a refused Update, picks must come from the previous set")
		c.Done(nil)
	}
}

func testContext(t *testing.T, lb balance.Balancer) {
	require.NoError(t, lb.Update(Backends(3)))
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := lb.Pick(canceled, "k")
	require.ErrorIs(t, err, context.Canceled)
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel2()
	_, err = lb.Pick(expired, "k")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// A done context wins over an empty set: the caller gave up first.
	require.NoError(t, lb.Update(nil))
	_, err = lb.Pick(canceled, "k")
	require.ErrorIs(t, err, context.Canceled)
}

// testSpread: over many picks with distinct keys, every backend of equal
// weight gets a fair part of the traffic (at least a third of an even
// share; strategies differ in how even they are, none may starve one).
func testSpread(t *testing.T, lb balance.Balancer) {
	set := Backends(8)
	require.NoError(t, lb.Update(set))
	const picks = 8000
	count := map[string]int{}
	for i := range picks {
		c, err := lb.Pick(context.Background(), fmt.Sprintf("user-%d", i))
		require.NoError(t, err)
		count[c.Backend().Addr]++
		c.Done(nil)
	}
	for _, b := range set {
		require.GreaterOrEqual(t, count[b.Addr], picks/len(set)/3, "backend %s starved: %v", b.Addr, count)
	}
}

// testConcurrentUpdate: picks and Dones go on in several goroutines while
// the set alternates between two; every pick comes from one of them, and
// none fails (an Update is atomic: no pick sees the set empty or half
// built).
func testConcurrentUpdate(t *testing.T, lb balance.Balancer) {
	a, b := Backends(4), Backends(9)[4:]
	in := addrs(append(append([]balance.Backend(nil), a...), b...))
	require.NoError(t, lb.Update(a))
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []balance.Choice // requests in flight across updates
			defer func() {
				for i := range held {
					held[i].Done(nil)
				}
			}()
			for i := range 2000 {
				c, err := lb.Pick(context.Background(), fmt.Sprintf("%d-%d", g, i))
				if err != nil {
					errs <- err
					return
				}
				if !in[c.Backend().Addr] {
					errs <- fmt.Errorf("picked %q from neither set", c.Backend().Addr)
					return
				}
				held = append(held, c)
				if len(held) > 8 {
					held[0].Done(nil)
					held = held[1:]
				}
			}
		}()
	}
	// Update for as long as the picks go on (and at least 200 times), so
	// that every pick may meet an Update half done.
	picking := make(chan struct{})
	go func() { wg.Wait(); close(picking) }()
	for i := 0; ; i++ {
		set := a
		if i%2 == 1 {
			set = b
		}
		require.NoError(t, lb.Update(set))
		if i < 200 {
			continue
		}
		select {
		case <-picking:
		default:
			continue
		}
		break
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// testDone: requests finish after their backends left the set, and report
// twice; the second report is ignored, and the backends that stayed are
// not judged by the reports: the spread stays fair.
func testDone(t *testing.T, lb balance.Balancer) {
	set := Backends(4)
	require.NoError(t, lb.Update(set))
	ctx := context.Background()
	var held []balance.Choice
	for i := range 40 {
		c, err := lb.Pick(ctx, fmt.Sprint(i))
		require.NoError(t, err)
		held = append(held, c)
	}
	require.NoError(t, lb.Update(set[2:]))
	for i := range held {
		held[i].Done(nil)
		held[i].Done(errors.New("ignored: a second Done"))
	}
	var zero balance.Choice
	zero.Done(nil) // a zero Choice is harmless too
	count := map[string]int{}
	for i := range 2000 {
		c, err := lb.Pick(ctx, fmt.Sprintf("k%d", i))
		require.NoError(t, err)
		count[c.Backend().Addr]++
		c.Done(nil)
	}
	require.Len(t, count, 2)
	for addr, n := range count {
		require.Greater(t, n, 500, "%s starved: %v", addr, count)
	}
}

func testPickAddr(t *testing.T, lb balance.Pinner) {
	ctx := context.Background()
	_, err := lb.PickAddr(ctx, "10.0.0.1:80")
	require.ErrorIs(t, err, balance.ErrNoBackend, "no set yet")
	set := Backends(4)
	require.NoError(t, lb.Update(set))
	for _, b := range set {
		c, err := lb.PickAddr(ctx, b.Addr)
		require.NoError(t, err)
		require.Equal(t, b.Addr, c.Backend().Addr)
		c.Done(nil)
	}
	_, err = lb.PickAddr(ctx, "10.9.9.9:80")
	require.ErrorIs(t, err, balance.ErrNoBackend)
	require.NoError(t, lb.Update(set[1:]))
	_, err = lb.PickAddr(ctx, set[0].Addr)
	require.ErrorIs(t, err, balance.ErrNoBackend, "a removed backend cannot be pinned")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = lb.PickAddr(cctx, set[1].Addr)
	require.ErrorIs(t, err, context.Canceled)
}
