package impls

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/bxcodec/dbresolver/v2"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/scaleout/scaleout/bench/impls/nopsql"
	"github.com/scaleout/scaleout/replica"
)

// Replica benchmark targets: one statement per op, through a bare *sql.DB,
// through scaleout's replica.DB (static roles, or a Probe) and through
// bxcodec/dbresolver/v2, all over the same pools. The compare program
// keys its ratios and targets on these names.
const (
	ReplicaBare       = "bare *sql.DB"
	ReplicaStatic     = "scaleout replica.DB (static)"
	ReplicaProbed     = "scaleout replica.DB (probe)"
	ReplicaDBResolver = "bxcodec/dbresolver/v2"

	ReplicaOpQueryRow = "QueryRowContext + Scan"
	ReplicaOpQuery    = "QueryContext + Next/Scan + Close"
	ReplicaOpExec     = "ExecContext (UPDATE)"

	ReplicaBackendNop = "nopsql"
	ReplicaBackendPG  = "postgres"

	// PGPrimaryEnv and PGReplicaEnv name the PostgreSQL primary and
	// streaming standby (eval "$(../scripts/services.sh env)").
	PGPrimaryEnv = "SCALEOUT_PG_PRIMARY_DSN"
	PGReplicaEnv = "SCALEOUT_PG_REPLICA_DSN"

	// ReplicaNopReplicas is how many replica pools the nopsql backend has.
	ReplicaNopReplicas = 2

	// ReplicaID is the id every read and write names; 42 boxes into an
	// any without allocating, as every small integer does.
	ReplicaID = 42
)

// ReplicaQuerier is what the targets have in common: the statement
// methods of *sql.DB.
type ReplicaQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

var (
	_ ReplicaQuerier = (*sql.DB)(nil)
	_ ReplicaQuerier = (*replica.DB)(nil)
	_ ReplicaQuerier = dbresolver.DB(nil)
)

// ReplicaTarget is one way of running the statements.
type ReplicaTarget struct {
	Name   string
	Bench  string // sub-benchmark name
	Ours   bool
	Config string
	DB     ReplicaQuerier
}

// ReplicaOp is one statement shape.
type ReplicaOp struct {
	Name  string
	Bench string
	run   func(ctx context.Context, db ReplicaQuerier, e *ReplicaEnv, args []any, v *int64) error
}

var (
	replicaQueryRow = ReplicaOp{Name: ReplicaOpQueryRow, Bench: "QueryRow",
		run: func(ctx context.Context, db ReplicaQuerier, e *ReplicaEnv, args []any, v *int64) error {
			return db.QueryRowContext(ctx, e.Select, args...).Scan(v)
		}}
	replicaQuery = ReplicaOp{Name: ReplicaOpQuery, Bench: "Query",
		run: func(ctx context.Context, db ReplicaQuerier, e *ReplicaEnv, args []any, v *int64) error {
			rows, err := db.QueryContext(ctx, e.Select, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				if err := rows.Scan(v); err != nil {
					_ = rows.Close()
					return err
				}
			}
			if err := rows.Err(); err != nil {
				_ = rows.Close()
				return err
			}
			return rows.Close()
		}}
	replicaExec = ReplicaOp{Name: ReplicaOpExec, Bench: "Exec",
		run: func(ctx context.Context, db ReplicaQuerier, e *ReplicaEnv, args []any, _ *int64) error {
			_, err := db.ExecContext(ctx, e.Update, args...)
			return err
		}}
)

// ReplicaEnv is a primary and its replicas, as pools, and the targets
// over them.
type ReplicaEnv struct {
	Backend string
	Select  string // the read
	Update  string // the write; "" when the backend runs no writes
	Ops     []ReplicaOp
	Targets []ReplicaTarget
	// Replicas is how many replica pools the routed targets spread reads
	// over; the bare target uses the first of them alone.
	Replicas int

	closers []func() error
}

// Close closes the routers, drops what the env created and closes the
// pools.
func (e *ReplicaEnv) Close() error {
	var errs []error
	for i := len(e.closers) - 1; i >= 0; i-- {
		errs = append(errs, e.closers[i]())
	}
	e.closers = nil
	return errors.Join(errs...)
}

// replicaIdle is the idle connections each pool keeps: more than the
// RunParallel goroutines, so no benchmark opens a connection as it goes.
func replicaIdle() int { return 4*runtime.GOMAXPROCS(0) + 8 }

// fakeProbe answers every probe with a fixed State per node name.
type fakeProbe map[string]replica.State

func (p fakeProbe) Probe(ctx context.Context, _ replica.Querier) (replica.State, error) {
	name, _ := replica.ProbedNode(ctx)
	st, ok := p[name]
	if !ok {
		return replica.State{}, errors.New("fake probe: unknown node")
	}
	return st, nil
}

