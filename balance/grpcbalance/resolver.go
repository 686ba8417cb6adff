package grpcbalance

import (
	"fmt"
	"strings"
	"sync"

	"google.golang.org/grpc/resolver"

	"github.com/scaleout/scaleout/balance"
)

// Resolver is a gRPC resolver fed by any scaleout discovery: it is a
// balance.Updater, so balance.DNS (or a discovery client of your own)
// calls Update with every new backend set, and every ClientConn built on
// it gets the set as its endpoints, with their weights and zones.
//
//	r, err := grpcbalance.NewResolver("users")
//	dns, err := balance.NewDNS(balance.DNSConfig{Name: "users.internal", Port: 50051, Target: r})
//	go dns.Run(ctx)
//	conn, err := grpc.NewClient("users:///users", grpc.WithResolvers(r), ...)
//
// A ClientConn built before the first Update waits for it (its RPCs queue
// or, unless they wait for ready, fail once their deadline runs out), and
// one built after gets the last set at once. It never resolves anything
// itself, so gRPC's ResolveNow hints are ignored: the discovery's own
// interval paces it. Pass it with grpc.WithResolvers rather than
// resolver.Register, to keep it to the ClientConns that mean it. Resolver
// is safe for concurrent use.
type Resolver struct {
	scheme string

	mu    sync.Mutex
	conns map[*resolverConn]struct{}
	state *resolver.State // the last set, nil before the first
}

var (
	_ resolver.Builder = (*Resolver)(nil)
	_ balance.Updater  = (*Resolver)(nil)
)

// NewResolver returns a Resolver for target URIs of the given scheme. It
// fails with ErrInvalidConfig for a scheme that is not a URI scheme in
// lower case (a letter, then letters, digits, '+', '-' or '.').
func NewResolver(scheme string) (*Resolver, error) {
	if !validScheme(scheme) {
		return nil, fmt.Errorf("%w: resolver scheme %q", ErrInvalidConfig, scheme)
	}
	return &Resolver{scheme: scheme, conns: map[*resolverConn]struct{}{}}, nil
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	return strings.IndexFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')
	}) < 0
}

// Scheme implements resolver.Builder.
func (r *Resolver) Scheme() string { return r.scheme }

// Build implements resolver.Builder: gRPC calls it for each ClientConn.
func (r *Resolver) Build(_ resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	rc := &resolverConn{r: r, cc: cc}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns[rc] = struct{}{}
	if r.state != nil {
		_ = cc.UpdateState(*r.state) // an error is the balancer's to report
	}
	return rc, nil
}

// Update gives every ClientConn on r the backends as its endpoints (see
// Endpoint). It fails with balance.ErrInvalidBackend, and changes
// nothing, for an empty or duplicate address or a negative weight. An
// empty set is valid: the ClientConns' RPCs then wait or fail as with no
// backend at all.
func (r *Resolver) Update(backends []balance.Backend) error {
	seen := make(map[string]struct{}, len(backends))
	eps := make([]resolver.Endpoint, 0, len(backends))
	for i, b := range backends {
		switch _, dup := seen[b.Addr]; {
		case b.Addr == "":
			return fmt.Errorf("%w: backend %d has no address", balance.ErrInvalidBackend, i)
		case dup:
			return fmt.Errorf("%w: duplicate address %q", balance.ErrInvalidBackend, b.Addr)
		case b.Weight < 0:
			return fmt.Errorf("%w: %q has negative weight %d", balance.ErrInvalidBackend, b.Addr, b.Weight)
		}
		seen[b.Addr] = struct{}{}
		eps = append(eps, Endpoint(b))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = &resolver.State{Endpoints: eps}
	for rc := range r.conns {
		// Under r.mu, so that the ClientConns get the sets in order. gRPC's
		// UpdateState does not call back into the resolver's methods but
		// ResolveNow, which takes no lock here.
		_ = rc.cc.UpdateState(*r.state)
	}
	return nil
}

// resolverConn is r as one ClientConn sees it.
type resolverConn struct {
	r  *Resolver
	cc resolver.ClientConn
}

func (rc *resolverConn) ResolveNow(resolver.ResolveNowOptions) {}

func (rc *resolverConn) Close() {
	rc.r.mu.Lock()
	defer rc.r.mu.Unlock()
	delete(rc.r.conns, rc)
}
