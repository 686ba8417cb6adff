package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/scaleout/scaleout/bench/impls"
)

// Replica routing targets, from the replica package's issue: the routing
// overhead of a statement through replica.DB over the same statement on a
// bare *sql.DB.
const (
	replicaOverheadNsTarget  = 1000.0
	replicaExtraAllocsTarget = 2
)

const (
	replicaSerial   = false
	replicaParallel = true
)

// replicaBackend is one set of pools (nopsql or PostgreSQL) and its
// measurements.
type replicaBackend struct {
	name string
	env  *impls.ReplicaEnv // nil once closed
	skip string            // why it was not measured; "" when it was
	// targets are env's, kept for the report after env is closed.
	targets []impls.ReplicaTarget

	rows []*replicaRow
	il   []*replicaIL // one per op
}

// replicaRow is one op, mode and target.
type replicaRow struct {
	op       impls.ReplicaOp
	parallel bool
	t        impls.ReplicaTarget
	ns       []float64 // ns/op of each run
	allocs   []int64   // allocs/op of each run
	bytes    []int64   // B/op of each run
}

func (r *replicaRow) mode() string {
	if r.parallel {
		return "parallel"
	}
	return "serial"
}

// replicaIL is the interleaved measurement of one op.
type replicaIL struct {
	op    impls.ReplicaOp
	extra []map[string]float64 // the reported metrics of each run
}

// buildReplica sets up the nopsql pools and, when its environment is set,
// the PostgreSQL ones; a set PostgreSQL that cannot be set up is an error.
func (c *comparison) buildReplica() error {
	nop, err := impls.NewReplicaNop()
	if err != nil {
		return fmt.Errorf("replica benchmarks, nopsql: %w", err)
	}
	c.replicaBackends = append(c.replicaBackends, newReplicaBackend(nop))
	logf("replica benchmarks: setting up PostgreSQL")
	pg, err := impls.NewReplicaPG(context.Background())
	switch {
	case errors.Is(err, impls.ErrReplicaPGUnset):
		c.replicaBackends = append(c.replicaBackends, &replicaBackend{name: impls.ReplicaBackendPG, skip: err.Error()})
		logf("replica benchmarks: %v: PostgreSQL rows not measured", err)
	case err != nil:
		return fmt.Errorf("replica benchmarks, postgres: %w", err)
	default:
		c.replicaBackends = append(c.replicaBackends, newReplicaBackend(pg))
	}
	return nil
}

func newReplicaBackend(env *impls.ReplicaEnv) *replicaBackend {
	be := &replicaBackend{name: env.Backend, env: env, targets: env.Targets}
	for _, op := range env.Ops {
		be.il = append(be.il, &replicaIL{op: op})
		for _, parallel := range []bool{replicaSerial, replicaParallel} {
			for _, t := range env.Targets {
				be.rows = append(be.rows, &replicaRow{op: op, parallel: parallel, t: t})
			}
		}
	}
	return be
}

// closeReplica closes the routers and pools and drops the PostgreSQL
// table.
func (c *comparison) closeReplica() {
	for _, be := range c.replicaBackends {
		if be.env != nil {
			if err := be.env.Close(); err != nil {
				logf("replica benchmarks: cleaning up %s: %v", be.name, err)
			}
			be.env = nil
		}
	}
}

// replicas runs every replica benchmark c.runs times, interleaved like
// the lookups: run, then backend, then op (its interleaved measurement,
// then each mode and target).
func (c *comparison) replicas() {
	bench := func(what string, body func(*testing.B)) testing.BenchmarkResult {
		res := testing.Benchmark(body)
		if res.N == 0 {
			c.closeReplica()
			fatal(fmt.Errorf("replica benchmark %s failed", what))
		}
		return res
	}
	for r := range c.runs {
		logf("replica benchmarks: run %d of %d", r+1, c.runs)
		for _, be := range c.replicaBackends {
			if be.skip != "" {
				continue
			}
			for _, il := range be.il {
				res := bench(be.name+" interleaved "+il.op.Bench, be.env.Interleaved(il.op))
				il.extra = append(il.extra, res.Extra)
				for _, row := range be.rows {
					if row.op.Bench != il.op.Bench {
						continue
					}
					res := bench(fmt.Sprintf("%s %s %s %s", be.name, row.op.Bench, row.mode(), row.t.Bench),
						be.env.Body(row.t, row.op, row.parallel))
					row.ns = append(row.ns, float64(res.T.Nanoseconds())/float64(res.N))
					row.allocs = append(row.allocs, res.AllocsPerOp())
					row.bytes = append(row.bytes, res.AllocedBytesPerOp())
				}
			}
		}
	}
}

