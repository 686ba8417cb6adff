package replicatest

import (
	"context"
	"database/sql"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/replica"
)

// Timings of the Config that Run hands to the factory.
const (
	ProbeInterval = 100 * time.Millisecond
	MaxLag        = time.Second
)

// NewRouter builds the ReplicaRouter under test over topo's nodes, with
// cfg (whose Probe is topo; the factory may add to it, not loosen it).
type NewRouter func(t *testing.T, topo *Topology, cfg replica.Config) replica.ReplicaRouter

// Run is the conformance kit of ReplicaRouter: every implementation must
// pass it. Each case runs in a testing/synctest bubble on a Topology of a
// primary "p" and replicas "r1" and "r2", so the timed ones take no real
// time.
func Run(t *testing.T, newRouter NewRouter) {
	cases := []struct {
		name string
		fn   func(t *testing.T, topo *Topology, rr replica.ReplicaRouter)
	}{
		{"WritesGoToThePrimary", writesGoToThePrimary},
		{"ReadsSpreadOverReplicas", readsSpreadOverReplicas},
		{"UsePrimaryReadsThePrimary", usePrimaryReadsThePrimary},
		{"LaggingReplicaGetsNoReads", laggingReplicaGetsNoReads},
		{"DownReplicaIsEjectedAndReadmitted", downReplicaIsEjectedAndReadmitted},
		{"AllReplicasUnfitFallsBackToThePrimary", allReplicasUnfitFallsBackToThePrimary},
		{"DeadPrimaryFailsWritesFast", deadPrimaryFailsWritesFast},
		{"PromotedReplicaTakesWrites", promotedReplicaTakesWrites},
		{"OldPrimaryIsFencedAfterPromotion", oldPrimaryIsFencedAfterPromotion},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T) {
				topo := New(t, "p", "r1", "r2")
				rr := newRouter(t, topo, replica.Config{Probe: topo, ProbeInterval: ProbeInterval, MaxLag: MaxLag})
				c.fn(t, topo, rr)
			})
		})
	}
}

// inBubble runs f as t's body inside synctest.Test and reports a skip in
// the bubble (a factory that skips) as a skip of t: on Go 1.26
// synctest.Test reports a bubble that called t.Skip as passed. The Router
// is built inside the bubble, so the skip is carried out of it rather
// than decided before it.
func inBubble(t *testing.T, f func(t *testing.T)) {
	var inner *testing.T
	synctest.Test(t, func(t *testing.T) {
		inner = t
		f(t)
	})
	if inner.Skipped() {
		t.SkipNow()
	}
}

// servedBy runs a statement on db and returns the node that answered.
func servedBy(t *testing.T, db *sql.DB) string {
	t.Helper()
	var name string
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT node").Scan(&name))
	return name
}

// reads makes n Reader calls and counts the nodes that served them.
func reads(t *testing.T, ctx context.Context, rr replica.ReplicaRouter, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		db, err := rr.Reader(ctx)
		require.NoError(t, err)
		got[servedBy(t, db)]++
	}
	return got
}

// intervals waits for n probe intervals, and a little more so that a
// round due at the last instant has run.
func intervals(n int) {
	time.Sleep(time.Duration(n)*ProbeInterval + ProbeInterval/2)
	synctest.Wait()
}

func writesGoToThePrimary(t *testing.T, _ *Topology, rr replica.ReplicaRouter) {
	for range 10 {
		db, err := rr.Writer(t.Context())
		require.NoError(t, err)
		require.Equal(t, "p", servedBy(t, db))
	}
}

func readsSpreadOverReplicas(t *testing.T, _ *Topology, rr replica.ReplicaRouter) {
	got := reads(t, t.Context(), rr, 100)
	require.Zero(t, got["p"], "no read may go to the primary while replicas are fit: %v", got)
	require.Positive(t, got["r1"], "every fit replica serves reads: %v", got)
	require.Positive(t, got["r2"], "every fit replica serves reads: %v", got)
}

