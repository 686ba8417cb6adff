package replicatest_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/kitcheck"
	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/replica/replicatest"
)

// The kit is a product: a router that breaks a clause must fail it. Each
// broken router below is replica.Router with one promise broken, by a
// wrapper (written, as a third party's would be, with exported API only)
// or by a Config the factory loosens; TestKitCatchesBrokenRouters runs
// the clause it breaks in a child process and requires that clause to
// fail.

// brokenEnv names the broken router the child process runs the kit on.
const brokenEnv = "REPLICATEST_BROKEN_ROUTER"

// brokenRouters maps each broken behaviour to the clause that must catch
// it.
var brokenRouters = map[string]string{
	"writes go to a replica":           "WritesGoToThePrimary",
	"reads go to the primary":          "ReadsSpreadOverReplicas",
	"reads use one replica":            "ReadsSpreadOverReplicas",
	"ignores UsePrimary":               "UsePrimaryReadsThePrimary",
	"ignores a Mark's position":        "TrackedReadsSeeTheirWrites",
	"ignores a Mark's window":          "TrackWindowReadsThePrimary",
	"ignores keys":                     "WithKeyWritesGoToTheKeysPrimary",
	"no lag bound":                     "LaggingReplicaGetsNoReads",
	"lagging replicas keep serving":    "LaggingReplicaGetsNoReads",
	"never ejects":                     "DownReplicaIsEjectedAndReadmitted",
	"never readmits":                   "DownReplicaIsEjectedAndReadmitted",
	"strict reads":                     "AllReplicasUnfitFallsBackToThePrimary",
	"waits for a primary":              "DeadPrimaryFailsWritesFast",
	"probes slowly":                    "PromotedReplicaTakesWrites",
	"writes to any claimed primary":    "OldPrimaryIsFencedAfterPromotion",
	"reads from any claimed primary":   "OldPrimaryIsFencedAfterPromotion",
	"writes to a down key's neighbour": "WithKeyWritesGoToTheKeysPrimary",
}

type broken struct {
	*replica.Router
	topo *replicatest.Topology
	how  string
}

// valueless is ctx without its values: the context options a wrapper
// hides from the Router it wraps.
type valueless struct{ context.Context }

func (valueless) Value(any) any { return nil }

// claimsPrimary reports whether the named node is up and claims to be a
// primary, as the Topology's probe says.
func (b *broken) claimsPrimary(ctx context.Context, name string) bool {
	st, err := b.topo.Probe(ctx, b.topo.DB(name))
	return err == nil && st.Role == replica.RolePrimary
}

func (b *broken) Writer(ctx context.Context) (*sql.DB, error) {
	switch b.how {
	case "writes go to a replica":
		return b.topo.DB("r1"), nil
	case "ignores keys":
		return b.Router.Writer(valueless{ctx})
	case "writes to any claimed primary":
		if b.claimsPrimary(ctx, "p") {
			return b.topo.DB("p"), nil
		}
	case "waits for a primary":
		db, err := b.Router.Writer(ctx)
		if errors.Is(err, replica.ErrNoPrimary) {
			time.Sleep(replicatest.ProbeInterval)
			return b.Router.Writer(ctx)
		}
		return db, err
	case "writes to a down key's neighbour":
		db, err := b.Router.Writer(ctx)
		if _, ok := replica.KeyOf(ctx); ok && errors.Is(err, replica.ErrNoPrimary) {
			return b.Router.Writer(valueless{ctx})
		}
		return db, err
	}
	return b.Router.Writer(ctx)
}

func (b *broken) Reader(ctx context.Context) (*sql.DB, error) {
	switch b.how {
	case "reads go to the primary":
		return b.Router.Writer(ctx)
	case "reads use one replica":
		db, err := b.Router.Reader(ctx)
		if db == b.topo.DB("r2") {
			return b.topo.DB("r1"), nil
		}
		return db, err
	case "ignores UsePrimary":
		if replica.UsesPrimary(ctx) {
			return b.Router.Reader(valueless{ctx})
		}
	case "ignores a Mark's position":
		if m, ok := replica.MarkOf(ctx); ok {
			return b.Router.Reader(replica.TrackFrom(valueless{ctx}, replica.Mark{Until: m.Until}))
		}
	case "ignores a Mark's window":
		if m, ok := replica.MarkOf(ctx); ok {
			return b.Router.Reader(replica.TrackFrom(valueless{ctx}, replica.Mark{Position: m.Position}))
		}
	case "reads from any claimed primary":
		if db, err := b.Router.Reader(ctx); err == nil && b.claimsPrimary(ctx, "p") && db != b.topo.DB("p") {
			return b.topo.DB("p"), nil
		}
	}
	return b.Router.Reader(ctx)
}

// loosen breaks cfg the way how says, for the behaviours a Config breaks.
func loosen(how string, cfg replica.Config) replica.Config {
	switch how {
	case "no lag bound":
		cfg.MaxLag = -1
	case "lagging replicas keep serving":
		cfg.MinServing = 2
	case "never ejects":
		cfg.FailAfter = 1000
	case "never readmits":
		cfg.ReadmitAfter = 1000
	case "strict reads":
		cfg.StrictReads = true
	case "probes slowly":
		cfg.ProbeInterval = 5 * replicatest.ProbeInterval
	}
	return cfg
}

// TestBrokenRouterChild runs the kit on the broken router the parent
// names; it is skipped in a normal run.
func TestBrokenRouterChild(t *testing.T) {
	how := os.Getenv(brokenEnv)
	if how == "" {
		t.Skip("run by TestKitCatchesBrokenRouters")
	}
	replicatest.Run(t, func(t *testing.T, topo *replicatest.Topology, cfg replica.Config) replica.ReplicaRouter {
		r, err := replica.New(loosen(how, cfg), topo.Nodes()...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		return &broken{Router: r, topo: topo, how: how}
	})
}

func TestKitCatchesBrokenRouters(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in the child process")
	}
	for how, clause := range brokenRouters {
		t.Run(how, func(t *testing.T) {
			kitcheck.Catches(t, "TestBrokenRouterChild", clause, "a router where "+how, brokenEnv+"="+how)
		})
	}
}
