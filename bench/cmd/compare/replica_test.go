package main

import (
	"strings"
	"testing"

	"github.com/scaleout/scaleout/bench/impls"
)

// TestReportReplica: the report holds each row and overhead, the allocs
// and overhead targets are checked on ours only, and a PostgreSQL backend
// without its environment is marked not measured without panicking.
func TestReportReplica(t *testing.T) {
	env, err := impls.NewReplicaNop()
	if err != nil {
		t.Fatal(err)
	}
	be := newReplicaBackend(env)
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	be.env = nil
	for _, r := range be.rows {
		r.ns, r.allocs, r.bytes = []float64{1000}, []int64{7}, []int64{296}
		if r.t.Ours {
			r.ns, r.allocs = []float64{1200}, []int64{10} // one over the allocs target
		}
	}
	for _, il := range be.il {
		ex := map[string]float64{}
		for _, tg := range be.targets {
			ex[impls.ReplicaMetric(tg.Bench)], ex[impls.ReplicaMeanMetric(tg.Bench)] = 500, 600
			if tg.Ours {
				ex[impls.ReplicaMetric(tg.Bench)] = 700 // 200 ns over bare: met
			}
		}
		il.extra = []map[string]float64{ex}
	}
	c := &comparison{runs: 1, gomaxprocs: 2, replicaBackends: []*replicaBackend{
		be, {name: impls.ReplicaBackendPG, skip: impls.ErrReplicaPGUnset.Error()},
	}}
	var sb strings.Builder
	checks := c.reportReplica(&sb)
	out := sb.String()
	for _, want := range []string{"## Replica routing", "postgres rows not measured", "| +200 |", "| +3 |"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	passed, missed := tally(checks)
	// 3 ops × 2 of ours: the serial allocs targets missed, the overhead
	// targets met.
	if passed != 6 || missed != 6 {
		t.Errorf("%d passed, %d missed; want 6, 6:\n%+v", passed, missed, checks)
	}
}
