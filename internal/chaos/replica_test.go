//go:build unix

package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/replica"
)

// The replica model runs on PostgreSQL only: a private primary with a
// streaming standby (testenv.StartPostgresPair), which the run may pause
// (WAL replay paused: the standby falls behind while answering) and kill.
// replica/replicatest's Topology, the package's in-memory fake, holds no
// data (every statement answers the node's name), so there is no in-memory
// backend to run a counter workload on.
const (
	replicaProbeInterval = 100 * time.Millisecond
	replicaMaxLag        = 500 * time.Millisecond
	// replicaMargin is clause 2's load margin (see the model in
	// replica.go): what lies between a commit timestamp and the WAL
	// reaching the standby, a few scheduling delays of a loaded machine.
	replicaMargin   = 250 * time.Millisecond
	replicaSessions = 4
)

var replicaBounds = ReplicaBounds{Replica: replicaMaxLag + replicaMargin, Primary: replicaMargin, MaxLag: replicaMaxLag}

func replicaConfig(strict bool) replica.Config {
	return replica.Config{ProbeInterval: replicaProbeInterval, MaxLag: replicaMaxLag, StrictReads: strict}
}

// replicaPgQuery matches the requests of a pgx connection that run a
// statement (simple Query, or the extended protocol's Parse or Bind),
// not its startup and authentication, which a lost reply would only turn
// into a failed connection.
func replicaPgQuery(req []byte) bool {
	return len(req) > 0 && (req[0] == 'Q' || req[0] == 'P' || req[0] == 'B')
}

// replicaStandby is the pair's standby as a Process: a pause pauses its
// WAL replay (it keeps answering, with older and older data), a kill
// kills every process of the server, a restart starts it again.
type replicaStandby struct {
	t   testing.TB
	srv *testenv.PostgresServer
	db  *sql.DB // straight to the server, no proxy

	h      *History // the run's, for the times of events
	mu     sync.Mutex
	events []string // the faults, with their times on h's clock
}

func (s *replicaStandby) event(what string) {
	if s.h == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, fmt.Sprintf("%s at %s", what, replicaMs(s.h.Now())))
}

func (s *replicaStandby) exec(query string) error {
	var err error
	for range 3 { // a pooled connection may be dead since a kill
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = s.db.ExecContext(ctx, query)
		cancel()
		if err == nil {
			return nil
		}
	}
	s.t.Logf("replica chaos: standby: %s: %v", query, err)
	return err
}

func (s *replicaStandby) Pause()   { s.event("pause"); _ = s.exec("SELECT pg_wal_replay_pause()") }
func (s *replicaStandby) Resume()  { _ = s.exec("SELECT pg_wal_replay_resume()"); s.event("resumed") }
func (s *replicaStandby) Kill()    { s.event("kill"); s.srv.Kill() }
func (s *replicaStandby) Restart() { s.srv.Start(); s.event("restarted") }