// NewReplicaNop builds the targets over three nopsql pools (a primary and
// two replicas).
func NewReplicaNop() (*ReplicaEnv, error) {
	e := &ReplicaEnv{
		Backend:  ReplicaBackendNop,
		Select:   "SELECT v FROM t WHERE id = $1",
		Update:   "UPDATE t SET v = v + 1 WHERE id = $1",
		Ops:      []ReplicaOp{replicaQueryRow, replicaQuery, replicaExec},
		Replicas: 2,
	}
	primary, r1, r2 := nopsql.Open(replicaIdle()), nopsql.Open(replicaIdle()), nopsql.Open(replicaIdle())
	for _, db := range []*sql.DB{primary, r1, r2} {
		e.closers = append(e.closers, db.Close)
	}
	probe := fakeProbe{ // the node names build gives
		"primary":   {Role: replica.RolePrimary, Position: 1000, Generation: 1},
		"replica-1": {Role: replica.RoleReplica, Position: 990, Lag: time.Millisecond},
		"replica-2": {Role: replica.RoleReplica, Position: 995, Lag: 2 * time.Millisecond},
	}
	if err := e.build(primary, []*sql.DB{r1, r2}, replica.Config{Probe: probe, MaxLag: time.Hour},
		"fake Probe (fixed States: replicas 1 ms and 2 ms behind), MaxLag 1h"); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

// ErrReplicaPGUnset is returned by NewReplicaPG when PGPrimaryEnv or
// PGReplicaEnv is unset.
var ErrReplicaPGUnset = fmt.Errorf("$%s or $%s unset", PGPrimaryEnv, PGReplicaEnv)

// NewReplicaPG builds the targets over the PostgreSQL primary and standby
// of PGPrimaryEnv and PGReplicaEnv, through pgx's database/sql driver,
// with a one-row table of its own (dropped by Close). Only the read runs.
func NewReplicaPG(ctx context.Context) (*ReplicaEnv, error) {
	pdsn, rdsn := os.Getenv(PGPrimaryEnv), os.Getenv(PGReplicaEnv)
	if pdsn == "" || rdsn == "" {
		return nil, ErrReplicaPGUnset
	}
	table := fmt.Sprintf("scaleout_bench_replica_%d", os.Getpid())
	e := &ReplicaEnv{
		Backend:  ReplicaBackendPG,
		Select:   "SELECT v FROM " + table + " WHERE id = $1",
		Ops:      []ReplicaOp{replicaQueryRow},
		Replicas: 1,
	}
	open := func(dsn string) (*sql.DB, error) {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, err
		}
		db.SetMaxIdleConns(replicaIdle())
		e.closers = append(e.closers, db.Close)
		return db, db.PingContext(ctx)
	}
	fail := func(err error) (*ReplicaEnv, error) {
		_ = e.Close()
		return nil, err
	}
	primary, err := open(pdsn)
	if err != nil {
		return fail(fmt.Errorf("primary: %w", err))
	}
	standby, err := open(rdsn)
	if err != nil {
		return fail(fmt.Errorf("standby: %w", err))
	}
	if _, err := primary.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+table+" (id int PRIMARY KEY, v int8 NOT NULL)"); err != nil {
		return fail(err)
	}
	e.closers = append(e.closers, func() error {
		_, err := primary.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table)
		return err
	})
	if _, err := primary.ExecContext(ctx, "INSERT INTO "+table+" VALUES ($1, 1) ON CONFLICT DO NOTHING", ReplicaID); err != nil {
		return fail(err)
	}
	// Wait for the standby to replay the row.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var v int64
		err := standby.QueryRowContext(ctx, e.Select, ReplicaID).Scan(&v)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("standby has not replayed the benchmark row: %w", err))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.build(primary, []*sql.DB{standby}, replica.Config{Probe: new(replica.PostgreSQL)},
		"new(replica.PostgreSQL) probe, defaults (ProbeInterval 1s, MaxLag 10s)"); err != nil {
		return fail(err)
	}
	return e, nil
}

