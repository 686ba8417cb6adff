package grpcbalance_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/scaleout/scaleout/balance/grpcbalance"
)

func TestLoadTable(t *testing.T) {
	tab := grpcbalance.NewLoadTable(time.Hour)
	if got := tab.Load("a:1"); got != 0 {
		t.Fatalf("unknown address: Load = %v, want 0", got)
	}
	tab.Record("a:1", metadata.Pairs(grpcbalance.LoadTrailer, "inflight=7"))
	tab.Record("b:1", metadata.Pairs("other", "inflight=9")) // no report
	if got := tab.Load("a:1"); got != 7 {
		t.Fatalf("Load = %v, want 7", got)
	}
	if got := tab.Load("b:1"); got != 0 {
		t.Fatalf("Load without a report = %v, want 0", got)
	}
	for _, bad := range []string{"inflight=-3", "inflight=x", "7", "", "inflight=1e3"} {
		tab.Record("a:1", metadata.Pairs(grpcbalance.LoadTrailer, bad))
		if got := tab.Load("a:1"); got != 7 {
			t.Fatalf("after the malformed report %q: Load = %v, want the last good 7", bad, got)
		}
	}
	tab.Record("a:1", metadata.Pairs(grpcbalance.LoadTrailer, "inflight=0"))
	if got := tab.Load("a:1"); got != 0 {
		t.Fatalf("Load = %v, want 0", got)
	}
}

// TestLoadTableForgetsStaleReports: a report counts for MaxAge, after
// which the balancer's own count decides again; a table that saw many
// servers come and go forgets the stale ones rather than grow for ever.
func TestLoadTableForgetsStaleReports(t *testing.T) {
	tab := grpcbalance.NewLoadTable(50 * time.Millisecond)
	tab.Record("a:1", metadata.Pairs(grpcbalance.LoadTrailer, "inflight=5"))
	if got := tab.Load("a:1"); got != 5 {
		t.Fatalf("Load = %v, want 5", got)
	}
	waitFor(t, 10*time.Second, "the report stale", func() bool { return tab.Load("a:1") == 0 })

	// 63 addresses, stale by now (a:1 among them)...
	for i := range 62 {
		tab.Record(fmt.Sprintf("old%d:1", i), metadata.Pairs(grpcbalance.LoadTrailer, "inflight=1"))
	}
	waitFor(t, 10*time.Second, "the reports stale", func() bool { return tab.Load("old0:1") == 0 })
	// ... and the 64th prunes them.
	tab.Record("new:1", metadata.Pairs(grpcbalance.LoadTrailer, "inflight=2"))
	if n := grpcbalance.LoadTableSize(tab); n != 1 {
		t.Fatalf("%d addresses kept, want 1 (the fresh one)", n)
	}
	if got := tab.Load("new:1"); got != 2 {
		t.Fatalf("Load = %v, want 2", got)
	}
}

// TestLoadReporterTrailer: a server with the reporter's interceptors
// tells, in each response's trailer, how many RPCs it is still serving.
func TestLoadReporterTrailer(t *testing.T) {
	srvs := startServers(t, 1)
	client, _, _ := dial(t, grpcbalance.RoundRobin, srvs, "")
	var md metadata.MD
	if _, err := client.UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{}, grpc.Trailer(&md)); err != nil {
		t.Fatal(err)
	}
	if got := md.Get(grpcbalance.LoadTrailer); len(got) != 1 || got[0] != "inflight=0" {
		t.Fatalf("trailer %s = %q, want inflight=0", grpcbalance.LoadTrailer, got)
	}
}

// TestLoadReporterStreamTrailer: streams report too (the test server's
// streaming methods answer Unimplemented, after the interceptor ran).
func TestLoadReporterStreamTrailer(t *testing.T) {
	srvs := startServers(t, 1)
	client, _, _ := dial(t, grpcbalance.RoundRobin, srvs, "")
	stream, err := client.StreamingOutputCall(ctxTimeout(t), &testpb.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Unimplemented {
		t.Fatalf("Recv = %v, want Unimplemented", err)
	}
	if got := stream.Trailer().Get(grpcbalance.LoadTrailer); len(got) != 1 || got[0] != "inflight=0" {
		t.Fatalf("trailer %s = %q, want inflight=0", grpcbalance.LoadTrailer, got)
	}
}