// heal resumes replay and waits until the standby has replayed all the
// primary had written, so that nothing of a run is left broken.
func (s *replicaStandby) heal(t testing.TB, primary *sql.DB) {
	t.Helper()
	if err := s.exec("SELECT pg_wal_replay_resume()"); err != nil {
		t.Errorf("replica chaos: resuming the standby's replay: %v", err)
		return
	}
	var lsn string
	if err := primary.QueryRowContext(t.Context(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		t.Errorf("replica chaos: primary position: %v", err)
		return
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var caught bool
		err := s.db.QueryRowContext(t.Context(), "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", lsn).Scan(&caught)
		if err == nil && caught {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("replica chaos: the standby did not replay up to %s within 10s (last error %v)", lsn, err)
			return
		}
	}
}

// replicaPair starts a private primary and standby, and heals the standby
// in t.Cleanup.
func replicaPair(t *testing.T) (*testenv.PostgresPair, *sql.DB, *replicaStandby) {
	pair := testenv.StartPostgresPair(t)
	primary := testenv.PostgresDB(t, pair.Primary.DSN())
	standby := &replicaStandby{t: t, srv: pair.Standby, db: testenv.PostgresDB(t, pair.Standby.DSN())}
	t.Cleanup(func() { _ = standby.exec("SELECT pg_wal_replay_resume()") })
	return pair, primary, standby
}

// replicaTable creates the run's tables on the primary and waits until
// the standby has them.
func replicaTable(t *testing.T, primary *sql.DB, standby *replicaStandby, name string) string {
	t.Helper()
	if _, err := primary.ExecContext(t.Context(), ReplicaSchema(name, replicaSessions)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var n int
		err := standby.db.QueryRowContext(t.Context(), fmt.Sprintf("SELECT count(*) FROM %q", name)).Scan(&n)
		if err == nil && n == replicaSessions {
			return name
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica chaos: table %s never reached the standby: %v", name, err)
		}
	}
}

// replicaClones builds a clone per config: a Router of its own over the
// pair, reaching each server through a FaultProxy of its own, so that a
// fault can cut one clone off one server.
func replicaClones(t *testing.T, pair *testenv.PostgresPair, cfgs ...replica.Config) ([]ReplicaClone, []*testenv.FaultProxy) {
	t.Helper()
	var clones []ReplicaClone
	var links []*testenv.FaultProxy
	for _, cfg := range cfgs {
		var nodes []replica.Node
		for _, srv := range []*testenv.PostgresServer{pair.Primary, pair.Standby} {
			p := testenv.StartFaultProxy(t, srv.Addr())
			u, err := url.Parse(srv.DSN())
			if err != nil {
				t.Fatal(err)
			}
			u.Host = p.Addr()
			nodes = append(nodes, replica.Node{Name: srv.Addr(), DB: testenv.PostgresDB(t, u.String())})
			links = append(links, p)
		}
		cfg.Probe = new(replica.PostgreSQL)
		r, err := replica.New(cfg, nodes...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		clones = append(clones, ReplicaClone{DB: r.DB(), Strict: cfg.StrictReads})
	}
	return clones, links
}

// replicaCheck reads the commits and checks the history.
func replicaCheck(t *testing.T, w *ReplicaWorkload, primary *sql.DB, standbyEvents []string) (string, ReplicaReport, int) {
	t.Helper()
	commits, err := w.Commits(t.Context(), primary)
	if err != nil {
		t.Fatalf("replica chaos: reading the commits: %v", err)
	}
	ops := w.H.Ops()
	began := time.Now()
	rep := checkReplica(ops, commits, replicaBounds)
	t.Logf("checked in %v: %d operations, %d commits, %d reads (%d on the standby, %d refused; failed reads by kind: %v); stalest read on the standby %v, on the primary %v (bounds %v, %v)",
		time.Since(began),
		len(ops), len(commits), rep.Reads, rep.StandbyReads, rep.Refused, rep.Failed, rep.WorstReplica, rep.WorstPrimary, replicaBounds.Replica, replicaBounds.Primary)
	t.Logf("stalest read on the standby: %s; %d reads on the standby were staler than MaxLag %v (within the margin)", rep.WorstRead, rep.OverMaxLag, replicaMaxLag)
	if len(standbyEvents) > 0 {
		t.Logf("standby faults: %s", strings.Join(standbyEvents, ", "))
	}
	return CheckReplica(ops, commits, replicaBounds), rep, len(ops)
}

// TestReplicaChaos runs the replica model on PostgreSQL: two clones (one
// with StrictReads), each a Router over the primary and the standby
// through proxies of its own, while the schedule breaks the links and
// pauses or kills the standby.
func TestReplicaChaos(t *testing.T) {
	startModel(t)
	d := runTime(1)
	t.Run("postgresql", func(t *testing.T) {
		pair, primary, standby := replicaPair(t)
		s := seed(t)
		table := replicaTable(t, primary, standby, "replica_chaos")
		clones, links := replicaClones(t, pair, replicaConfig(false), replicaConfig(true))
		w := NewReplicaWorkload(clones, replicaSessions, table, s)
		standby.h = w.H
		sched := NewSchedule(s, links, []Process{standby}, replicaPgQuery)
		// Faults closer together than the default, so that a 6s run
		// reaches the standby's pauses and kills, not only the links.
		sched.Quiet = 200 * time.Millisecond
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), d)
		defer cancel()
		driven := make(chan struct{})
		go func() { defer close(driven); w.Drive(ctx) }()
		// Whatever the seed draws, every run has the standby fall behind
		// for longer than the bound once, a third of the way in.
		paused := make(chan struct{})
		go func() {
			defer close(paused)
			if sleep(ctx, d/3) {
				standby.Pause()
				sleep(ctx, replicaBounds.Replica+500*time.Millisecond)
				standby.Resume()
			}
		}()
		sched.Run(ctx) // on the test's goroutine: it restarts the standby
		<-driven
		<-paused
		t.Logf("ran %v", time.Since(start))
		standby.heal(t, primary)
		violation, rep, n := replicaCheck(t, w, primary, standby.events)
		if rep.StandbyReads == 0 {
			t.Errorf("no read was served by the standby: the run checked nothing of the lag bound")
		}
		record(t, result{model: "replica", backend: "postgresql (primary + streaming standby)", seed: s, ops: n,
			faults: sched.String(), violation: violation, took: time.Since(start)})
	})
}

