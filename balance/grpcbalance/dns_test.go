package grpcbalance_test

import (
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/resolver"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/grpcbalance"
)

// TestDNSResolver: "scaleout-dns:///localhost:port" reaches the server
// through balance.DNS (localhost from the hosts file, IPv4 only).
func TestDNSResolver(t *testing.T) {
	srvs := startServers(t, 1)
	_, port, _ := splitPort(srvs[0].Addr)
	d := &grpcbalance.DNSResolver{Config: balance.DNSConfig{Network: "ip4", Interval: time.Minute}}
	conn, err := grpc.NewClient(fmt.Sprintf("%s:///localhost:%s", grpcbalance.DNSScheme, port),
		grpc.WithResolvers(d),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"scaleout_round_robin": {}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := testpb.NewTestServiceClient(conn).UnaryCall(ctxTimeout(t), &testpb.SimpleRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetServerId() != srvs[0].ID {
		t.Fatalf("answered by %q", resp.GetServerId())
	}
}

func TestDNSResolverRejectsBadTarget(t *testing.T) {
	d := &grpcbalance.DNSResolver{}
	for _, target := range []string{"scaleout-dns:///users", "scaleout-dns:///users:0", "scaleout-dns:///users:http", "scaleout-dns:///users:70000"} {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		r, err := d.Build(resolver.Target{URL: *u}, nil, resolver.BuildOptions{})
		if !errors.Is(err, grpcbalance.ErrInvalidConfig) {
			t.Errorf("Build(%s) = %v, want ErrInvalidConfig", target, err)
		}
		if r != nil {
			r.Close()
		}
	}
	// A DNSConfig balance.DNS rejects is the Build's error too.
	u, _ := url.Parse("scaleout-dns:///users:80")
	bad := &grpcbalance.DNSResolver{Config: balance.DNSConfig{Network: "tcp"}}
	if _, err := bad.Build(resolver.Target{URL: *u}, nil, resolver.BuildOptions{}); !errors.Is(err, balance.ErrInvalidConfig) {
		t.Errorf("Build with Network tcp = %v, want balance.ErrInvalidConfig", err)
	}
}

func splitPort(addr string) (string, string, error) {
	u, err := url.Parse("//" + addr)
	if err != nil {
		return "", "", err
	}
	return u.Hostname(), u.Port(), nil
}
