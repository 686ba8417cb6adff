package grpcbalance_test

import (
	"context"
	"sync"
	"testing"
	"time"

	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/grpcbalance"
	"github.com/scaleout/scaleout/balance/grpcbalance/internal/testsrv"
)

// load runs workers calling client concurrently for d.
func load(t *testing.T, client testpb.TestServiceClient, workers int, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if _, err := client.UnaryCall(cctx, &testpb.SimpleRequest{}); err != nil {
					t.Errorf("UnaryCall: %v", err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
}

// TestP2CAvoidsSlowServer: with one server 100 ms slower than the others,
// P2C, once it has learnt their latencies, sends it at most a third of
// the share round robin sends it. On a machine so busy that every call
// takes long, the phases are counted in calls rather than in time.
func TestP2CAvoidsSlowServer(t *testing.T) {
	srvs := startServers(t, 3)
	srvs[2].SetDelay(100 * time.Millisecond)
	rrClient, _, _ := dial(t, grpcbalance.RoundRobin, srvs, "")
	p2cClient, _, _ := dial(t, grpcbalance.P2C, srvs, "")
	rr := loadAtLeast(t, rrClient, srvs, 300)
	// P2C learns a server's latency from its first eight calls; until
	// then it goes by calls in flight. The share measured is the steady
	// one, once the slow server has had those.
	slow := srvs[2].Calls()
	deadline := time.Now().Add(60 * time.Second)
	for srvs[2].Calls() < slow+12 && time.Now().Before(deadline) {
		load(t, p2cClient, 8, 500*time.Millisecond)
	}
	p2c := loadAtLeast(t, p2cClient, srvs, 600)
	t.Logf("slow server's share: round robin %.3f, P2C %.3f", rr[2], p2c[2])
	if p2c[2] > rr[2]/3 {
		t.Fatalf("P2C sent the slow server %.3f of the calls, round robin %.3f: want at most a third of it", p2c[2], rr[2])
	}
}

// loadAtLeast runs load in steps of a second until at least n calls were
// made (or a minute passed), and returns each server's share of them.
func loadAtLeast(t *testing.T, client testpb.TestServiceClient, srvs []*testsrv.Server, n int64) []float64 {
	t.Helper()
	c := newCalls(srvs)
	sum := make([]int64, len(srvs))
	var total int64
	for deadline := time.Now().Add(time.Minute); total < n && time.Now().Before(deadline); {
		load(t, client, 8, time.Second)
		for i, k := range c.delta() {
			sum[i] += k
			total += k
		}
	}
	t.Logf("calls per server: %v", sum)
	shares := make([]float64, len(sum))
	for i, k := range sum {
		shares[i] = float64(k) / float64(max(total, 1))
	}
	return shares
}

// TestLoadTrailersSteerP2C: a server busy with another client's calls
// (held on it) reports its in-flight count in every response's trailer,
// and a P2C client fed by them sends it few calls, though its own count
// of calls in flight there is 0 like everywhere else. Without the
// reports (plainP2C), the same client spreads its calls evenly.
func TestLoadTrailersSteerP2C(t *testing.T) {
	srvs := startServers(t, 3)
	busy := srvs[0]

	// The other client: 30 calls held on the busy server.
	other, _, _ := dial(t, grpcbalance.RoundRobin, srvs[:1], "")
	holdCtx, release := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), testsrv.HoldMetadata, "1"))
	var held sync.WaitGroup
	for range 30 {
		held.Go(func() { _, _ = other.UnaryCall(holdCtx, &testpb.SimpleRequest{}) })
	}
	defer func() { release(); held.Wait() }()
	waitFor(t, 20*time.Second, "30 calls held", func() bool { return busy.Inflight() == 30 })

	for _, tc := range []struct {
		policy string
		most   float64 // the busy server's share, at most
		least  float64 // and at least
	}{
		{grpcbalance.P2C, 0.1, 0},
		{plainP2C, 1, 0.15},
	} {
		client, _, _ := dial(t, tc.policy, srvs, "")
		c := newCalls(srvs)
		for range 300 { // one at a time: the client's own counts stay 0
			if _, err := client.UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{}); err != nil {
				t.Fatal(err)
			}
		}
		got := c.delta()
		share := float64(got[0]) / 300
		t.Logf("%s: calls per server %v, the busy one's share %.3f", tc.policy, got, share)
		if share > tc.most || share < tc.least {
			t.Fatalf("%s: the busy server's share %.3f, want %.2f to %.2f", tc.policy, share, tc.least, tc.most)
		}
	}
}

// plainP2C is P2C without the load reports, and with a latency floor so
// high that every server's latency counts the same: on a busy machine
// the latency of loopback calls is noise, which would skew the control
// of TestLoadTrailersSteerP2C. It chooses by its own in-flight counts
// alone, all 0 for calls made one at a time.
var plainP2C = register("test_plain_p2c", func() balance.Balancer {
	p, err := balance.NewP2C(balance.P2CConfig{MinLatency: time.Hour})
	if err != nil {
		panic(err)
	}
	return p
}, grpcbalance.Config{})
