package replica_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/replica/replicatest"
	"github.com/scaleout/scaleout/shard"
)

const interval = replicatest.ProbeInterval

// bubble runs fn in a synctest bubble with a topology p, r1, r2 and a
// Router over it configured by cfg (Probe and ProbeInterval filled in).
func bubble(t *testing.T, cfg replica.Config, fn func(t *testing.T, topo *replicatest.Topology, r *replica.Router)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "p", "r1", "r2")
		if cfg.Probe == nil {
			cfg.Probe = topo
		}
		if cfg.ProbeInterval == 0 {
			cfg.ProbeInterval = interval
		}
		if cfg.MaxLag == 0 {
			cfg.MaxLag = time.Second
		}
		r, err := replica.New(cfg, topo.Nodes()...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		_, err = r.Writer(t.Context()) // the first probe round is in
		require.NoError(t, err)
		fn(t, topo, r)
	})
}

func wait(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// node returns who answered a query through d.
func node(t *testing.T, ctx context.Context, d *replica.DB, query string) string {
	t.Helper()
	var name string
	require.NoError(t, d.QueryRowContext(ctx, query).Scan(&name))
	return name
}

func TestDBRoutesByStatement(t *testing.T) {
	bubble(t, replica.Config{}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		ctx, d := t.Context(), r.DB()
		require.NotEqual(t, "p", node(t, ctx, d, "SELECT name FROM users WHERE id = $1"))
		require.Equal(t, "p", node(t, ctx, d, "INSERT INTO users (name) VALUES ($1) RETURNING id"))
		require.Equal(t, "p", node(t, ctx, d, "SELECT * FROM jobs WHERE state = 'new' FOR UPDATE SKIP LOCKED"))
		require.Equal(t, "p", node(t, ctx, d, "WITH moved AS (DELETE FROM a RETURNING *) SELECT count(*) FROM moved"))

		_, err := d.ExecContext(ctx, "UPDATE users SET name = $1")
		require.NoError(t, err)
		require.Contains(t, topo.Served("p"), "UPDATE users SET name = $1")

		rows, err := d.QueryContext(ctx, "SELECT 1")
		require.NoError(t, err)
		require.True(t, rows.Next())
		var name string
		require.NoError(t, rows.Scan(&name))
		require.NoError(t, rows.Close())
		require.NotEqual(t, "p", name)
	})
}

func TestTransactionsAndPreparedStatements(t *testing.T) {
	bubble(t, replica.Config{}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		ctx, d := t.Context(), r.DB()
		tx, err := d.BeginTx(ctx, nil)
		require.NoError(t, err)
		var name string
		require.NoError(t, tx.QueryRowContext(ctx, "SELECT 1").Scan(&name))
		require.Equal(t, "p", name, "a read-write transaction runs on the primary, reads included")
		require.NoError(t, tx.Commit())

		ro, err := d.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		require.NoError(t, err)
		require.NoError(t, ro.QueryRowContext(ctx, "SELECT 1").Scan(&name))
		require.NotEqual(t, "p", name, "a read-only transaction runs on a replica")
		require.NoError(t, ro.Rollback())

		w, err := d.PrepareContext(ctx, "UPDATE t SET v = $1")
		require.NoError(t, err)
		_, err = w.ExecContext(ctx, 1)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		require.Contains(t, topo.Served("p"), "UPDATE t SET v = $1")

		s, err := d.PrepareContext(ctx, "SELECT v FROM t")
		require.NoError(t, err)
		require.NoError(t, s.QueryRowContext(ctx).Scan(&name))
		require.NotEqual(t, "p", name)
		require.NoError(t, s.Close())
	})
}