// row returns the backend's row of op, mode and target name, nil if none.
func (be *replicaBackend) row(op string, parallel bool, name string) *replicaRow {
	for _, r := range be.rows {
		if r.op.Bench == op && r.parallel == parallel && r.t.Name == name {
			return r
		}
	}
	return nil
}

// ilMetric returns metric of each interleaved run of il, or nil when one
// run lacks it.
func ilMetric(il *replicaIL, metric string) []float64 {
	var xs []float64
	for _, ex := range il.extra {
		x, ok := ex[metric]
		if !ok {
			return nil
		}
		xs = append(xs, x)
	}
	return xs
}

// ilPerRun combines the median per call of two targets run by run.
func ilPerRun(il *replicaIL, a, b string, f func(a, b float64) float64) []float64 {
	xa, xb := ilMetric(il, impls.ReplicaMetric(a)), ilMetric(il, impls.ReplicaMetric(b))
	if xa == nil || xb == nil || len(xa) != len(xb) {
		return nil
	}
	out := make([]float64, len(xa))
	for i := range xa {
		out[i] = f(xa[i], xb[i])
	}
	return out
}

func (be *replicaBackend) benchOf(name string) string {
	for _, t := range be.targets {
		if t.Name == name {
			return t.Bench
		}
	}
	return ""
}

// reportReplica writes the replica section and returns its checks.
func (c *comparison) reportReplica(body *strings.Builder) []check {
	var all []check
	fmt.Fprintf(body, "## Replica routing\n\n")
	fmt.Fprintf(body, "One statement per op through a bare `*sql.DB` (the first replica's pool, called directly), through "+
		"scaleout's `replica.DB` (static roles, and with a Probe so the lag check runs) and through bxcodec/dbresolver/v2, all "+
		"over the same pools: a primary and %d replicas of `bench/impls/nopsql`, an in-memory database/sql driver that answers "+
		"every query with one row of one int column without I/O (so the bare row is database/sql's own cost and the rest is "+
		"routing), and, when $%s and $%s are set, a PostgreSQL primary and streaming standby on loopback through pgx's "+
		"database/sql driver (read only; `new(replica.PostgreSQL)` probe). Ops: `QueryRowContext(…).Scan` and `QueryContext` + "+
		"`Next`/`Scan` + `Close` of `SELECT v FROM t WHERE id = $1`, `ExecContext` of an `UPDATE`; every call passes one "+
		"preallocated argument slice. Serial rows use `b.Loop`; parallel rows `b.RunParallel` with GOMAXPROCS %d goroutines "+
		"(the bare row then crowds one pool where the routers spread reads over the replicas' pools: compare parallel rows "+
		"with care). Median of %d runs, %s each, interleaved across implementations; the range is min–max over the runs; "+
		"B/op and allocs/op are the worst run. \"× bare\" and \"× dbresolver\" are median ns/op over that row's.\n\n",
		impls.ReplicaNopReplicas, impls.PGPrimaryEnv, impls.PGReplicaEnv, c.gomaxprocs, c.runs, c.replicaBenchtime)
	for _, be := range c.replicaBackends {
		if be.skip != "" {
			fmt.Fprintf(body, "**%s rows not measured: %s.**\n\n", be.name, be.skip)
		}
	}
	fmt.Fprintf(body, "| backend | op | mode | implementation | ns/op (median) | range | B/op | allocs/op | allocs − bare | × bare | × dbresolver | target | result |\n")
	fmt.Fprintf(body, "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|\n")
	for _, be := range c.replicaBackends {
		for _, r := range be.rows {
			bare := be.row(r.op.Bench, r.parallel, impls.ReplicaBare)
			dbr := be.row(r.op.Bench, r.parallel, impls.ReplicaDBResolver)
			ns, allocs := median(r.ns), slices.Max(r.allocs)
			extra := allocs - slices.Max(bare.allocs)
			var checks []check
			if r.t.Ours && !r.parallel {
				checks = append(checks, check{
					what: fmt.Sprintf("≤ %d allocs beyond bare", replicaExtraAllocsTarget),
					got:  fmt.Sprintf("%+d (%d vs %d)", extra, allocs, slices.Max(bare.allocs)), pass: extra <= replicaExtraAllocsTarget,
				})
			}
			fmt.Fprintf(body, "| %s | %s | %s | %s | %s | %s–%s | %d | %d | %+d | %.2f | %.2f | %s | %s |\n",
				be.name, r.op.Name, r.mode(), r.t.Name, fmtNs(ns), fmtNs(slices.Min(r.ns)), fmtNs(slices.Max(r.ns)),
				slices.Max(r.bytes), allocs, extra, ns/median(bare.ns), ns/median(dbr.ns), targets(checks), verdict(checks))
			for _, ch := range checks {
				ch.what = fmt.Sprintf("replica, %s %s %s, %s: %s", be.name, r.op.Bench, r.mode(), r.t.Name, ch.what)
				all = append(all, ch)
			}
		}
	}

	all = append(all, c.reportReplicaInterleaved(body)...)

	fmt.Fprintf(body, "\n| implementation | configuration |\n|---|---|\n")
	for _, be := range c.replicaBackends {
		if be.skip != "" {
			continue
		}
		for _, r := range be.rows {
			if r.op.Bench == be.rows[0].op.Bench && !r.parallel {
				fmt.Fprintf(body, "| %s (%s) | %s |\n", r.t.Name, be.name, r.t.Config)
			}
		}
	}
	return all
}

