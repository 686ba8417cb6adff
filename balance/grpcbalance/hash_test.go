package grpcbalance_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/scaleout/scaleout/balance/grpcbalance"
)

// TestConsistentHashHoldsKeys: while the set is stable, every call with
// the same key (in DefaultKeyMetadata) goes to the same server, and the
// keys spread over all of them.
func TestConsistentHashHoldsKeys(t *testing.T) {
	srvs := startServers(t, 3)
	client, _, _ := dial(t, grpcbalance.ConsistentHash, srvs, "")
	// The set is stable once every server is connected (Ready), which the
	// first calls wait for: until then keys move as servers join it.
	warm := 0
	waitFor(t, 20*time.Second, "every server connected", func() bool {
		ctx := metadata.AppendToOutgoingContext(context.Background(), grpcbalance.DefaultKeyMetadata, fmt.Sprint("warm-", warm))
		warm++
		_, _ = client.UnaryCall(ctx, &testpb.SimpleRequest{})
		return srvs[0].Calls() > 0 && srvs[1].Calls() > 0 && srvs[2].Calls() > 0
	})
	home := map[string]string{}
	perServer := map[string]int{}
	for round := range 5 {
		for k := range 60 {
			key := fmt.Sprintf("user-%d", k)
			ctx := metadata.AppendToOutgoingContext(context.Background(), grpcbalance.DefaultKeyMetadata, key)
			resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got := resp.GetServerId()
			if round == 0 {
				home[key] = got
				perServer[got]++
			} else if got != home[key] {
				t.Fatalf("round %d: key %s went to %s, before to %s", round, key, got, home[key])
			}
		}
	}
	t.Logf("keys per server: %v", perServer)
	if len(perServer) != 3 {
		t.Fatalf("60 keys went to %d servers, want 3: %v", len(perServer), perServer)
	}
}
