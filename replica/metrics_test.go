package replica_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/replica/replicatest"
)

// TestMetrics runs a known workload through a Router over a fake topology
// and checks the figures of observe's table for replica: lag, role and
// serving state per node, reads and writes routed, fallbacks to the
// primary and ErrNoPrimary, and the log record of a lost primary.
func TestMetrics(t *testing.T) {
	topo := replicatest.New(t, "p", "r1", "r2")
	defer topo.Close()
	topo.SetLag("r2", 10*time.Second) // beyond MaxLag: not serving
	rec := observe.NewRecorder()
	var logs bytes.Buffer
	r, err := replica.New(replica.Config{
		Probe: topo, MaxLag: 5 * time.Second, Balancer: new(balance.RoundRobin),
		Meter: rec, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}, topo.Nodes()...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if err := r.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	db := r.DB()
	var node string
	for range 4 {
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&node); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := db.ExecContext(ctx, "UPDATE t SET x = 1"); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]float64{"p": 0, "r1": 4, "r2": 0} {
		if got := rec.Value("scaleout.replica.reads", "node", name); got != want {
			t.Errorf("reads of %s = %v, want %v", name, got, want)
		}
	}
	if got := rec.Value("scaleout.replica.writes", "node", "p"); got != 2 {
		t.Errorf("writes of p = %v, want 2", got)
	}
	if got := rec.Value("scaleout.replica.lag", "node", "r2"); got != 10 {
		t.Errorf("lag of r2 = %v s, want 10", got)
	}
	for name, want := range map[string][2]float64{"p": {1, 0}, "r1": {0, 1}, "r2": {0, 0}} {
		if got := rec.Value("scaleout.replica.primary", "node", name); got != want[0] {
			t.Errorf("primary of %s = %v, want %v", name, got, want[0])
		}
		if got := rec.Value("scaleout.replica.serving", "node", name); got != want[1] {
			t.Errorf("serving of %s = %v, want %v", name, got, want[1])
		}
	}

	// The replicas go down (the lagging r2 would otherwise serve as the
	// MinServing floor): reads fall back to the primary.
	topo.SetDown("r1", true)
	topo.SetDown("r2", true)
	for range 3 { // FailAfter probes in a row take it out
		_ = r.Probe(ctx)
	}
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&node); err != nil || node != "p" {
		t.Fatalf("read with no fit replica: on %q, %v; want the primary", node, err)
	}
	if got := rec.Value("scaleout.replica.primary_fallbacks"); got != 1 {
		t.Errorf("fallbacks = %v, want 1", got)
	}
	if got := rec.Value("scaleout.replica.reads", "node", "p"); got != 1 {
		t.Errorf("reads of p = %v, want 1", got)
	}

	// The primary goes down too: writes and reads fail with ErrNoPrimary.
	topo.SetDown("p", true)
	for range 3 {
		_ = r.Probe(ctx)
	}
	if _, err := db.ExecContext(ctx, "UPDATE t SET x = 1"); !errors.Is(err, replica.ErrNoPrimary) {
		t.Fatalf("write without a primary: %v", err)
	}
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&node); !errors.Is(err, replica.ErrNoPrimary) {
		t.Fatalf("read without a fit replica or primary: %v", err)
	}
	if got := rec.Value("scaleout.replica.no_primary"); got != 2 {
		t.Errorf("no_primary = %v, want 2", got)
	}
	if got := rec.Value("scaleout.replica.primary", "node", "p"); got != 0 {
		t.Errorf("primary of p = %v, want 0 once down", got)
	}
	if !strings.Contains(logs.String(), `level=WARN msg="replica: no primary`) {
		t.Errorf("no log of the lost primary:\n%s", logs.String())
	}
}
