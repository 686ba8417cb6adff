package grpcbalance_test

import (
	"context"
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
// once when only one is meant to. It makes the calls the tail benchmark
// measures, so that P2C learns their latencies, not those of another
// method.
func warm(b *testing.B, client testpb.TestServiceClient, all bool, srvs []*testsrv.Server) {
	b.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
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

// BenchmarkSlowServerTail: calls at a steady 1000 per second (an open
// loop: each call starts on time, whatever the others do) to three
// servers, one of which takes 5 ms longer per call, through P2C and
// through round robin; it reports the calls' median and 99th percentile
// latency and the slow server's share. Round robin sends a third of the
// calls to the slow server, so its p99 is the slow server's; P2C sends it
// almost none. A closed loop (goroutines calling back to back) would
// instead measure how much faster P2C's goroutines come back, which
// loads the CPU more, and mix that into the latencies. Run it with a
// fixed count, -benchtime 3000x, so that both see the same calls.
func BenchmarkSlowServerTail(b *testing.B) {
	srvs := startServers(b, 3)
	srvs[2].SetDelay(5 * time.Millisecond)
	const interval = time.Millisecond
	for _, policy := range []string{"round_robin", grpcbalance.P2C} {
		b.Run(policy, func(b *testing.B) {
			client, conn, _ := dial(b, policy, srvs, "")
			defer conn.Close()
			warm(b, client, true, srvs)
			lat := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			c := newCalls(srvs)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					time.Sleep(d)
				}
				wg.Go(func() {
					t0 := time.Now()
					if _, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{}); err != nil {
						b.Error(err)
					}
					lat[i] = time.Since(t0)
				})
			}
			wg.Wait()
			b.StopTimer()
			got := c.delta()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(got[2])/float64(max(1, got[0]+got[1]+got[2])), "slow-share")
		})
	}
}
