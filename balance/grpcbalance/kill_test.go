package grpcbalance_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/scaleout/scaleout/balance/grpcbalance"
)

// idempotentCalls is the service config a user of idempotent methods
// writes: an RPC waits for a ready backend rather than fail at once
// (waitForReady), and one that fails Unavailable — its connection broke,
// as when a server dies under it — is retried, which picks again through
// the policy and so goes to another server.
const idempotentCalls = `, "methodConfig": [{
	"name": [{"service": "grpc.testing.TestService"}],
	"waitForReady": true,
	"retryPolicy": {
		"maxAttempts": 4,
		"initialBackoff": "0.02s",
		"maxBackoff": "0.5s",
		"backoffMultiplier": 2,
		"retryableStatusCodes": ["UNAVAILABLE"]
	}
}]`

// TestKillAndRestartUnderLoad: of three servers under steady load, one
// is killed (its connections reset, its RPCs in flight fail) and
// restarted on the same address. The calls carry on: at most 0.1% fail.
// The killed server gets no traffic while it is down, and traffic again
// within one reconnection interval of its restart.
func TestKillAndRestartUnderLoad(t *testing.T) {
	for _, policy := range []string{grpcbalance.RoundRobin, grpcbalance.P2C, healthPolicy} {
		t.Run(policy, func(t *testing.T) {
			srvs := startServers(t, 3)
			client, _, _ := dial(t, policy, srvs, idempotentCalls)
			victim := srvs[1]

			var total, failed atomic.Int64
			var firstErr atomic.Value
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for ctx.Err() == nil {
						cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						_, err := client.UnaryCall(cctx, &testpb.SimpleRequest{})
						cancel()
						total.Add(1)
						if err != nil {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err)
						}
					}
				})
			}
			defer func() { stop(); wg.Wait() }()

			waitFor(t, 20*time.Second, "every server serving", func() bool {
				return srvs[0].Calls() > 100 && srvs[1].Calls() > 100 && srvs[2].Calls() > 100
			})
			victim.Kill()
			killed := time.Now()
			down := victim.Calls()
			before := total.Load()
			// Down long enough for the reconnection backoff to reach its cap.
			waitFor(t, 20*time.Second, "calls going on without the killed server", func() bool {
				return total.Load() > before+500 && time.Since(killed) > 2*reconnectDelay
			})
			if n := victim.Calls(); n != down {
				t.Fatalf("the killed server got %d calls", n-down)
			}

			if err := victim.Restart(); err != nil {
				t.Fatal(err)
			}
			restarted := time.Now()
			// Within one reconnection interval (the subchannel's backoff,
			// at most reconnectDelay plus its 20% jitter); the margin is for
			// a busy machine.
			waitFor(t, reconnectDelay*6/5+3*time.Second, "traffic to the restarted server", func() bool {
				return victim.Calls() > down
			})
			back := time.Since(restarted)
			// Enough calls in all for 0.1% to mean something, however slow
			// the machine.
			before = total.Load()
			waitFor(t, 60*time.Second, "calls after the restart", func() bool {
				return total.Load() > max(before+500, 3000)
			})
			stop()
			wg.Wait()

			n, f := total.Load(), failed.Load()
			t.Logf("%s: %d calls, %d failed; the restarted server served again after %v", policy, n, f, back.Round(time.Millisecond))
			if f*1000 > n {
				t.Fatalf("%d of %d calls failed (more than 0.1%%); first: %v", f, n, firstErr.Load())
			}
		})
	}
}
