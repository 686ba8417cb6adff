package grpcbalance_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/grpcbalance"
	"github.com/scaleout/scaleout/balance/grpcbalance/internal/testsrv"
)

// TestMain fails the run when a test leaves a goroutine behind: a
// ClientConn's balancer, its Health loop or a resolver that outlives
// Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// reconnectDelay caps the subchannels' reconnection backoff in the tests:
// the "health interval" within which a restarted server is back.
const reconnectDelay = time.Second

// startServers starts n test servers, closed at the test's end.
func startServers(t testing.TB, n int) []*testsrv.Server {
	t.Helper()
	srvs, err := testsrv.StartN(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range srvs {
			s.Close()
		}
	})
	return srvs
}

// backendsOf is the servers as a backend set.
func backendsOf(srvs []*testsrv.Server) []balance.Backend {
	out := make([]balance.Backend, len(srvs))
	for i, s := range srvs {
		out[i] = balance.Backend{Addr: s.Addr}
	}
	return out
}

var resolverSeq int

// dial returns a client of the servers through policy, on a Resolver of
// its own, closed at the test's end. serviceConfig, when not empty, is
// added to the service config (a retry policy, say).
func dial(t testing.TB, policy string, srvs []*testsrv.Server, extra string) (testpb.TestServiceClient, *grpc.ClientConn, *grpcbalance.Resolver) {
	t.Helper()
	resolverSeq++
	r, err := grpcbalance.NewResolver(fmt.Sprintf("test%d", resolverSeq))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Update(backendsOf(srvs)); err != nil {
		t.Fatal(err)
	}
	return dialWith(t, r, policy, extra)
}

// dialWith returns a client of r's servers through policy.
func dialWith(t testing.TB, r *grpcbalance.Resolver, policy, extra string) (testpb.TestServiceClient, *grpc.ClientConn, *grpcbalance.Resolver) {
	t.Helper()
	sc := fmt.Sprintf(`{"loadBalancingConfig": [{%q: {}}]%s}`, policy, extra)
	conn, err := grpc.NewClient(r.Scheme()+":///test",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(sc),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: reconnectDelay},
			MinConnectTimeout: 5 * time.Second,
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return testpb.NewTestServiceClient(conn), conn, r
}

// calls counts each server's calls since the last snapshot.
type calls struct {
	srvs []*testsrv.Server
	last []int64
}

func newCalls(srvs []*testsrv.Server) *calls {
	c := &calls{srvs: srvs, last: make([]int64, len(srvs))}
	c.delta()
	return c
}

// delta returns each server's calls since the previous delta.
func (c *calls) delta() []int64 {
	out := make([]int64, len(c.srvs))
	for i, s := range c.srvs {
		n := s.Calls()
		out[i], c.last[i] = n-c.last[i], n
	}
	return out
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ctxTimeout is a context for one test call: generous, for a busy machine.
func ctxTimeout(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// register registers a test policy, failing the program if it cannot:
// called from init, before any ClientConn exists, as gRPC requires.
func register(name string, newBalancer func() balance.Balancer, cfg grpcbalance.Config) string {
	if err := grpcbalance.Register(name, newBalancer, cfg); err != nil {
		panic(err)
	}
	return name
}
