package bench

import (
	"context"
	"testing"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/cache"
)

// The overhead of instrumentation (package observe) on the two hottest
// paths: a balancer's pick and Done through Health, and a cache Loader's
// local-tier hit. This file uses no API newer than observe, so that it also
// compiles on a checkout from before it: BENCHMARKS.md runs it there and
// here, interleaved, to measure "off" against the code without
// instrumentation; observe_prom_bench_test.go measures the same paths with
// the Prometheus adapter on. Besides ns/op each reports cpu-ns/op, the CPU
// time of its thread per iteration (observe_cpu_bench_test.go, copied
// with this file), which a busy machine disturbs far less.

func BenchmarkObserveOff(b *testing.B) {
	b.Run("HealthPick", func(b *testing.B) { benchHealthPick(b, balance.HealthConfig{}) })
	b.Run("LoaderLocalHit", func(b *testing.B) {
		benchLocalHit(b, cache.LoaderConfig[string]{LocalTTL: time.Minute})
	})
}

func benchHealthPick(b *testing.B, cfg balance.HealthConfig) {
	h, err := balance.NewHealth(balance.NewRoundRobin(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	if err := h.Update([]balance.Backend{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}, {Addr: "10.0.0.3:80"}}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	cpuPerOp(b, func() {
		for b.Loop() {
			c, err := h.Pick(ctx, "")
			if err != nil {
				b.Fatal(err)
			}
			c.Done(nil)
		}
	})
}

func benchLocalHit(b *testing.B, cfg cache.LoaderConfig[string]) {
	mem, err := cache.NewMemory(cache.MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	l, err := cache.NewLoader(mem, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	load := func(context.Context) (string, error) { return "v", nil }
	if _, err := l.Get(ctx, "k", time.Minute, load); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpuPerOp(b, func() {
		for b.Loop() {
			if _, err := l.Get(ctx, "k", time.Minute, load); err != nil {
				b.Fatal(err)
			}
		}
	})
}