func TestReadYourWritesByPosition(t *testing.T) {
	bubble(t, replica.Config{}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		d := r.DB()
		topo.Pause("r1")
		ctx := replica.Track(t.Context())
		_, err := d.ExecContext(ctx, "UPDATE t SET v = 1")
		require.NoError(t, err)
		wait(interval) // r2 reports the new position; r1 is stuck before it
		for range 20 {
			require.Equal(t, "r2", node(t, ctx, d, "SELECT v FROM t"),
				"a tracked read goes to a replica that applied the write")
		}
		untracked := map[string]bool{}
		for range 20 {
			untracked[node(t, t.Context(), d, "SELECT v FROM t")] = true
		}
		require.True(t, untracked["r1"], "untracked reads still use every fit replica")

		topo.Pause("r2")
		_, err = d.ExecContext(ctx, "UPDATE t SET v = 2")
		require.NoError(t, err)
		require.Equal(t, "p", node(t, ctx, d, "SELECT v FROM t"), "no replica has the write: the primary serves")

		mark, ok := replica.MarkOf(ctx)
		require.True(t, ok)
		text, err := mark.MarshalText()
		require.NoError(t, err)
		var back replica.Mark
		require.NoError(t, back.UnmarshalText(text))
		require.Equal(t, "p", node(t, replica.TrackFrom(t.Context(), back), d, "SELECT v FROM t"),
			"a mark carried to another request keeps the guarantee")
		topo.Resume("r2")
		wait(interval)
		require.Equal(t, "r2", node(t, replica.TrackFrom(t.Context(), back), d, "SELECT v FROM t"))
	})
}

func TestReadYourWritesWindow(t *testing.T) {
	bubble(t, replica.Config{ReadYourWrites: 3 * time.Second}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		d := r.DB()
		ctx := replica.Track(t.Context())
		// A write sent through QueryRow commits while its row is read, so
		// its position is unknown: the window covers it.
		require.Equal(t, "p", node(t, ctx, d, "INSERT INTO t VALUES (1) RETURNING id"))
		require.Equal(t, "p", node(t, ctx, d, "SELECT v FROM t"))
		wait(2 * time.Second)
		require.Equal(t, "p", node(t, ctx, d, "SELECT v FROM t"), "still inside the window")
		wait(1100 * time.Millisecond)
		require.NotEqual(t, "p", node(t, ctx, d, "SELECT v FROM t"), "after the window replicas serve again")
	})
}

// TestLagBoundedByPrimaryPositions: a replica whose probe reports the
// age of its last replayed transaction (9 s: the primary was idle before
// a burst) has nonetheless applied everything the primary had written at
// an earlier probe, so it is at most that probe's age behind and serves.
// A replica that has applied nothing since keeps its reported lag.
func TestLagBoundedByPrimaryPositions(t *testing.T) {
	cfg := replica.Config{ProbeInterval: time.Second, MaxLag: 5 * time.Second}
	bubble(t, cfg, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		d, ctx := r.DB(), t.Context()
		wait(time.Second) // a round records the primary's position
		topo.Pause("r2")
		_, err := d.ExecContext(ctx, "UPDATE t SET v = 1")
		require.NoError(t, err)
		topo.SetLag("r1", 9*time.Second) // r1 has the write, short of one more
		topo.SetLag("r2", 9*time.Second) // r2 has not even that
		require.NoError(t, r.Probe(ctx))
		r1, r2 := statusOf(r, "r1"), statusOf(r, "r2")
		require.True(t, r1.Serving, "%v", r1)
		require.LessOrEqual(t, r1.State.Lag, time.Second, "bounded by the probe a second ago")
		require.False(t, r2.Serving, "%v", r2)
		require.Equal(t, 9*time.Second, r2.State.Lag)
		for range 10 {
			require.Equal(t, "r1", node(t, ctx, d, "SELECT 1"))
		}
	})
}