func usePrimaryReadsThePrimary(t *testing.T, _ *Topology, rr replica.ReplicaRouter) {
	got := reads(t, replica.UsePrimary(t.Context()), rr, 10)
	require.Equal(t, map[string]int{"p": 10}, got)
}

func laggingReplicaGetsNoReads(t *testing.T, topo *Topology, rr replica.ReplicaRouter) {
	reads(t, t.Context(), rr, 1) // the first probe round is in
	topo.SetLag("r1", 2*MaxLag)
	intervals(1)
	require.Equal(t, map[string]int{"r2": 50}, reads(t, t.Context(), rr, 50),
		"a replica beyond MaxLag must get no read one probe interval after it fell behind")
	topo.SetLag("r1", 0)
	intervals(replica.DefaultReadmitAfter)
	require.Positive(t, reads(t, t.Context(), rr, 50)["r1"], "a replica back within MaxLag is readmitted")
}

func downReplicaIsEjectedAndReadmitted(t *testing.T, topo *Topology, rr replica.ReplicaRouter) {
	reads(t, t.Context(), rr, 1)
	topo.SetDown("r1", true)
	intervals(replica.DefaultFailAfter)
	require.Equal(t, map[string]int{"r2": 50}, reads(t, t.Context(), rr, 50),
		"a replica that fails its probes must be ejected")
	topo.SetDown("r1", false)
	intervals(replica.DefaultReadmitAfter)
	require.Positive(t, reads(t, t.Context(), rr, 50)["r1"], "a replica that answers again is readmitted")
}

func allReplicasUnfitFallsBackToThePrimary(t *testing.T, topo *Topology, rr replica.ReplicaRouter) {
	reads(t, t.Context(), rr, 1)
	topo.SetDown("r1", true)
	topo.SetLag("r2", 2*MaxLag)
	intervals(replica.DefaultFailAfter)
	require.Equal(t, map[string]int{"p": 20}, reads(t, t.Context(), rr, 20))
}

func deadPrimaryFailsWritesFast(t *testing.T, topo *Topology, rr replica.ReplicaRouter) {
	_, err := rr.Writer(t.Context())
	require.NoError(t, err)
	topo.SetDown("p", true)
	intervals(replica.DefaultFailAfter)
	start := time.Now()
	_, err = rr.Writer(t.Context())
	require.ErrorIs(t, err, replica.ErrNoPrimary)
	require.Zero(t, time.Since(start), "Writer must not wait when there is no primary")
	require.Equal(t, 2, len(reads(t, t.Context(), rr, 20)), "reads carry on on the replicas")
}

func promotedReplicaTakesWrites(t *testing.T, topo *Topology, rr replica.ReplicaRouter) {
	topo.SetDown("p", true)
	intervals(replica.DefaultFailAfter)
	_, err := rr.Writer(t.Context())
	require.ErrorIs(t, err, replica.ErrNoPrimary)
	topo.Promote("r1")
	intervals(1)
	db, err := rr.Writer(t.Context())
	require.NoError(t, err, "writes must resume within one probe interval of a promotion")
	require.Equal(t, "r1", servedBy(t, db))
	require.Equal(t, map[string]int{"r2": 20}, reads(t, t.Context(), rr, 20))
}

func oldPrimaryIsFencedAfterPromotion(t *testing.T, topo *Topology, rr replica.ReplicaRouter) {
	topo.SetDown("p", true)
	topo.Promote("r1")
	intervals(replica.DefaultFailAfter)
	topo.SetDown("p", false) // back, still claiming to be primary, on an older generation
	intervals(replica.DefaultReadmitAfter + 1)
	for range 10 {
		db, err := rr.Writer(t.Context())
		require.NoError(t, err)
		require.Equal(t, "r1", servedBy(t, db), "the old primary must get no writes")
	}
	got := reads(t, t.Context(), rr, 20)
	require.Zero(t, got["p"], "the old primary must get no reads: %v", got)
}
