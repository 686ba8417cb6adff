package grpcbalance_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/grpcbalance"
)

// healths keeps the balance.Health each ClientConn of healthPolicy got,
// so that tests can see it closed.
var healths struct {
	sync.Mutex
	all []*balance.Health
}

// healthPolicy is round robin behind passive health checks that eject a
// backend after 3 failures in a row, for a minute.
var healthPolicy = register("test_health_rr", func() balance.Balancer {
	h, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{
		MaxFailures:    3,
		MaxErrorRatio:  -1,
		BaseEjection:   time.Minute,
		PanicThreshold: 0.3,
		Check:          balance.TCPCheck(),
		Interval:       time.Second,
		Timeout:        time.Second, // generous: a busy machine must not fail a check
	})
	if err != nil {
		panic(err)
	}
	healths.Lock()
	healths.all = append(healths.all, h)
	healths.Unlock()
	return h
}, grpcbalance.Config{})

// TestDoneReportsFailures: a server that answers Internal is ejected by
// passive health checks, which hear of each RPC through Choice.Done; one
// that answers NotFound (the application's answer) keeps its share.
func TestDoneReportsFailures(t *testing.T) {
	for _, tc := range []struct {
		code    codes.Code
		ejected bool
	}{
		{codes.Internal, true},
		{codes.Unavailable, true},
		{codes.NotFound, false},
		{codes.InvalidArgument, false},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			srvs := startServers(t, 3)
			srvs[1].SetCode(tc.code)
			client, _, _ := dial(t, healthPolicy, srvs, "")
			for range 30 { // warm up: at most 3 failures reach the sick one
				_, _ = client.UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{})
			}
			c := newCalls(srvs)
			for range 300 {
				_, _ = client.UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{})
			}
			got := c.delta()
			t.Logf("calls per server: %v", got)
			if tc.ejected && got[1] != 0 {
				t.Fatalf("the server answering %v got %d of 300 calls after it failed 3 times", tc.code, got[1])
			}
			if !tc.ejected && got[1] < 90 {
				t.Fatalf("the server answering %v got %d of 300 calls, want a third", tc.code, got[1])
			}
		})
	}
}

// TestCloseClosesTheBalancer: closing the ClientConn closes its Health
// (its Run loop ends, which TestMain's leak check would see otherwise,
// and its Update fails with ErrClosed).
func TestCloseClosesTheBalancer(t *testing.T) {
	srvs := startServers(t, 2)
	healths.Lock()
	before := len(healths.all)
	healths.Unlock()
	client, conn, _ := dial(t, healthPolicy, srvs, "")
	if _, err := client.UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{}); err != nil {
		t.Fatal(err)
	}
	healths.Lock()
	h := healths.all[before]
	healths.Unlock()
	if err := h.Update(nil); err != nil {
		t.Fatalf("Update before Close: %v", err)
	}
	conn.Close()
	waitFor(t, 10*time.Second, "Health closed", func() bool {
		return errors.Is(h.Update(nil), balance.ErrClosed)
	})
}