// replicaForgetsMark is a mutant router: its reads drop the context's
// values, so a tracked read is routed as an untracked one.
type replicaForgetsMark struct{ ReplicaDB }

func (m replicaForgetsMark) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return m.ReplicaDB.QueryRowContext(replicaValueless{ctx}, query, args...)
}

// replicaValueless has its context's deadline and cancellation, and none
// of its values.
type replicaValueless struct{ context.Context }

func (replicaValueless) Value(any) any { return nil }

// TestReplicaChaosCatchesBrokenRouters runs the workload, with the
// standby's replay paused, through routers that break a clause, and
// requires the checker to report that clause: a router whose tracked reads
// ignore the mark (clause 1), and a Router with MinServing 1, which the
// docs say keeps a replica serving past MaxLag (clause 2).
func TestReplicaChaosCatchesBrokenRouters(t *testing.T) {
	pair, primary, standby := replicaPair(t)
	for i, tc := range []struct {
		name   string
		cfg    replica.Config
		wrap   func(ReplicaDB) ReplicaDB
		clause string
	}{
		{"tracked reads ignore the mark", replicaConfig(false), func(d ReplicaDB) ReplicaDB { return replicaForgetsMark{d} }, "clause 1"},
		{"MinServing keeps a stale replica serving", replica.Config{ProbeInterval: replicaProbeInterval, MaxLag: replicaMaxLag, MinServing: 1},
			func(d ReplicaDB) ReplicaDB { return d }, "clause 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := replicaTable(t, primary, standby, fmt.Sprint("replica_mutant_", i))
			clones, _ := replicaClones(t, pair, tc.cfg)
			clones[0].DB = tc.wrap(clones[0].DB)
			w := NewReplicaWorkload(clones, replicaSessions, table, uint64(i)+1)
			// Replay runs for a moment, so that the standby serves, then
			// stays paused for longer than MaxLag and the margin.
			ctx, cancel := context.WithTimeout(t.Context(), replicaMaxLag+replicaMargin+1500*time.Millisecond)
			defer cancel()
			driven := make(chan struct{})
			go func() { defer close(driven); w.Drive(ctx) }()
			time.Sleep(300 * time.Millisecond)
			standby.Pause()
			<-driven
			standby.heal(t, primary)
			violation, _, _ := replicaCheck(t, w, primary, nil)
			t.Logf("the checker printed: %s", violation)
			if !strings.Contains(violation, tc.clause) {
				t.Errorf("the checker did not report %s for a router broken in it; it printed %q", tc.clause, violation)
			}
		})
	}
}
