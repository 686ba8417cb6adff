package grpcbalance_test

import (
	"errors"
	"testing"
	"time"

	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/grpcbalance"
)

func TestNewResolverRejectsBadScheme(t *testing.T) {
	for _, scheme := range []string{"", "Users", "1users", "us ers", "users:"} {
		if _, err := grpcbalance.NewResolver(scheme); !errors.Is(err, grpcbalance.ErrInvalidConfig) {
			t.Errorf("NewResolver(%q) = %v, want ErrInvalidConfig", scheme, err)
		}
	}
}

func TestResolverRejectsBadSet(t *testing.T) {
	r, err := grpcbalance.NewResolver("users")
	if err != nil {
		t.Fatal(err)
	}
	for what, set := range map[string][]balance.Backend{
		"empty address":   {{Addr: ""}},
		"duplicate":       {{Addr: "a:1"}, {Addr: "a:1"}},
		"negative weight": {{Addr: "a:1", Weight: -1}},
	} {
		if err := r.Update(set); !errors.Is(err, balance.ErrInvalidBackend) {
			t.Errorf("%s: Update = %v, want ErrInvalidBackend", what, err)
		}
	}
}

// TestResolverUpdates: a ClientConn follows the sets given to Update: a
// server taken out of the set gets no more calls, and weights reach the
// weighted policy.
func TestResolverUpdates(t *testing.T) {
	srvs := startServers(t, 3)
	client, _, r := dial(t, grpcbalance.WeightedRoundRobin, srvs, "")
	call := func(n int) []int64 {
		c := newCalls(srvs)
		for range n {
			if _, err := client.UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{}); err != nil {
				t.Fatal(err)
			}
		}
		return c.delta()
	}
	if got := call(300); got[0] == 0 || got[1] == 0 || got[2] == 0 {
		t.Fatalf("calls per server %v: want all three", got)
	}

	// Weights 3:1:1.
	set := backendsOf(srvs)
	set[0].Weight = 3
	if err := r.Update(set); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "weights applied", func() bool {
		got := call(50)
		return got[0] == 30 && got[1] == 10 && got[2] == 10
	})

	// Without the third server.
	if err := r.Update(set[:2]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the third server out of the set", func() bool {
		return call(40)[2] == 0
	})
	if got := call(400); got[2] != 0 || got[0] != 300 || got[1] != 100 {
		t.Fatalf("calls per server %v, want [300 100 0]", got)
	}
}

// TestResolverLateClientConn: a ClientConn built after the last Update
// gets its set at once.
func TestResolverLateClientConn(t *testing.T) {
	srvs := startServers(t, 2)
	_, conn, r := dial(t, grpcbalance.RoundRobin, srvs, "")
	conn.Close()
	if err := r.Update(backendsOf(srvs[1:])); err != nil {
		t.Fatal(err)
	}
	client, _, _ := dialWith(t, r, grpcbalance.RoundRobin, "")
	c := newCalls(srvs)
	for range 20 {
		if _, err := client.UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.delta(); got[0] != 0 || got[1] != 20 {
		t.Fatalf("calls per server %v, want [0 20]", got)
	}
}