// TestLagFloorFromPrimaryPositions: a replica whose receiver fell
// behind (just restarted, or cut off from the primary) has replayed all
// it received and reports no lag, while it lacks what the primary wrote
// seconds ago. The primary's positions show what it lacks: it stops
// serving once that is older than MaxLag, and serves again once it
// catches up.
func TestLagFloorFromPrimaryPositions(t *testing.T) {
	cfg := replica.Config{MaxLag: time.Second}
	bubble(t, cfg, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		d, ctx := r.DB(), t.Context()
		topo.Pause("r2") // r2 receives nothing more, and says it is current
		for range 15 {
			_, err := d.ExecContext(ctx, "UPDATE t SET v = v + 1")
			require.NoError(t, err)
			wait(interval)
		}
		r1, r2 := statusOf(r, "r1"), statusOf(r, "r2")
		require.True(t, r1.Serving, "%v", r1)
		require.False(t, r2.Serving, "r2 lacks writes %v old and reports lag %v: %v", 15*interval, r2.State.Lag, r2)
		require.Greater(t, r2.State.Lag, time.Second, "r2's lag is at least the age of the oldest write it lacks")
		for range 10 {
			require.Equal(t, "r1", node(t, ctx, d, "SELECT 1"))
		}

		topo.Resume("r2")
		wait(interval)
		r2 = statusOf(r, "r2")
		require.True(t, r2.Serving, "caught up, r2 serves again from the next probe: %v", r2)
	})
}

// TestLagWithoutPrimary: a Router that cannot reach the primary cannot
// tell a dead one from one that others still write to, so it serves a
// replica that reports itself current for MaxLag from the last primary
// position it saw it hold, then refuses; MinServing keeps one serving.
func TestLagWithoutPrimary(t *testing.T) {
	for _, floor := range []int{0, 1} {
		t.Run(fmt.Sprint("MinServing ", floor), func(t *testing.T) {
			cfg := replica.Config{MaxLag: time.Second, MinServing: floor}
			bubble(t, cfg, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
				d, ctx := r.DB(), t.Context()
				wait(2 * interval) // marks of the primary, which both replicas hold
				topo.SetDown("p", true)
				cut := time.Now()
				wait(interval)
				for range 10 {
					require.NotEqual(t, "p", node(t, ctx, d, "SELECT 1"), "replicas serve while the primary is out of sight")
				}
				wait(cfg.MaxLag)
				if floor == 0 {
					var name string
					err := d.QueryRowContext(ctx, "SELECT 1").Scan(&name)
					require.ErrorIs(t, err, replica.ErrNoPrimary,
						"%v after the primary went out of sight, past MaxLag, no replica is known to be current: %v", time.Since(cut), r.Status())
					return
				}
				require.NotEqual(t, "p", node(t, ctx, d, "SELECT 1"), "the floor keeps a replica serving")
			})
		})
	}
}

func TestStalenessBoundHoldsBetweenProbes(t *testing.T) {
	// Probes every 10 s, MaxLag 11 s: a replica probed with a lag of 9 s
	// may serve for 2 s after that probe was sent, not until the next one.
	cfg := replica.Config{ProbeInterval: 10 * time.Second, MaxLag: 11 * time.Second}
	bubble(t, cfg, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		d := r.DB()
		topo.SetLag("r1", 9*time.Second)
		topo.SetLag("r2", 9*time.Second)
		require.NoError(t, r.Probe(t.Context()))
		require.NotEqual(t, "p", node(t, t.Context(), d, "SELECT 1"))
		wait(2100 * time.Millisecond)
		require.Equal(t, "p", node(t, t.Context(), d, "SELECT 1"),
			"9 s of lag plus 2 s since the probe exceed MaxLag: no replica may serve")
		for _, s := range r.Status() {
			if s.Name != "p" {
				require.False(t, s.Serving, "%v", s)
			}
		}
	})
}

func TestStrictReadsAndFloor(t *testing.T) {
	t.Run("strict", func(t *testing.T) {
		bubble(t, replica.Config{StrictReads: true}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
			topo.SetLag("r1", time.Hour)
			topo.SetLag("r2", time.Hour)
			wait(interval)
			_, err := r.Reader(t.Context())
			require.ErrorIs(t, err, replica.ErrNoReplica)
			var name string
			err = r.DB().QueryRowContext(t.Context(), "SELECT 1").Scan(&name)
			require.ErrorIs(t, err, replica.ErrNoReplica, "the row carries the router's error")
			require.Equal(t, "p", node(t, replica.UsePrimary(t.Context()), r.DB(), "SELECT 1"))
		})
	})
	t.Run("floor", func(t *testing.T) {
		bubble(t, replica.Config{MinServing: 1}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
			topo.SetLag("r1", time.Hour)
			topo.SetLag("r2", 2*time.Second)
			wait(interval)
			for range 10 {
				require.Equal(t, "r2", node(t, t.Context(), r.DB(), "SELECT 1"),
					"the floor keeps the least lagging replica serving")
			}
			topo.SetDown("r2", true)
			wait(2 * interval)
			require.Equal(t, "r1", node(t, t.Context(), r.DB(), "SELECT 1"), "a down replica is not kept by the floor")
		})
	})
}

