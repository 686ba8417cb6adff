//go:build unix

// Real-time tests in this file (real PostgreSQL servers and processes):
// TestPostgresRouting (probes of the shared primary and standby),
// TestPostgresReplayPause (replay paused on a standby, staleness measured
// by the servers' clocks), TestPostgresStandbyRestart (a standby killed
// and started again while a clone is cut off from the primary by a
// FaultProxy), TestPostgresPromotion and
// TestPostgresAutoPromote (a primary stopped or killed, a standby
// promoted), TestPostgresSlowAndHungPrimary (a FaultProxy slows the
// primary's answers, then blackholes them).

package replica_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/replica"
)

func pgRouter(t *testing.T, cfg replica.Config, primary, standby string) *replica.Router {
	t.Helper()
	cfg.Probe = new(replica.PostgreSQL)
	r, err := replica.New(cfg,
		replica.Node{Name: "a", DB: testenv.PostgresDB(t, primary)},
		replica.Node{Name: "b", DB: testenv.PostgresDB(t, standby)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// recovering runs query through d and returns the pg_is_in_recovery() it
// selects, that is whether a standby served it.
func recovering(t *testing.T, ctx context.Context, d interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, query string) bool {
	t.Helper()
	var r bool
	require.NoError(t, d.QueryRowContext(ctx, query).Scan(&r), query)
	return r
}

// TestPostgresRouting runs on the shared primary and standby of
// scripts/services.sh: the nodes are not declared, the probes find out.
func TestPostgresRouting(t *testing.T) {
	primary, standby := testenv.PGPrimaryDSN(t), testenv.PGReplicaDSN(t)
	// Given in the wrong order on purpose: roles come from the servers.
	r := pgRouter(t, replica.Config{ProbeInterval: 100 * time.Millisecond}, standby, primary)
	d, ctx := r.DB(), t.Context()
	table := "scaleout_replica_" + testenv.Prefix(t)
	_, err := d.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %q (id serial PRIMARY KEY, v text)", table))
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = testenv.PostgresDB(t, primary).Exec(fmt.Sprintf("DROP TABLE IF EXISTS %q", table)) })

	for range 10 {
		require.True(t, recovering(t, ctx, d, "SELECT pg_is_in_recovery()"), "reads land on the standby")
	}
	require.False(t, recovering(t, ctx, d, fmt.Sprintf("INSERT INTO %q (v) VALUES ('x') RETURNING pg_is_in_recovery()", table)),
		"a write sent through Query lands on the primary")
	require.False(t, recovering(t, ctx, d, fmt.Sprintf("SELECT pg_is_in_recovery() FROM %q FOR UPDATE", table)))
	require.False(t, recovering(t, replica.UsePrimary(ctx), d, "SELECT pg_is_in_recovery()"))

	tx, err := d.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.False(t, recovering(t, ctx, tx, "SELECT pg_is_in_recovery()"), "a read-write transaction runs on the primary")
	require.NoError(t, tx.Rollback())
	ro, err := d.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	require.True(t, recovering(t, ctx, ro, "SELECT pg_is_in_recovery()"), "a read-only transaction runs on the standby")
	require.NoError(t, ro.Commit())

	// Read-your-writes by LSN: a tracked read right after a write sees it,
	// from whichever node the router picks.
	for i := range 50 {
		tctx := replica.Track(ctx)
		v := fmt.Sprint("v", i)
		_, err := d.ExecContext(tctx, fmt.Sprintf("UPDATE %q SET v = $1", table), v)
		require.NoError(t, err)
		var got string
		require.NoError(t, d.QueryRowContext(tctx, fmt.Sprintf("SELECT v FROM %q", table)).Scan(&got))
		require.Equal(t, v, got, "read-your-writes")
	}

	st := r.Status()
	require.Equal(t, replica.RoleReplica, st[0].State.Role)
	require.Equal(t, replica.RolePrimary, st[1].State.Role)
	require.Positive(t, st[1].State.Generation, "the primary's timeline")
	require.True(t, st[1].Serving, "%v", st)
	// The standby may be mid-replay of the writes above, and a Router this
	// young has too few of the primary's positions to bound its lag, so
	// its replay timestamp (as old as the shared primary was idle before
	// this test) stands for it; it must serve again within a few rounds.
	require.Eventually(t, func() bool { return statusOf(r, "a").Serving }, 20*100*time.Millisecond, 10*time.Millisecond,
		"the standby never served again: %v", r.Status())
}

// TestPostgresReplayPause pauses WAL replay on a private standby while a
// writer ticks a counter on the primary, and checks that no read routed by
// the Router sees a value older than MaxLag, that the standby stops
// serving within one probe interval of passing MaxLag, and that tracked
// reads still see their own writes.
func TestPostgresReplayPause(t *testing.T) {
	pair := testenv.StartPostgresPair(t)
	const (
		maxLag   = 600 * time.Millisecond
		interval = 100 * time.Millisecond
		tick     = 40 * time.Millisecond
	)
	// ProbeTimeout is longer than the interval: this test is about
	// staleness, which is reckoned from when a probe was sent however long
	// it takes, not about how fast a dead node is noticed; two probes of
	// the primary slower than 100 ms on a loaded machine must not take it
	// out and fail the writer.
	r := pgRouter(t, replica.Config{ProbeInterval: interval, ProbeTimeout: 2 * time.Second, MaxLag: maxLag},
		pair.Primary.DSN(), pair.Standby.DSN())
	d, ctx := r.DB(), t.Context()
	standbyDB := testenv.PostgresDB(t, pair.Standby.DSN())
	b := startBeat(t, d, standbyDB, tick)

	time.Sleep(500 * time.Millisecond)
	_, err := standbyDB.ExecContext(ctx, "SELECT pg_wal_replay_pause()")
	require.NoError(t, err)
	paused := time.Now()
	t.Cleanup(func() { _, _ = standbyDB.Exec("SELECT pg_wal_replay_resume()") })

	// Read-your-writes holds while the standby is stuck.
	for i := range 20 {
		tctx := replica.Track(ctx)
		_, err := d.ExecContext(tctx, "INSERT INTO beat VALUES ($1, 0)", 1000+i)
		require.NoError(t, err)
		var n int
		require.NoError(t, d.QueryRowContext(tctx, "SELECT count(*) FROM beat WHERE id = $1", 1000+i).Scan(&n))
		require.Equal(t, 1, n, "a tracked read sees its write while replay is paused")
	}
	time.Sleep(maxLag + 5*interval)
	require.False(t, statusOf(r, "b").Serving, "the paused standby must be out of rotation")
	_, err = standbyDB.ExecContext(ctx, "SELECT pg_wal_replay_resume()")
	require.NoError(t, err)
	resumed := time.Now()
	time.Sleep(3 * interval * replica.DefaultReadmitAfter)
	reads, readErrs := b.stop()
	require.Empty(t, readErrs, "reads failed")

	var onStandby, before, afterExclusion, violations int
	var worst time.Duration
	for _, rd := range reads {
		if rd.stale > maxLag {
			violations++
		}
		worst = max(worst, rd.stale)
		if !rd.standby {
			continue
		}
		onStandby++
		if rd.start.Before(paused) {
			before++
		}
		if rd.start.After(paused.Add(maxLag+interval)) && rd.start.Before(resumed) {
			afterExclusion++
		}
	}
	t.Logf("%d reads, %d on the standby; worst staleness %v (MaxLag %v)", len(reads), onStandby, worst, maxLag)
	require.Positive(t, before, "the standby served reads before the pause")
	require.Zero(t, violations, "reads staler than MaxLag")
	require.Zero(t, afterExclusion, "the standby served reads more than one probe interval after passing MaxLag")
	require.True(t, statusOf(r, "b").Serving, "the standby is readmitted once it catches up")
}

// TestPostgresStandbyRestart kills a private standby while a writer ticks
// the counter, keeps it down for longer than MaxLag, and starts it again,
// three times, while a second Router, a clone of the service, is cut off
// from the primary. Until its WAL receiver has caught up with what it
// missed, the standby has replayed all it received and reports no lag of
// its own, and that clone knows no primary to tell it otherwise (found by
// the chaos model: reads 1.5–2.4 s stale under a 500 ms MaxLag). The
// primary's positions it saw before the cut show what the standby lacks.
// No read through either Router may be staler than MaxLag, and the
// standby must serve again once caught up.
func TestPostgresStandbyRestart(t *testing.T) {
	pair := testenv.StartPostgresPair(t)
	const (
		maxLag   = 600 * time.Millisecond
		interval = 100 * time.Millisecond
		tick     = 20 * time.Millisecond
		down     = 1500 * time.Millisecond
	)
	// ProbeTimeout as in TestPostgresReplayPause: this test is about
	// staleness, not about how fast a slow primary is taken out.
	cfg := replica.Config{ProbeInterval: interval, ProbeTimeout: 2 * time.Second, MaxLag: maxLag}
	r := pgRouter(t, cfg, pair.Primary.DSN(), pair.Standby.DSN())
	standbyDB := testenv.PostgresDB(t, pair.Standby.DSN())
	b := startBeat(t, r.DB(), standbyDB, tick)
	u, err := url.Parse(pair.Primary.DSN())
	require.NoError(t, err)
	link := testenv.StartFaultProxy(t, u.Host)
	u.Host = link.Addr()
	cut := pgRouter(t, cfg, u.String(), pair.Standby.DSN())
	b.readThrough(cut.DB(), 2, "cut")

	var restarted time.Time
	for range 3 {
		time.Sleep(time.Second) // both Routers see the primary's positions
		link.Refuse(true)
		pair.Standby.Kill()
		time.Sleep(down)
		pair.Standby.Start()
		restarted = time.Now()
		time.Sleep(down)
		link.Refuse(false)
	}
	require.Eventually(t, func() bool { return statusOf(r, "b").Serving && statusOf(cut, "b").Serving }, 10*time.Second, 10*time.Millisecond,
		"the restarted standby never served again: %v, %v", r.Status(), cut.Status())
	time.Sleep(time.Second)
	reads, readErrs := b.stop()

	var afterRestart, violations int
	var worst beatRead
	for _, rd := range reads {
		if rd.stale > maxLag {
			violations++
		}
		if rd.stale > worst.stale {
			worst = rd
		}
		if rd.standby && rd.start.After(restarted) {
			afterRestart++
		}
	}
	t.Logf("%d reads (%d failed: the standby died, the clone knew no primary), %d on the standby after its last restart; stalest %v at %v after the last restart (standby %v, via %q)",
		len(reads), len(readErrs), afterRestart, worst.stale, worst.start.Sub(restarted), worst.standby, worst.via)
	require.Zero(t, violations, "reads staler than MaxLag %v; the stalest %v, on the standby: %v, via %q", maxLag, worst.stale, worst.standby, worst.via)
	require.Positive(t, afterRestart, "the standby served no read after its restart")
}

// A beat ticks a counter on the primary through a Router every tick
// while four readers read it back through the Router, recording when
// each value was committed, by the primary's clock (its commit timestamp,
// taken just before the commit record goes into the WAL and the write
// becomes visible): a read that returns seq s is stale since s+1 was
// committed, if it was.
type beat struct {
	t            *testing.T
	wg           sync.WaitGroup
	rctx         context.Context // the readers'
	stopW, stopR context.CancelFunc
	mu           sync.Mutex
	written      map[int64]time.Time
	reads        []beatRead
	readErrs     []error // reads that failed, for the test to judge
}

// A beatRead is one read of the counter.
type beatRead struct {
	via     string // which reader: "" for startBeat's, as readThrough says
	start   time.Time
	seq     int64
	standby bool          // served by a standby
	stale   time.Duration // how long before start the value had been superseded
}

// startBeat creates the counter through d, waits until standby has it,
// and starts the writer and the readers.
func startBeat(t *testing.T, d *replica.DB, standby *sql.DB, tick time.Duration) *beat {
	t.Helper()
	ctx := t.Context()
	_, err := d.ExecContext(ctx, "CREATE TABLE beat (id int PRIMARY KEY, seq bigint NOT NULL); INSERT INTO beat VALUES (1, 0)")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return standby.QueryRowContext(ctx, "SELECT FROM beat").Scan() == nil
	}, 10*time.Second, 10*time.Millisecond, "the table never reached the standby")

	b := &beat{t: t, written: map[int64]time.Time{}}
	wctx, stopW := context.WithCancel(ctx)
	b.rctx, b.stopR = context.WithCancel(ctx)
	b.stopW = stopW
	b.wg.Go(func() {
		for seq := int64(1); wctx.Err() == nil; seq++ {
			var at time.Time
			_, err := d.ExecContext(wctx, "UPDATE beat SET seq = $1 WHERE id = 1", seq)
			if err == nil {
				err = d.QueryRowContext(replica.UsePrimary(wctx), "SELECT pg_xact_commit_timestamp(xmin) FROM beat WHERE id = 1").Scan(&at)
			}
			if err != nil {
				if wctx.Err() == nil {
					t.Errorf("writer: %v", err)
				}
				return
			}
			b.mu.Lock()
			b.written[seq] = at
			b.mu.Unlock()
			time.Sleep(tick)
		}
	})
	b.readThrough(d, 4, "")
	return b
}

