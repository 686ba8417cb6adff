package grpcbalance_test

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/scaleout/scaleout/balance/grpcbalance"
	"github.com/scaleout/scaleout/balance/grpcbalance/internal/testsrv"
)

// BenchmarkUnary: unary calls from parallel goroutines over three
// loopback servers, through this package's policies and grpc-go's own
// round_robin and pick_first, in one run so that their ratios compare
// like with like. Most of a call's time is gRPC's (HTTP/2 framing,
// protobuf, two goroutine hand-offs); the policy's share is the
// difference.
func BenchmarkUnary(b *testing.B) {
	srvs := startServers(b, 3)
	for _, policy := range []string{"pick_first", "round_robin", grpcbalance.RoundRobin, grpcbalance.P2C, grpcbalance.LeastLoaded} {
		b.Run(policy, func(b *testing.B) {
			client, conn, _ := dial(b, policy, srvs, "")
			defer conn.Close()
			warm(b, client, policy != "pick_first", srvs)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.EmptyCall(context.Background(), &testpb.Empty{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// warm calls until every server has answered (all connected), or just
// once when only one is meant to.
func warm(b *testing.B, client testpb.TestServiceClient, all bool, srvs []*testsrv.Server) {
	b.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.EmptyCall(ctx, &testpb.Empty{})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		done := true
		for _, s := range srvs {
			done = done && (!all || s.Calls() > 0)
		}
		if done || time.Now().After(deadline) {
			return
		}
	}
}

// BenchmarkSlowServerTail: 16 goroutines call three servers, one of
// which takes 5 ms longer per call, through P2C and through round robin;
// it reports the calls' median and 99th percentile latency. Round robin
// sends a third of the calls to the slow server, so its p99 is the slow
// server's; P2C sends it almost none.
func BenchmarkSlowServerTail(b *testing.B) {
	srvs := startServers(b, 3)
	srvs[2].SetDelay(5 * time.Millisecond)
	for _, policy := range []string{"round_robin", grpcbalance.P2C} {
		b.Run(policy, func(b *testing.B) {
			client, conn, _ := dial(b, policy, srvs, "")
			defer conn.Close()
			warm(b, client, true, srvs)
			var (
				mu  sync.Mutex
				all []time.Duration
			)
			b.ReportAllocs()
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0))) // 16 goroutines
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					start := time.Now()
					if _, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{}); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			slices.Sort(all)
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}
