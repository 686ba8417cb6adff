package grpcbalance_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/grpcbalance"
	"github.com/scaleout/scaleout/balance/grpcbalance/internal/testsrv"
)

// Three clones of a service behind the P2C policy; one dies, and the
// calls carry on on the other two: those in flight on it are retried
// (the retry policy), and the others wait for a ready clone rather than
// fail (waitForReady).
func Example() {
	clones, err := testsrv.StartN(3) // three gRPC servers on loopback
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		for _, c := range clones {
			c.Close()
		}
	}()

	// The clones' addresses: here given once; balance.DNS would keep them
	// current (DNSConfig.Target: r).
	r, err := grpcbalance.NewResolver("clones")
	if err != nil {
		log.Fatal(err)
	}
	var set []balance.Backend
	for _, c := range clones {
		set = append(set, balance.Backend{Addr: c.Addr})
	}
	if err := r.Update(set); err != nil {
		log.Fatal(err)
	}

	conn, err := grpc.NewClient("clones:///users",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{
			"loadBalancingConfig": [{"scaleout_p2c": {}}],
			"methodConfig": [{
				"name": [{"service": "grpc.testing.TestService"}],
				"waitForReady": true,
				"retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.02s", "maxBackoff": "0.2s",
					"backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
			}]
		}`))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)

	answered := 0
	for i := range 60 {
		if i == 20 {
			clones[1].Kill()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}); err == nil {
			answered++
		}
		cancel()
	}
	fmt.Printf("%d of 60 calls answered\n", answered)
	// Output:
	// 60 of 60 calls answered
}