func TestDetachedReplica(t *testing.T) {
	bubble(t, replica.Config{}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		topo.SetDetached("r1", true)
		wait(interval)
		for range 10 {
			require.Equal(t, "r2", node(t, t.Context(), r.DB(), "SELECT 1"),
				"a replica that receives nothing while a primary is up cannot tell its staleness")
		}
	})
}

func TestBrokenConnectionTriggersProbeAndReadRetry(t *testing.T) {
	bubble(t, replica.Config{ProbeInterval: time.Hour, MaxLag: 2 * time.Hour, FailAfter: 1}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		topo.SetDown("r1", true)
		for range 10 {
			rows, err := r.DB().QueryContext(t.Context(), "SELECT 1")
			require.NoError(t, err, "a read that hits a dead replica is retried on another node")
			require.NoError(t, rows.Close())
			var from string
			require.NoError(t, r.DB().QueryRowContext(t.Context(), "SELECT 1").Scan(&from), "QueryRow's reads are retried too")
		}
		synctest.Wait()
		wait(time.Second) // the kicked probe round
		require.False(t, statusOf(r, "r1").Healthy, "the failed read brought the probe forward")

		topo.SetDown("p", true)
		_, err := r.DB().ExecContext(t.Context(), "UPDATE t SET v = 1")
		require.Error(t, err, "writes are not retried")
		wait(time.Second)
		_, err = r.DB().ExecContext(t.Context(), "UPDATE t SET v = 1")
		require.ErrorIs(t, err, replica.ErrNoPrimary)
		require.ErrorIs(t, r.DB().PingContext(t.Context()), replica.ErrNoPrimary)
	})
}

// statusOf returns the Router's view of the named node.
func statusOf(r *replica.Router, name string) replica.NodeStatus {
	for _, s := range r.Status() {
		if s.Name == name {
			return s
		}
	}
	return replica.NodeStatus{}
}

func TestMultiPrimaryWritesByKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "m1", "m2", "r")
		topo.Promote("m2")
		sh := mustRendezvous(t, "m1", "m2")
		r, err := replica.New(replica.Config{Probe: topo, ProbeInterval: interval, WriteSharder: sh}, topo.Nodes()...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		seen := map[string]string{}
		for _, key := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
			db, err := r.Writer(replica.WithKey(t.Context(), key))
			require.NoError(t, err)
			var name string
			require.NoError(t, db.QueryRowContext(t.Context(), "SELECT 1").Scan(&name))
			require.Equal(t, sh.Shard(key), name, "a key's writes go to its own primary")
			seen[name] = key
		}
		require.Len(t, seen, 2, "both primaries take writes")
		require.False(t, statusOf(r, "m1").Fenced)

		down := sh.Shard("a")
		topo.SetDown(down, true)
		wait(3 * interval)
		_, err = r.Writer(replica.WithKey(t.Context(), "a"))
		require.ErrorIs(t, err, replica.ErrNoPrimary, "a key whose primary is down is not written elsewhere, where it could conflict")
		_, err = r.Writer(t.Context())
		require.NoError(t, err, "writes without a key go to the preferred primary still up")
	})
}

