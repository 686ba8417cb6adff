package replica_test

import (
	"context"
	"testing"
	"time"

	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/replica/replicatest"
)

// BenchmarkReader is the routing decision alone: the lag check and the
// balancer's pick (bench/ compares whole queries with database/sql and
// dbresolver).
func BenchmarkReader(b *testing.B) {
	topo := replicatest.New(b, "p", "r1", "r2")
	r, err := replica.New(replica.Config{Probe: topo, ProbeInterval: time.Minute, MaxLag: time.Hour}, topo.Nodes()...)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for name, ctx := range map[string]context.Context{
		"plain":   context.Background(),
		"tracked": replica.Track(context.Background()),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Reader(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := r.Reader(context.Background()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkQueryRow is a whole read through DB against the same read on
// the replica's bare *sql.DB, over replicatest's in-memory driver.
func BenchmarkQueryRow(b *testing.B) {
	topo := replicatest.New(b, "p", "r1", "r2")
	r, err := replica.New(replica.Config{Probe: topo, ProbeInterval: time.Minute, MaxLag: time.Hour}, topo.Nodes()...)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	const q = "SELECT name FROM users WHERE id = $1"
	ctx, d := context.Background(), r.DB()
	var s string // one destination for both, so neither pays for its escape
	for name, row := range map[string]func() error{
		"bare":   func() error { return topo.DB("r1").QueryRowContext(ctx, q, 1).Scan(&s) },
		"routed": func() error { return d.QueryRowContext(ctx, q, 1).Scan(&s) },
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := row(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
