package grpcbalance

import (
	"google.golang.org/grpc/resolver"

	"github.com/scaleout/scaleout/balance"
)

// backendKey is the endpoint attribute that carries a balance.Backend's
// Weight and Zone from a resolver of this package to the policy.
type backendKey struct{}

// Endpoint returns the gRPC endpoint of b, carrying its Weight and Zone
// for the policies of this package (WeightedRoundRobin reads Weight,
// balance.ZoneAware reads Zone). Other resolvers' endpoints weigh 1 and
// have no zone.
func Endpoint(b balance.Backend) resolver.Endpoint {
	ep := resolver.Endpoint{Addresses: []resolver.Address{{Addr: b.Addr}}}
	if b.Weight != 0 || b.Zone != "" {
		ep.Attributes = ep.Attributes.WithValue(backendKey{}, backendAttr{weight: b.Weight, zone: b.Zone})
	}
	return ep
}

// backendAttr is comparable, as endpoint attributes must be.
type backendAttr struct {
	weight int
	zone   string
}

// endpointBackend is the balance.Backend of a gRPC endpoint: its first
// address (the one that names it), with the Weight and Zone Endpoint set.
func endpointBackend(ep resolver.Endpoint) balance.Backend {
	b := balance.Backend{Addr: ep.Addresses[0].Addr}
	if a, ok := ep.Attributes.Value(backendKey{}).(backendAttr); ok && a.weight > 0 {
		b.Weight, b.Zone = a.weight, a.zone
	} else if ok {
		b.Zone = a.zone
	}
	return b
}