func TestPreferredPrimary(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "m1", "m2", "r")
		topo.Claim("m2") // two masters of one generation
		r, err := replica.New(replica.Config{Probe: topo, ProbeInterval: interval}, topo.Nodes()...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		writer := func() string {
			t.Helper()
			db, err := r.Writer(t.Context())
			require.NoError(t, err)
			var name string
			require.NoError(t, db.QueryRowContext(t.Context(), "SELECT 1").Scan(&name))
			return name
		}
		require.Equal(t, "m1", writer(), "the first master of New's order is preferred")
		require.True(t, statusOf(r, "m2").Fenced, "the other master is held back")
		require.Equal(t, "r", node(t, t.Context(), r.DB(), "SELECT 1"), "and gets no reads")

		topo.SetDown("m1", true)
		wait(3 * interval)
		require.Equal(t, "m2", writer(), "writes fail over to the next master")
		topo.SetDown("m1", false)
		wait(5 * interval)
		require.True(t, statusOf(r, "m1").Healthy)
		require.Equal(t, "m2", writer(), "writes stay on the master that took over")
		require.True(t, statusOf(r, "m1").Fenced)
	})
}

func TestConfigErrors(t *testing.T) {
	topo := replicatest.New(t, "p", "r")
	nodes := topo.Nodes()
	for name, c := range map[string]struct {
		cfg   replica.Config
		nodes []replica.Node
	}{
		"no nodes":          {replica.Config{}, nil},
		"duplicate":         {replica.Config{}, []replica.Node{nodes[0], nodes[0]}},
		"no name":           {replica.Config{}, []replica.Node{{DB: nodes[0].DB}}},
		"no db":             {replica.Config{}, []replica.Node{{Name: "x"}}},
		"negative weight":   {replica.Config{}, []replica.Node{{Name: "x", DB: nodes[0].DB, Weight: -1}}},
		"lag under probe":   {replica.Config{Probe: topo, MaxLag: time.Second, ProbeInterval: time.Second}, nodes},
		"negative interval": {replica.Config{ProbeInterval: -1}, nodes},
		"sharder not nodes": {replica.Config{WriteSharder: mustRendezvous(t, "p", "zz")}, nodes},
	} {
		_, err := replica.New(c.cfg, c.nodes...)
		require.ErrorIs(t, err, replica.ErrInvalidConfig, name)
	}
}

func mustRendezvous(t *testing.T, names ...string) shard.Sharder {
	s, err := shard.NewRendezvous(shard.Members(names...))
	require.NoError(t, err)
	return s
}

func TestStaticTopologyAndClose(t *testing.T) {
	topo := replicatest.New(t, "p", "r1")
	r, err := replica.New(replica.Config{Balancer: balance.NewRoundRobin()}, topo.Nodes()...)
	require.NoError(t, err)
	require.Equal(t, "r1", node(t, t.Context(), r.DB(), "SELECT 1"), "declared roles hold without a Probe")
	require.Equal(t, "p", node(t, t.Context(), r.DB(), "INSERT INTO t VALUES (1) RETURNING 1"))
	require.NoError(t, r.Close())
	_, err = r.Reader(t.Context())
	require.ErrorIs(t, err, replica.ErrClosed)
	var name string
	require.ErrorIs(t, r.DB().QueryRowContext(t.Context(), "SELECT 1").Scan(&name), replica.ErrClosed)
	require.NoError(t, topo.DB("p").PingContext(t.Context()), "Close leaves the pools open")
}

func TestMarkRejectsGarbage(t *testing.T) {
	for _, s := range []string{"", "1", "x.1", "1.x", "1.-5"} {
		var m replica.Mark
		require.ErrorIs(t, m.UnmarshalText([]byte(s)), replica.ErrInvalidMark, s)
	}
	_, ok := replica.MarkOf(t.Context())
	require.False(t, ok)
}

