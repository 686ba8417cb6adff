package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/scaleout/scaleout/bench/impls"
)

// Replica benchmarks: the routing overhead of scaleout's replica.DB over a
// bare *sql.DB, side by side with bxcodec/dbresolver/v2, on the same pools
// (bodies in impls/replica.go, shared with cmd/compare, which runs them
// several times and reports medians and the overhead):
//
//	cd bench && go test -run '^$' -bench Replica -benchmem .
//
// BenchmarkReplica/nopsql/<op>/<mode>/<impl>: over three pools of
// impls/nopsql, an in-memory driver that answers every query with one
// row of one int column without I/O, so that what is measured is
// database/sql's own cost (the bare row) plus the router's. op is
// QueryRow (QueryRowContext + Scan of "SELECT v FROM t WHERE id = $1"),
// Query (QueryContext, Next/Scan, Close) or Exec (ExecContext of an
// UPDATE); mode is serial (b.Loop) or parallel (b.RunParallel); impl is
// bare (one replica's *sql.DB), scaleout-static (replica.Config{}, declared
// roles), scaleout-probe (a fake Probe with fixed States, MaxLag 1h, so the
// lag check runs) or dbresolver.
//
// BenchmarkReplica/postgres/QueryRow/<mode>/<impl>: the same read on the
// PostgreSQL primary and standby of SCALEOUT_PG_PRIMARY_DSN and
// SCALEOUT_PG_REPLICA_DSN through pgx's database/sql driver, the probed
// router using new(replica.PostgreSQL); skipped when they are unset
// (eval "$(../scripts/services.sh env)").
//
// BenchmarkReplicaInterleaved/<backend>/<op>: every impl in one loop, one
// call of each per iteration (the starting impl rotating), each timed
// alone; the figures to read are the metrics <impl>-ns/op, whose
// differences are the routing overhead measured in the same window of a
// shared machine:
//
//	go test -run '^$' -bench ReplicaInterleaved -count 5 .
func BenchmarkReplica(b *testing.B) { replicaBackends(b, benchReplica) }

// BenchmarkReplicaInterleaved: see BenchmarkReplica.
func BenchmarkReplicaInterleaved(b *testing.B) {
	replicaBackends(b, func(b *testing.B, env *impls.ReplicaEnv) {
		for _, op := range env.Ops {
			b.Run(op.Bench, env.Interleaved(op))
		}
	})
}

func replicaBackends(b *testing.B, bench func(*testing.B, *impls.ReplicaEnv)) {
	b.Run(impls.ReplicaBackendNop, func(b *testing.B) {
		env, err := impls.NewReplicaNop()
		if err != nil {
			b.Fatal(err)
		}
		defer closeReplica(b, env)
		bench(b, env)
	})
	b.Run(impls.ReplicaBackendPG, func(b *testing.B) {
		env, err := impls.NewReplicaPG(context.Background())
		if errors.Is(err, impls.ErrReplicaPGUnset) {
			b.Skipf(`%v: run eval "$(../scripts/services.sh env)" first`, err)
		}
		if err != nil {
			b.Fatal(err)
		}
		defer closeReplica(b, env)
		bench(b, env)
	})
}

func benchReplica(b *testing.B, env *impls.ReplicaEnv) {
	for _, op := range env.Ops {
		b.Run(op.Bench, func(b *testing.B) {
			for _, mode := range []string{"serial", "parallel"} {
				b.Run(mode, func(b *testing.B) {
					for _, t := range env.Targets {
						b.Run(t.Bench, env.Body(t, op, mode == "parallel"))
					}
				})
			}
		})
	}
}

func closeReplica(b *testing.B, env *impls.ReplicaEnv) {
	if err := env.Close(); err != nil {
		b.Errorf("cleaning up: %v", err)
	}
}
