package replicatest

import (
	"context"
	"database/sql"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/kitcheck"
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
// pass it. The package doc lists its clauses. Each case runs in a
// testing/synctest bubble on a Topology of a primary "p" and replicas "r1"
// and "r2", so the timed ones take no real time.
func Run(t *testing.T, newRouter NewRouter) {
	cases := []struct {
		name string
		// setup, when set, changes the topology and the Config before the
		// Router is built.
		setup func(topo *Topology, cfg *replica.Config)
		fn    func(t *testing.T, topo *Topology, rr replica.ReplicaRouter)
	}{
		{"WritesGoToThePrimary", nil, writesGoToThePrimary},
		{"ReadsSpreadOverReplicas", nil, readsSpreadOverReplicas},
		{"UsePrimaryReadsThePrimary", nil, usePrimaryReadsThePrimary},
		{"TrackedReadsSeeTheirWrites", nil, trackedReadsSeeTheirWrites},
		{"TrackWindowReadsThePrimary", nil, trackWindowReadsThePrimary},
		{"WithKeyWritesGoToTheKeysPrimary", twoPrimaries, withKeyWritesGoToTheKeysPrimary},
		{"LaggingReplicaGetsNoReads", nil, laggingReplicaGetsNoReads},
		{"DownReplicaIsEjectedAndReadmitted", nil, downReplicaIsEjectedAndReadmitted},
		{"AllReplicasUnfitFallsBackToThePrimary", nil, allReplicasUnfitFallsBackToThePrimary},
		{"DeadPrimaryFailsWritesFast", nil, deadPrimaryFailsWritesFast},
		{"PromotedReplicaTakesWrites", nil, promotedReplicaTakesWrites},
		{"OldPrimaryIsFencedAfterPromotion", nil, oldPrimaryIsFencedAfterPromotion},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kitcheck.InBubble(t, func(t *testing.T) {
				topo := New(t, "p", "r1", "r2")
				cfg := replica.Config{Probe: topo, ProbeInterval: ProbeInterval, MaxLag: MaxLag}
				if c.setup != nil {
					c.setup(topo, &cfg)
				}
				rr := newRouter(t, topo, cfg)
				c.fn(t, topo, rr)
			})
		})
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

// write runs a write on the named node directly (as through the Router's
// Writer) and returns the topology's write position after it.
func write(t *testing.T, topo *Topology, name string) uint64 {
	t.Helper()
	_, err := topo.DB(name).ExecContext(t.Context(), "UPDATE kit SET n = n + 1")
	require.NoError(t, err)
	pos, err := topo.WritePosition(t.Context(), topo.DB(name))
	require.NoError(t, err)
	return pos
}

func trackedReadsSeeTheirWrites(t *testing.T, topo *Topology, rr replica.ReplicaRouter) {
	reads(t, t.Context(), rr, 1) // the first probe round is in
	topo.Pause("r1")
	tracked := replica.TrackFrom(t.Context(), replica.Mark{Position: write(t, topo, "p")})
	intervals(1)
	require.Equal(t, map[string]int{"r2": 20}, reads(t, tracked, rr, 20),
		"a tracked read goes to a replica that applied the write (r1 is paused before it)")
	topo.Pause("r2")
	tracked = replica.TrackFrom(t.Context(), replica.Mark{Position: write(t, topo, "p")})
	intervals(1)
	require.Equal(t, map[string]int{"p": 20}, reads(t, tracked, rr, 20),
		"a tracked read that no replica has applied goes to the primary")
	topo.Resume("r1")
	topo.Resume("r2")
	intervals(1)
	got := reads(t, tracked, rr, 40)
	require.Zero(t, got["p"], "once the replicas applied the write, tracked reads go to them: %v", got)
}

func trackWindowReadsThePrimary(t *testing.T, _ *Topology, rr replica.ReplicaRouter) {
	reads(t, t.Context(), rr, 1)
	open := replica.TrackFrom(t.Context(), replica.Mark{Until: time.Now().Add(time.Minute)})
	require.Equal(t, map[string]int{"p": 20}, reads(t, open, rr, 20),
		"within a Mark's window, reads go to the primary")
	closed := replica.TrackFrom(t.Context(), replica.Mark{Until: time.Now().Add(-time.Second)})
	got := reads(t, closed, rr, 40)
	require.Zero(t, got["p"], "after a Mark's window, reads go to the replicas again: %v", got)
}

// keyShards sends the key "on-p" to p and every other key to r1.
type keyShards struct{}

func (keyShards) Shard(key string) string {
	if key == "on-p" {
		return "p"
	}
	return "r1"
}

func (keyShards) Shards() []string { return []string{"p", "r1"} }

// twoPrimaries makes r1 a second primary of p's generation (master-master)
// and routes writes by key between them.
func twoPrimaries(topo *Topology, cfg *replica.Config) {
	topo.Claim("r1")
	cfg.WriteSharder = keyShards{}
}

func withKeyWritesGoToTheKeysPrimary(t *testing.T, topo *Topology, rr replica.ReplicaRouter) {
	for range 5 {
		for key, want := range map[string]string{"on-p": "p", "on-r1": "r1", "other": "r1"} {
			db, err := rr.Writer(replica.WithKey(t.Context(), key))
			require.NoError(t, err)
			require.Equal(t, want, servedBy(t, db), "a write with key %q goes to Shard(key)", key)
		}
	}
	db, err := rr.Writer(t.Context())
	require.NoError(t, err)
	require.Equal(t, "p", servedBy(t, db), "a write without a key goes to the preferred primary")
	topo.SetDown("r1", true)
	intervals(replica.DefaultFailAfter)
	_, err = rr.Writer(replica.WithKey(t.Context(), "on-r1"))
	require.ErrorIs(t, err, replica.ErrNoPrimary, "a key whose primary is down is not written elsewhere")
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