func TestAutoPromote(t *testing.T) {
	bubble(t, replica.Config{}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		topo.Pause("r1") // r2 applied more: it must be the one promoted
		_, err := r.DB().ExecContext(t.Context(), "UPDATE t SET v = 1")
		require.NoError(t, err)
		wait(interval)

		promoted := make(chan string, 10)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		store := failover.NewMemoryStore()
		for i := range 2 { // two application servers, one elector
			e, err := store.Candidate(failover.Config{ID: fmt.Sprint("app", i)})
			require.NoError(t, err)
			go func() {
				_ = r.AutoPromote(ctx, replica.PromoteConfig{Elector: e, Promote: func(ctx context.Context, n replica.Node, term *failover.Term) error {
					require.NoError(t, term.Err(), "the hook runs while leading")
					topo.Promote(n.Name)
					promoted <- n.Name
					return nil
				}})
			}()
		}
		wait(time.Second)
		require.Empty(t, promoted, "nothing is promoted while the primary is up")

		topo.SetDown("p", true)
		start := time.Now()
		require.Equal(t, "r2", <-promoted)
		synctest.Wait() // the promoter's probe round after its hook
		require.LessOrEqual(t, time.Since(start), (replica.DefaultFailAfter+4)*interval)
		db, err := r.Writer(t.Context())
		require.NoError(t, err)
		var name string
		require.NoError(t, db.QueryRowContext(t.Context(), "SELECT 1").Scan(&name))
		require.Equal(t, "r2", name)
		wait(time.Second)
		require.Empty(t, promoted, "one promotion, by one of the two servers")
		cancel()
		synctest.Wait()
	})
}

func TestAutoPromoteNeedsElectorHookAndProbe(t *testing.T) {
	topo := replicatest.New(t, "p", "r")
	static, err := replica.New(replica.Config{}, topo.Nodes()...)
	require.NoError(t, err)
	defer static.Close()
	probed, err := replica.New(replica.Config{Probe: topo}, topo.Nodes()...)
	require.NoError(t, err)
	defer probed.Close()
	e, err := failover.NewMemoryStore().Candidate(failover.Config{})
	require.NoError(t, err)
	hook := func(context.Context, replica.Node, *failover.Term) error { return nil }

	require.ErrorIs(t, probed.AutoPromote(t.Context(), replica.PromoteConfig{Promote: hook}), replica.ErrInvalidConfig)
	require.ErrorIs(t, probed.AutoPromote(t.Context(), replica.PromoteConfig{Elector: e}), replica.ErrInvalidConfig)
	require.ErrorIs(t, static.AutoPromote(t.Context(), replica.PromoteConfig{Elector: e, Promote: hook}), replica.ErrInvalidConfig,
		"without a Probe the Router cannot see the primary go")
}

func TestP2CBalancer(t *testing.T) {
	p2c, err := balance.NewP2C(balance.P2CConfig{})
	require.NoError(t, err)
	bubble(t, replica.Config{Balancer: p2c}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		got := map[string]int{}
		for range 200 {
			got[node(t, t.Context(), r.DB(), "SELECT 1")]++
		}
		require.Zero(t, got["p"], "%v", got)
		require.Positive(t, got["r1"], "%v", got)
		require.Positive(t, got["r2"], "%v", got)
	})
}

// gatedProbe holds probes while closed, to make two rounds overlap.
type gatedProbe struct {
	inner replica.Probe
	hold  atomic.Bool
	gate  chan struct{}
}

func (g *gatedProbe) Probe(ctx context.Context, q replica.Querier) (replica.State, error) {
	if g.hold.Load() {
		st, err := g.inner.Probe(ctx, q) // what the node says now, delivered late
		<-g.gate
		return st, err
	}
	return g.inner.Probe(ctx, q)
}

// A round that started before another one but ends after it must not
// undo what the later one saw: here, the promotion a Probe call found.
func TestOlderProbeRoundDoesNotUndoNewer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		topo := replicatest.New(t, "p", "r1")
		g := &gatedProbe{inner: topo, gate: make(chan struct{})}
		r, err := replica.New(replica.Config{Probe: g, ProbeInterval: interval, MaxLag: time.Second}, topo.Nodes()...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		_, err = r.Writer(t.Context())
		require.NoError(t, err)

		topo.SetDown("p", true)
		wait(replica.DefaultFailAfter * interval) // p is out
		g.hold.Store(true)
		time.Sleep(interval) // the loop's round starts and sees r1 as a replica, held
		synctest.Wait()
		g.hold.Store(false)
		topo.Promote("r1")
		require.NoError(t, r.Probe(t.Context())) // a newer round sees the promotion
		close(g.gate)                            // the older round ends last
		synctest.Wait()
		db, err := r.Writer(t.Context())
		require.NoError(t, err, "the older round undid the promotion")
		require.Equal(t, topo.DB("r1"), db)
	})
}
