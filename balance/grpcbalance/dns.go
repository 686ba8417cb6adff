package grpcbalance

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"google.golang.org/grpc/resolver"

	"github.com/scaleout/scaleout/balance"
)

// DNSScheme is the scheme of the DNS resolver this package registers
// when it is imported: "scaleout-dns:///users.internal:50051" resolves
// users.internal with balance.DNS, port 50051, refreshed every 30 s.
const DNSScheme = "scaleout-dns"

func init() {
	resolver.Register(&DNSResolver{})
}

// DNSResolver resolves "scaleout-dns:///host:port" targets with
// balance.DNS: A and AAAA records, refreshed every Interval; a failed
// lookup keeps the last good set (gRPC's own dns resolver resolves again
// only when a connection fails, and empties nothing either). For another
// Interval, a resolver of its own, SRV records or zones, give
// grpc.WithResolvers a DNSResolver whose Config says so, or feed a
// Resolver from a balance.DNS you run yourself.
type DNSResolver struct {
	// Config is the template of every lookup; the target sets its Name
	// and Port (with SRV: its Name only, "scaleout-dns:///_grpc._tcp.users.internal"),
	// and its Target is the ClientConn.
	Config balance.DNSConfig
	// Scheme is the scheme the resolver answers; "" means DNSScheme.
	SchemeName string
}

// Scheme implements resolver.Builder.
func (d *DNSResolver) Scheme() string {
	if d.SchemeName == "" {
		return DNSScheme
	}
	return d.SchemeName
}

// Build implements resolver.Builder: it starts the lookups of one
// ClientConn, which its Close stops. It fails with ErrInvalidConfig for a
// target without a port (but with SRV, where it must have none), or
// whose port is not a number from 1 to 65535.
func (d *DNSResolver) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	cfg := d.Config
	ep := target.Endpoint()
	if cfg.SRV {
		cfg.Name = ep
	} else {
		host, port, err := net.SplitHostPort(ep)
		if err != nil {
			return nil, fmt.Errorf("%w: target %q: %v", ErrInvalidConfig, ep, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%w: target %q: port %q", ErrInvalidConfig, ep, port)
		}
		cfg.Name, cfg.Port = host, p
	}
	cfg.Target = ccUpdater{cc}
	var dns *balance.DNS
	onError := cfg.OnError
	cfg.OnError = func(err error) {
		if onError != nil {
			onError(err)
		} else {
			logger.Warningf("%s: %v", ep, err)
		}
		// Before the first set, the ClientConn is told, so that its RPCs
		// fail with the lookup's error rather than time out; after it,
		// the last good set stays in use, as balance.DNS intends.
		if _, ok := dns.Backends(); !ok {
			cc.ReportError(err)
		}
	}
	dns, err := balance.NewDNS(cfg)
	if err != nil {
		return nil, fmt.Errorf("grpcbalance: target %q: %w", ep, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &dnsResolver{cancel: cancel}
	r.wg.Go(func() { _ = dns.Run(ctx) })
	return r, nil
}

// ccUpdater gives a ClientConn the sets balance.DNS resolves.
type ccUpdater struct{ cc resolver.ClientConn }

func (u ccUpdater) Update(backends []balance.Backend) error {
	eps := make([]resolver.Endpoint, len(backends))
	for i, b := range backends {
		eps[i] = Endpoint(b)
	}
	// gRPC's error says the balancer did not like the set (none of it
	// reachable yet, say): not a failed lookup, and the set is given.
	_ = u.cc.UpdateState(resolver.State{Endpoints: eps})
	return nil
}

type dnsResolver struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ResolveNow is ignored: the lookups keep their Interval, so that a
// flapping backend does not turn into a storm of DNS queries; a backend's
// reconnection is the subchannel's business meanwhile.
func (r *dnsResolver) ResolveNow(resolver.ResolveNowOptions) {}

// Close stops the lookups and returns once they have stopped.
func (r *dnsResolver) Close() {
	r.cancel()
	r.wg.Wait()
}