// readThrough starts readers more readers through d, whose reads carry
// via.
func (b *beat) readThrough(d *replica.DB, readers int, via string) {
	for range readers {
		b.wg.Go(func() {
			for b.rctx.Err() == nil {
				rd := beatRead{via: via, start: time.Now()}
				err := d.QueryRowContext(b.rctx, "SELECT seq, pg_is_in_recovery() FROM beat WHERE id = 1").Scan(&rd.seq, &rd.standby)
				if b.rctx.Err() != nil {
					return
				}
				b.mu.Lock()
				if err != nil {
					b.readErrs = append(b.readErrs, err)
				} else {
					b.reads = append(b.reads, rd)
				}
				b.mu.Unlock()
				if err != nil {
					time.Sleep(time.Millisecond) // as a client backs off, not spinning on a refusal
				}
			}
		})
	}
}

// stop stops the writer and the readers and returns the reads, each with
// its staleness, and the errors of those that failed.
func (b *beat) stop() ([]beatRead, []error) {
	b.stopR()
	b.stopW()
	b.wg.Wait()
	for i, rd := range b.reads {
		if next, ok := b.written[rd.seq+1]; ok && next.Before(rd.start) {
			b.reads[i].stale = rd.start.Sub(next)
		}
	}
	return b.reads, b.readErrs
}

