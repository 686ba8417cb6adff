package replica_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/replica/replicatest"
)

// The defaults these tests rely on, for ProbeInterval = interval (100 ms).
const (
	probeTimeout   = replica.DefaultProbeTimeout // max(interval, 1 s)
	connectTimeout = 2 * probeTimeout
)

// takenOutWithin is Config.FailAfter's bound on how long a node that stops
// answering keeps its place: ProbeInterval + FailAfter × max(ProbeInterval,
// ConnectTimeout + ProbeTimeout).
const takenOutWithin = interval + replica.DefaultFailAfter*(connectTimeout+probeTimeout)

// newRouter builds a Router over topo's nodes with Probe and
// ProbeInterval filled in, closed by t.Cleanup.
func newRouter(t *testing.T, topo *replicatest.Topology, cfg replica.Config) *replica.Router {
	t.Helper()
	cfg.Probe, cfg.ProbeInterval, cfg.MaxLag = topo, interval, time.Second
	r, err := replica.New(cfg, topo.Nodes()...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// untilNoPrimary polls Writer every 10 ms until it fails, and returns how
// long that took and the error.
func untilNoPrimary(t *testing.T, r *replica.Router, limit time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	for time.Since(start) <= limit {
		if _, err := r.Writer(t.Context()); err != nil {
			return time.Since(start), err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start), nil
}

// A primary whose answers take five probe intervals, within ProbeTimeout,
// is slow, not dead: it stays the primary and writes succeed. Once it
// answers nothing at all, it is taken out within FailAfter's bound, and
// not before its probes have each waited ProbeTimeout.
func TestSlowPrimaryStaysPrimary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "p", "r1", "r2")
		r := newRouter(t, topo, replica.Config{})
		_, err := r.Writer(t.Context())
		require.NoError(t, err)

		topo.SetLatency("p", 5*interval)
		start := time.Now()
		for time.Since(start) < 30*interval {
			_, err := r.DB().ExecContext(t.Context(), "UPDATE t SET v = 1")
			require.NoError(t, err, "a write to a primary that answers in %v (ProbeTimeout %v), after %v", 5*interval, probeTimeout, time.Since(start))
			wait(interval)
		}
		p := statusOf(r, "p")
		require.True(t, p.Healthy && p.Serving, "%v", p)
		require.NoError(t, p.LastErr)

		topo.SetLatency("p", time.Hour) // hung
		took, err := untilNoPrimary(t, r, 2*takenOutWithin)
		require.ErrorIs(t, err, replica.ErrNoPrimary, "a hung primary was never taken out (waited %v)", took)
		require.LessOrEqual(t, took, takenOutWithin, "a hung primary must be out within ProbeInterval + FailAfter × (ConnectTimeout + ProbeTimeout)")
		require.GreaterOrEqual(t, took, replica.DefaultFailAfter*probeTimeout, "each failed probe waited ProbeTimeout")
		t.Logf("a hung primary was taken out after %v (bound %v)", took, takenOutWithin)
	})
}

// Opening a connection is bounded by ConnectTimeout, not ProbeTimeout: a
// node whose connections take longer to open than ProbeTimeout (TLS, a
// distant zone, a loaded machine) is found in the first round, and a
// Writer called before that round ends waits for it instead of failing
// with ErrNoPrimary. A probe connection lost to an error is re-opened
// just as slowly without the node dropping out.
func TestSlowDialIsNotAFailedProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "p", "r1")
		const dial = 3 * probeTimeout / 2
		topo.SetDialLatency("p", dial)
		r := newRouter(t, topo, replica.Config{})
		start := time.Now()
		db, err := r.Writer(t.Context())
		require.NoError(t, err, "the first round's slow dial failed the primary")
		require.Equal(t, topo.DB("p"), db)
		require.Equal(t, dial, time.Since(start), "Writer waited for the first round, whose dial took %v", dial)

		topo.SetDown("p", true) // one failed probe: its connection is dropped
		wait(interval)
		require.Error(t, statusOf(r, "p").LastErr)
		topo.SetDown("p", false)
		for range 2 * int(dial/interval) {
			_, err := r.Writer(t.Context())
			require.NoError(t, err, "re-opening the probe connection in %v (ConnectTimeout %v) took the primary out", dial, connectTimeout)
			wait(interval)
		}
		require.NoError(t, statusOf(r, "p").LastErr)
		require.True(t, statusOf(r, "p").Healthy)

		// A dial beyond ConnectTimeout is a failure.
		topo.SetDialLatency("p", 2*connectTimeout)
		topo.SetDown("p", true)
		wait(interval)
		topo.SetDown("p", false)
		took, err := untilNoPrimary(t, r, 2*takenOutWithin)
		require.ErrorIs(t, err, replica.ErrNoPrimary, "a node whose connections never open was not taken out (waited %v)", took)
		require.LessOrEqual(t, took, takenOutWithin)
	})
}

// A primary that never answers the first round leaves a waiting Writer
// with ErrNoPrimary once that round is over, within ConnectTimeout +
// ProbeTimeout + ProbeInterval; a Writer whose ctx ends first gets its
// ctx's error.
func TestFirstRoundWaitIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "p", "r1")
		topo.SetDialLatency("p", time.Hour)
		start := time.Now()
		r := newRouter(t, topo, replica.Config{})
		ctx, cancel := context.WithTimeout(t.Context(), interval)
		defer cancel()
		_, err := r.Writer(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)

		_, err = r.Writer(t.Context())
		require.ErrorIs(t, err, replica.ErrNoPrimary)
		require.LessOrEqual(t, time.Since(start), connectTimeout+probeTimeout+interval, "the first round's wait")
		require.ErrorIs(t, statusOf(r, "p").LastErr, context.DeadlineExceeded, "the dial was cut at ConnectTimeout")
	})
}

// Each node's probes run on one connection of their own, kept from round
// to round and re-opened after a failure; a pool saturated by traffic
// does not starve them, and Close gives the connections back.
func TestProbeConnectionIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "p", "r1", "r2")
		r := newRouter(t, topo, replica.Config{})
		wait(20 * interval)
		for _, n := range []string{"p", "r1", "r2"} {
			require.Equal(t, 1, topo.Connections(n), "%s: 20 rounds, one connection", n)
			require.Equal(t, 1, topo.DB(n).Stats().InUse, "%s: the probe connection is held", n)
		}

		topo.SetDown("r1", true)
		wait(interval)
		require.Error(t, statusOf(r, "r1").LastErr)
		topo.SetDown("r1", false)
		wait(5 * interval)
		require.True(t, statusOf(r, "r1").Serving)
		require.Equal(t, 2, topo.Connections("r1"), "the connection of the failed probe was replaced, once")

		// Traffic takes every other connection the pool may open.
		db := topo.DB("p")
		db.SetMaxOpenConns(2)
		held, err := db.Conn(t.Context())
		require.NoError(t, err)
		full, cancel := context.WithTimeout(t.Context(), time.Millisecond)
		_, err = db.Conn(full)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, "the pool is saturated")
		wait(30 * interval) // longer than FailAfter × (ConnectTimeout + ProbeTimeout)
		p := statusOf(r, "p")
		require.True(t, p.Healthy && p.Serving, "a saturated pool starved the probes: %v", p)
		require.NoError(t, p.LastErr)
		require.NoError(t, held.Close())

		require.NoError(t, r.Close())
		for _, n := range []string{"p", "r1", "r2"} {
			require.Zero(t, topo.DB(n).Stats().InUse, "%s: Close gives the probe connection back", n)
		}
	})
}