// reportReplicaInterleaved writes the overhead table and returns the
// overhead checks.
func (c *comparison) reportReplicaInterleaved(body *strings.Builder) []check {
	fmt.Fprintf(body, "\n### Routing overhead: interleaved\n\n")
	fmt.Fprintf(body, "The rows above each run in their own %s window of a shared machine, whose speed moves by more "+
		"than the overhead being measured between windows. The overhead, and its target (≤ %.0f ns per statement over "+
		"bare, on nopsql), come instead from one serial benchmark per backend and op (`BenchmarkReplicaInterleaved`, %s per "+
		"run) whose loop does, in every iteration, the op once through each implementation in turn, the starting one rotating, "+
		"each call timed alone with `time.Now` around it: every implementation sees the same stretch of the machine. A run "+
		"gives each implementation's median ns per call (GC pauses and preemptions, which land on a few calls, move the mean, "+
		"shown for reference, but not the median); overhead is this median minus bare's in the same run, reported as the median "+
		"over the %d runs and its min–max; \"× dbresolver\" likewise, a ratio of medians per call. On PostgreSQL the loopback "+
		"round trip's jitter is larger than the target, so it has none there.\n\n",
		c.replicaBenchtime, replicaOverheadNsTarget, c.replicaBenchtime, c.runs)
	fmt.Fprintf(body, "| backend | op | implementation | median ns per call | mean ns per call | overhead vs bare (ns) | range | × dbresolver | target | result |\n")
	fmt.Fprintf(body, "|---|---|---|--:|--:|--:|--:|--:|---|---|\n")
	var all []check
	for _, be := range c.replicaBackends {
		if be.skip != "" {
			fmt.Fprintf(body, "| %s | | | not measured: %s | | | | | | |\n", be.name, be.skip)
			continue
		}
		bare, dbr := be.benchOf(impls.ReplicaBare), be.benchOf(impls.ReplicaDBResolver)
		for _, il := range be.il {
			for _, t := range be.targets {
				med := ilMetric(il, impls.ReplicaMetric(t.Bench))
				mean := ilMetric(il, impls.ReplicaMeanMetric(t.Bench))
				over := ilPerRun(il, t.Bench, bare, func(a, b float64) float64 { return a - b })
				ratio := ilPerRun(il, t.Bench, dbr, func(a, b float64) float64 { return a / b })
				var checks []check
				if t.Ours && be.name == impls.ReplicaBackendNop {
					ch := check{what: fmt.Sprintf("overhead ≤ %.0f ns over bare (interleaved)", replicaOverheadNsTarget)}
					if over == nil {
						ch.got = "nothing"
					} else {
						x := median(over)
						ch.got = fmt.Sprintf("%+.0f ns (runs %+.0f–%+.0f)", x, slices.Min(over), slices.Max(over))
						ch.pass = x <= replicaOverheadNsTarget
					}
					checks = append(checks, ch)
				}
				if med == nil || over == nil || ratio == nil || mean == nil {
					fmt.Fprintf(body, "| %s | %s | %s | not measured | | | | | %s | %s |\n",
						be.name, il.op.Name, t.Name, targets(checks), verdict(checks))
				} else {
					fmt.Fprintf(body, "| %s | %s | %s | %s | %s | %+.0f | %+.0f – %+.0f | %.2f | %s | %s |\n",
						be.name, il.op.Name, t.Name, fmtNs(median(med)), fmtNs(median(mean)),
						median(over), slices.Min(over), slices.Max(over), median(ratio), targets(checks), verdict(checks))
				}
				for _, ch := range checks {
					ch.what = fmt.Sprintf("replica, %s %s, %s: %s", be.name, il.op.Bench, t.Name, ch.what)
					all = append(all, ch)
				}
			}
		}
	}
	return all
}
