package replica_test

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/replica/replicatest"
)

// Close in the middle of each operation: the operation ends with
// ErrClosed at once (probes under way are cancelled, not waited out), and
// Close returns with no goroutine of the Router left, which the synctest
// bubble checks when it ends. Run with -race.

func TestCloseDuringFirstRoundWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "p", "r1")
		topo.SetDialLatency("p", time.Hour)
		r := newRouter(t, topo, replica.Config{})
		errs := make(chan error, 2)
		go func() { _, err := r.Writer(t.Context()); errs <- err }()
		go func() { _, err := r.Reader(t.Context()); errs <- err }()
		wait(interval)
		start := time.Now()
		require.NoError(t, r.Close())
		require.Zero(t, time.Since(start), "Close waited for the dial instead of cancelling it")
		require.ErrorIs(t, <-errs, replica.ErrClosed)
		require.ErrorIs(t, <-errs, replica.ErrClosed)
	})
}

func TestCloseDuringProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "p", "r1")
		r := newRouter(t, topo, replica.Config{})
		_, err := r.Writer(t.Context())
		require.NoError(t, err)
		topo.SetLatency("r1", time.Hour)
		errs := make(chan error, 1)
		go func() { errs <- r.Probe(t.Context()) }()
		wait(probeTimeout / 2)
		start := time.Now()
		require.NoError(t, r.Close())
		require.Zero(t, time.Since(start), "Close waited for the probe instead of cancelling it")
		require.ErrorIs(t, <-errs, replica.ErrClosed)
		require.NoError(t, statusOf(r, "r1").LastErr, "a round cut short by Close counted as a failed probe")
		require.ErrorIs(t, r.Probe(t.Context()), replica.ErrClosed)
	})
}

func TestCloseDuringAutoPromote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "p", "r1")
		r := newRouter(t, topo, replica.Config{})
		e, err := failover.NewMemoryStore().Candidate(failover.Config{})
		require.NoError(t, err)
		errs := make(chan error, 1)
		go func() {
			errs <- r.AutoPromote(t.Context(), replica.PromoteConfig{Elector: e,
				Promote: func(context.Context, replica.Node, *failover.Term) error { return nil }})
		}()
		wait(10 * interval)
		require.NoError(t, r.Close())
		require.ErrorIs(t, <-errs, replica.ErrClosed, "AutoPromote goes on after Close")
		require.ErrorIs(t, r.AutoPromote(t.Context(), replica.PromoteConfig{Elector: e,
			Promote: func(context.Context, replica.Node, *failover.Term) error { return nil }}), replica.ErrClosed)
	})
}

func TestCloseDuringQueries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "p", "r1")
		r := newRouter(t, topo, replica.Config{})
		_, err := r.Writer(t.Context())
		require.NoError(t, err)
		topo.SetLatency("p", interval)
		topo.SetLatency("r1", interval)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					var name string
					if err := r.DB().QueryRowContext(t.Context(), "SELECT 1").Scan(&name); err != nil {
						require.ErrorIs(t, err, replica.ErrClosed)
						return
					}
					if _, err := r.DB().ExecContext(t.Context(), "UPDATE t SET v = 1"); err != nil {
						require.ErrorIs(t, err, replica.ErrClosed)
						return
					}
				}
			})
		}
		wait(5 * interval / 2) // statements under way
		require.NoError(t, r.Close())
		wg.Wait() // the statements under way end on the caller's pools; the next fail
	})
}

// roundsRunning counts the goroutines in a probe round, from a dump of
// every goroutine's stack.
func roundsRunning() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "replica.(*Router).probeRound(")
}

// Probe calls racing Close: a round is either started before Close, and
// waited for, or refused with ErrClosed; none runs after Close returns.
func TestCloseRacesProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "p", "r1")
		for range 200 {
			r, err := replica.New(replica.Config{Probe: topo, ProbeInterval: interval, MaxLag: time.Second}, topo.Nodes()...)
			require.NoError(t, err)
			_, err = r.Writer(t.Context())
			require.NoError(t, err)
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					if err := r.Probe(t.Context()); err != nil {
						require.ErrorIs(t, err, replica.ErrClosed)
					}
				})
			}
			require.NoError(t, r.Close())
			require.Zero(t, roundsRunning(), "a probe round runs after Close returned")
			wg.Wait()
		}
	})
}