// TestPostgresPromotion stops a private primary, checks that writes fail
// fast with ErrNoPrimary, promotes the standby as an operator would, and
// measures how soon writes go to it; then restarts the old primary, which
// comes back claiming the role on the old timeline, and checks it is
// fenced.
func TestPostgresPromotion(t *testing.T) {
	pair := testenv.StartPostgresPair(t)
	const interval = 200 * time.Millisecond
	r := pgRouter(t, replica.Config{ProbeInterval: interval, MaxLag: time.Second}, pair.Primary.DSN(), pair.Standby.DSN())
	d, ctx := r.DB(), t.Context()
	port := func(ctx context.Context) (string, error) {
		var p string
		err := d.QueryRowContext(ctx, "INSERT INTO w DEFAULT VALUES RETURNING current_setting('port')").Scan(&p)
		return p, err
	}
	_, err := d.ExecContext(ctx, "CREATE TABLE w (id serial PRIMARY KEY)")
	require.NoError(t, err)
	_, primaryPort, _ := net.SplitHostPort(pair.Primary.Addr())
	_, standbyPort, _ := net.SplitHostPort(pair.Standby.Addr())
	p, err := port(ctx)
	require.NoError(t, err)
	require.Equal(t, primaryPort, p)

	pair.Primary.Stop()
	stopped := time.Now()
	var slowest time.Duration
	for {
		start := time.Now()
		_, err := d.ExecContext(ctx, "INSERT INTO w DEFAULT VALUES")
		slowest = max(slowest, time.Since(start))
		require.Error(t, err)
		if errors.Is(err, replica.ErrNoPrimary) {
			break
		}
		require.Less(t, time.Since(stopped), 10*interval, "ErrNoPrimary never came: %v", err)
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("ErrNoPrimary %v after the stop; slowest failed write %v", time.Since(stopped), slowest)
	require.Less(t, slowest, time.Second, "a write to a dead primary must fail fast, not hang")
	start := time.Now()
	_, err = d.ExecContext(ctx, "INSERT INTO w DEFAULT VALUES")
	require.ErrorIs(t, err, replica.ErrNoPrimary)
	require.Less(t, time.Since(start), 5*time.Millisecond, "ErrNoPrimary is answered without a round trip")
	require.True(t, recovering(t, ctx, d, "SELECT pg_is_in_recovery()"), "reads carry on on the standby")

	_, err = testenv.PostgresDB(t, pair.Standby.DSN()).ExecContext(ctx, "SELECT pg_promote()")
	require.NoError(t, err)
	promoted := time.Now()
	for {
		p, err := port(ctx)
		if err == nil {
			require.Equal(t, standbyPort, p)
			break
		}
		require.Less(t, time.Since(promoted), 2*time.Second, "writes must resume within 2 s of the promotion: %v", err)
		time.Sleep(10 * time.Millisecond)
	}
	resumedAfter := time.Since(promoted)
	t.Logf("writes resumed %v after pg_promote() returned", resumedAfter)
	require.LessOrEqual(t, resumedAfter, 2*time.Second)

	pair.Primary.Start() // the old primary is back, still a primary, on timeline 1
	require.Eventually(t, func() bool { return statusOf(r, "a").Healthy }, 10*time.Second, interval)
	require.True(t, statusOf(r, "a").Fenced, "the old primary must be fenced: %v", r.Status())
	for range 20 {
		p, err := port(ctx)
		require.NoError(t, err)
		require.Equal(t, standbyPort, p, "writes stay on the promoted node")
	}
}

// TestPostgresAutoPromote lets two routers' AutoPromote, sharing one
// elector store, promote the standby with pg_promote() when the primary
// is killed.
func TestPostgresAutoPromote(t *testing.T) {
	pair := testenv.StartPostgresPair(t)
	const interval = 200 * time.Millisecond
	store := failover.NewMemoryStore()
	var promotions atomic.Int32
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var routers []*replica.Router
	for i := range 2 {
		r := pgRouter(t, replica.Config{ProbeInterval: interval, MaxLag: time.Second}, pair.Primary.DSN(), pair.Standby.DSN())
		routers = append(routers, r)
		e, err := store.Candidate(failover.Config{ID: fmt.Sprint("app", i)})
		require.NoError(t, err)
		wg.Go(func() {
			_ = r.AutoPromote(ctx, replica.PromoteConfig{Elector: e, Promote: func(ctx context.Context, n replica.Node, _ *failover.Term) error {
				promotions.Add(1)
				_, err := n.DB.ExecContext(ctx, "SELECT pg_promote()")
				return err
			}})
		})
	}
	_, err := routers[0].DB().ExecContext(ctx, "CREATE TABLE w (id serial PRIMARY KEY)")
	require.NoError(t, err)
	time.Sleep(time.Second)
	require.Zero(t, promotions.Load())

	pair.Primary.Kill()
	killed := time.Now()
	for _, r := range routers {
		require.Eventually(t, func() bool {
			_, err := r.DB().ExecContext(ctx, "INSERT INTO w DEFAULT VALUES")
			return err == nil
		}, 15*time.Second, 20*time.Millisecond)
	}
	t.Logf("writes resumed %v after the kill", time.Since(killed))
	require.EqualValues(t, 1, promotions.Load(), "one promotion")
	require.True(t, statusOf(routers[1], "b").Serving)
	require.Equal(t, replica.RolePrimary, statusOf(routers[1], "b").State.Role)
}

// TestPostgresSlowAndHungPrimary puts a FaultProxy in front of the shared
// primary. Answers that take twice ProbeInterval (well within
// ProbeTimeout) leave it the primary: every write succeeds. Blackholed, it
// is taken out within Config.FailAfter's bound, ProbeInterval + FailAfter
// × (ConnectTimeout + ProbeTimeout), plus a second for a loaded machine;
// and it is used again once it answers.
func TestPostgresSlowAndHungPrimary(t *testing.T) {
	u, err := url.Parse(testenv.PGPrimaryDSN(t))
	require.NoError(t, err)
	proxy := testenv.StartFaultProxy(t, u.Host)
	u.Host = proxy.Addr()
	const interval = 100 * time.Millisecond
	r := pgRouter(t, replica.Config{ProbeInterval: interval}, u.String(), testenv.PGReplicaDSN(t))
	d, ctx := r.DB(), t.Context()
	_, err = d.ExecContext(ctx, "SELECT 1")
	require.NoError(t, err)

	const delay = interval // each way: a round trip takes 2 × ProbeInterval
	proxy.SetDelay(delay)
	var writes int
	var slowest time.Duration
	for start := time.Now(); time.Since(start) < 30*interval; writes++ {
		began := time.Now()
		_, err := d.ExecContext(ctx, "SELECT 1")
		require.NoError(t, err, "a write to a primary answering in about %v, %v after the delay began", 2*delay, time.Since(start))
		slowest = max(slowest, time.Since(began))
	}
	a := statusOf(r, "a")
	require.True(t, a.Healthy && a.Serving, "%v", a)
	require.NoError(t, a.LastErr)
	require.GreaterOrEqual(t, slowest, 2*delay, "the proxy did not slow the primary")
	t.Logf("%d writes through a primary %v away, all succeeded; slowest %v", writes, 2*delay, slowest)

	const (
		probeTimeout   = replica.DefaultProbeTimeout
		connectTimeout = 2 * probeTimeout
		bound          = interval + replica.DefaultFailAfter*(connectTimeout+probeTimeout)
	)
	proxy.SetDelay(0)
	proxy.Blackhole(true)
	hung := time.Now()
	for {
		_, err := r.Writer(ctx)
		if err != nil {
			require.ErrorIs(t, err, replica.ErrNoPrimary)
			break
		}
		require.Less(t, time.Since(hung), bound+time.Second, "a blackholed primary was still the primary %v later (bound %v + 1 s)", time.Since(hung), bound)
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(hung)
	t.Logf("a blackholed primary was taken out %v after the blackhole began (bound %v)", took, bound)
	require.GreaterOrEqual(t, took, probeTimeout, "a probe failed before ProbeTimeout")
	require.True(t, recovering(t, ctx, d, "SELECT pg_is_in_recovery()"), "reads carry on on the standby")

	proxy.Blackhole(false)
	back := time.Now()
	require.Eventually(t, func() bool {
		_, err := r.Writer(ctx)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond, "the primary never came back: %v", r.Status())
	t.Logf("the primary was back %v after the blackhole ended", time.Since(back))
}
