package grpcbalance_test

import (
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/scaleout/scaleout/balance/grpcbalance"
)

// TestAllBackendsDown: with every server down, an RPC fails Unavailable
// (once the connections have failed), and one that waits for ready waits
// and is served when a server is back.
func TestAllBackendsDown(t *testing.T) {
	srvs := startServers(t, 2)
	client, conn, _ := dial(t, grpcbalance.P2C, srvs, "")
	if _, err := client.UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	srvs[0].Kill()
	srvs[1].Kill()
	// Down as the client sees it: no connection Ready. One RPC failing is
	// not enough: it may fail on one connection while the other has not
	// yet read its EOF, and a call that waits for ready sent on that one
	// fails with it, as gRPC fails any RPC sent on a transport that dies.
	waitFor(t, 20*time.Second, "RPCs failing Unavailable with no connection ready", func() bool {
		_, err := client.UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{})
		return status.Code(err) == codes.Unavailable && conn.GetState() != connectivity.Ready
	})

	served := make(chan error, 1)
	go func() {
		_, err := client.UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{}, grpc.WaitForReady(true))
		served <- err
	}()
	select {
	case err := <-served:
		t.Fatalf("a call that waits for ready returned while every server was down: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := srvs[1].Restart(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("the call that waited for ready: %v", err)
	}
}
