package grpcbalance_test

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/grpcbalance"
)

var nilPolicy = register("test_nil_balancer", func() balance.Balancer { return nil }, grpcbalance.Config{})

func TestRegisterRejectsBadInput(t *testing.T) {
	rr := func() balance.Balancer { return balance.NewRoundRobin() }
	for _, tc := range []struct {
		what    string
		name    string
		factory func() balance.Balancer
		cfg     grpcbalance.Config
		want    error
	}{
		{"empty name", "", rr, grpcbalance.Config{}, grpcbalance.ErrInvalidConfig},
		{"upper case name", "My_Policy", rr, grpcbalance.Config{}, grpcbalance.ErrInvalidConfig},
		{"nil factory", "test_nil_factory", nil, grpcbalance.Config{}, grpcbalance.ErrInvalidConfig},
		{"upper case key", "test_bad_key", rr, grpcbalance.Config{KeyMetadata: "User-ID"}, grpcbalance.ErrInvalidConfig},
		{"grpc's own name", "round_robin", rr, grpcbalance.Config{}, grpcbalance.ErrNameTaken},
		{"pick_first", "pick_first", rr, grpcbalance.Config{}, grpcbalance.ErrNameTaken},
	} {
		err := grpcbalance.Register(tc.name, tc.factory, tc.cfg)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Register = %v, want %v", tc.what, err, tc.want)
		}
		if errors.Is(tc.want, grpcbalance.ErrInvalidConfig) && !errors.Is(err, balance.ErrInvalidConfig) {
			t.Errorf("%s: %v does not wrap balance.ErrInvalidConfig", tc.what, err)
		}
	}
}

// TestNilBalancerFailsRPCs: a factory that returns nil fails the
// ClientConn's RPCs with a clear status at once, even those that wait for
// ready, rather than panicking in the picker or hanging.
func TestNilBalancerFailsRPCs(t *testing.T) {
	srvs := startServers(t, 1)
	client, _, _ := dial(t, nilPolicy, srvs, "")
	_, err := client.UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), grpcbalance.ErrNilBalancer.Error()) {
		t.Fatalf("UnaryCall = %v, want Internal: %v", err, grpcbalance.ErrNilBalancer)
	}
	if n := srvs[0].Calls(); n != 0 {
		t.Fatalf("the server got %d calls", n)
	}
}

// TestReadyMadePolicies: every policy the package registers serves calls
// over three servers and spreads them.
func TestReadyMadePolicies(t *testing.T) {
	srvs := startServers(t, 3)
	for _, policy := range []string{
		grpcbalance.RoundRobin, grpcbalance.WeightedRoundRobin, grpcbalance.Random,
		grpcbalance.P2C, grpcbalance.LeastLoaded, grpcbalance.ConsistentHash,
	} {
		client, conn, _ := dial(t, policy, srvs, "")
		c := newCalls(srvs)
		for range 300 {
			if _, err := client.UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{}); err != nil {
				t.Fatalf("%s: %v", policy, err)
			}
		}
		got := c.delta()
		for i, n := range got {
			if n == 0 {
				t.Errorf("%s: server %d got no call of 300 (%v)", policy, i, got)
			}
		}
		conn.Close()
	}
}