// build adds the four targets over primary and replicas, and checks that
// every routed one sends the read to a replica.
func (e *ReplicaEnv) build(primary *sql.DB, replicas []*sql.DB, probed replica.Config, probedDesc string) error {
	e.Targets = append(e.Targets, ReplicaTarget{Name: ReplicaBare, Bench: "bare", DB: replicas[0],
		Config: "the first replica's *sql.DB, called directly (one pool, no routing)"})

	nodes := func() []replica.Node {
		ns := []replica.Node{{Name: "primary", DB: primary, Role: replica.RolePrimary}}
		for i, db := range replicas {
			ns = append(ns, replica.Node{Name: fmt.Sprintf("replica-%d", i+1), DB: db, Role: replica.RoleReplica})
		}
		return ns
	}
	ctx := context.Background()
	for _, t := range []struct {
		name, bench, desc string
		cfg               replica.Config
	}{
		{ReplicaStatic, "scaleout-static", "replica.Config{} (no Probe: declared roles), round robin over the replicas", replica.Config{}},
		{ReplicaProbed, "scaleout-probe", probedDesc + ", round robin over the replicas", probed},
	} {
		r, err := replica.New(t.cfg, nodes()...)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		e.closers = append(e.closers, r.Close)
		// The first Reader waits for the first probe round.
		for range len(replicas) {
			db, err := r.Reader(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if db == primary {
				return fmt.Errorf("%s: reads go to the primary: %v", t.name, r.Status())
			}
		}
		e.Targets = append(e.Targets, ReplicaTarget{Name: t.name, Bench: t.bench, Ours: true, Config: t.desc, DB: r.DB()})
	}

	res := dbresolver.New(dbresolver.WithPrimaryDBs(primary), dbresolver.WithReplicaDBs(replicas...))
	if len(res.ReplicaDBs()) != len(replicas) {
		return fmt.Errorf("%s: replicas not set", ReplicaDBResolver)
	}
	e.Targets = append(e.Targets, ReplicaTarget{Name: ReplicaDBResolver, Bench: "dbresolver", DB: res,
		Config: "dbresolver.New(WithPrimaryDBs(primary), WithReplicaDBs(replicas...)), defaults (round robin, " +
			"DefaultQueryTypeChecker); its Close is not called, as it would close the shared pools"})
	return nil
}

// Body returns the benchmark of op on t: serial with b.Loop, or under
// b.RunParallel. Every call passes one preallocated argument slice, so
// no target pays for building a variadic slice.
func (e *ReplicaEnv) Body(t ReplicaTarget, op ReplicaOp, parallel bool) func(*testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				args := []any{ReplicaID}
				v := new(int64)
				for pb.Next() {
					if err := op.run(ctx, t.DB, e, args, v); err != nil {
						b.Error(err)
						return
					}
				}
			})
			return
		}
		args := []any{ReplicaID}
		v := new(int64)
		for b.Loop() {
			if err := op.run(ctx, t.DB, e, args, v); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// ReplicaMetric is the unit under which Interleaved reports the median
// ns of one call through target bench; ReplicaMeanMetric the mean.
func ReplicaMetric(bench string) string { return bench + "-ns/op" }

// ReplicaMeanMetric: see ReplicaMetric.
func ReplicaMeanMetric(bench string) string { return bench + "-mean-ns/op" }

// Interleaved returns a serial benchmark that, in every iteration, runs
// op once through each target in turn (the starting target rotating
// every iteration, to remove order bias), timing each call alone. It
// reports each target's median ns per call as ReplicaMetric(t.Bench) and
// its mean as ReplicaMeanMetric(t.Bench): the targets share every stretch
// of the machine, so their differences are the routing, not the windows
// they ran in. The median leaves out the calls a GC pause or a
// preemption landed on, which move the mean by hundreds of ns on a
// shared machine. Its own ns/op is a whole iteration.
func (e *ReplicaEnv) Interleaved(op ReplicaOp) func(*testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		args := []any{ReplicaID}
		v := new(int64)
		n := len(e.Targets)
		sums := make([]time.Duration, n)
		hists := make([]durHist, n)
		iters := 0
		b.ReportAllocs()
		for b.Loop() {
			for k := range n {
				j := (iters + k) % n
				t0 := time.Now()
				err := op.run(ctx, e.Targets[j].DB, e, args, v)
				d := time.Since(t0)
				sums[j] += d
				hists[j].add(d)
				if err != nil {
					b.Fatalf("%s: %v", e.Targets[j].Name, err)
				}
			}
			iters++
		}
		for j, t := range e.Targets {
			b.ReportMetric(hists[j].median(), ReplicaMetric(t.Bench))
			b.ReportMetric(float64(sums[j].Nanoseconds())/float64(iters), ReplicaMeanMetric(t.Bench))
		}
	}
}

// durHist is a histogram of call durations: 1 ns buckets up to
// durHistFine, 64 ns buckets above, to durHistMax (longer calls count in
// the last bucket).
type durHist struct {
	counts []uint32
	n      int
}

const (
	durHistFine   = 1 << 14
	durHistCoarse = 64
	durHistMax    = 4_000_000
)

func durHistBucket(ns int64) int {
	if ns < durHistFine {
		return int(max(ns, 0))
	}
	return durHistFine + int((min(ns, durHistMax)-durHistFine)/durHistCoarse)
}

func (h *durHist) add(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]uint32, durHistBucket(durHistMax)+1)
	}
	h.counts[durHistBucket(int64(d))]++
	h.n++
}

// median returns the median duration in ns (a bucket's lower bound, plus
// half a bucket above durHistFine).
func (h *durHist) median() float64 {
	seen := 0
	for i, c := range h.counts {
		seen += int(c)
		if 2*seen >= h.n && h.n > 0 {
			if i < durHistFine {
				return float64(i)
			}
			return float64(durHistFine+(i-durHistFine)*durHistCoarse) + durHistCoarse/2
		}
	}
	return 0
}
