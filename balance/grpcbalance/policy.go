package grpcbalance

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/grpc/balancer"

	"github.com/scaleout/scaleout/balance"
)

// ErrInvalidConfig is what Register returns for a bad name, factory or
// Config. It wraps balance.ErrInvalidConfig, so either may be tested with
// errors.Is.
var ErrInvalidConfig = fmt.Errorf("grpcbalance: %w", balance.ErrInvalidConfig)

// ErrNameTaken is what Register returns for a policy name that gRPC
// already knows from another package (round_robin, pick_first, ...):
// gRPC would silently replace it for every ClientConn of the process.
var ErrNameTaken = errors.New("grpcbalance: policy name already registered")

// ErrNilBalancer is the error of every RPC of a ClientConn whose policy's
// factory returned a nil balance.Balancer: the RPCs fail with status
// Internal and this message rather than the picker panicking.
var ErrNilBalancer = errors.New("grpcbalance: the policy's factory returned a nil balance.Balancer")

// Config configures a policy registered with Register. The zero value is
// the default: no key, no load reports, IsFailure.
type Config struct {
	// KeyMetadata names the outgoing metadata whose first value is the key
	// passed to Balancer.Pick, for balance.ConsistentHash; "" passes no
	// key. Metadata keys are lower case (gRPC lowers them). The metadata
	// also reaches the server, like any other.
	KeyMetadata string
	// Loads, when set, records the load every response's trailer reports
	// (see LoadTrailer and LoadReporter), for a balancer built to read it:
	// pass the same table as balance.P2CConfig.Reports or as
	// balance.LeastLoadedConfig.Load (Loads.Load).
	Loads *LoadTable
	// IsFailure tells whether an RPC's error counts against the backend
	// in Choice.Done; nil means IsFailure. It is not asked about nil
	// errors (successes) nor about Canceled (reported as
	// balance.ErrAborted).
	IsFailure func(err error) bool
}

// Names of the policies this package registers when it is imported, each
// over a new balancer of its kind per ClientConn. Pick one in the service
// config: {"loadBalancingConfig": [{"scaleout_p2c": {}}]}.
const (
	// RoundRobin is balance.RoundRobin.
	RoundRobin = "scaleout_round_robin"
	// WeightedRoundRobin is balance.WeightedRoundRobin, with the weights
	// that Resolver or the scaleout-dns resolver (SRV) carry.
	WeightedRoundRobin = "scaleout_weighted_round_robin"
	// Random is balance.Random.
	Random = "scaleout_random"
	// P2C is balance.P2C with the servers' load reports (LoadReporter)
	// from the response trailers, in DefaultLoads.
	P2C = "scaleout_p2c"
	// LeastLoaded is balance.LeastLoaded with the servers' load reports
	// from the response trailers, in DefaultLoads.
	LeastLoaded = "scaleout_least_loaded"
	// ConsistentHash is balance.ConsistentHash keyed by the metadata
	// DefaultKeyMetadata.
	ConsistentHash = "scaleout_consistent_hash"
)

// DefaultKeyMetadata is the key's metadata of the ConsistentHash policy:
//
//	ctx = metadata.AppendToOutgoingContext(ctx, grpcbalance.DefaultKeyMetadata, userID)
const DefaultKeyMetadata = "balance-key"

// DefaultLoads is the table of the servers' reported loads that the P2C
// and LeastLoaded policies read and fill. It is shared by their
// ClientConns: a server's in-flight count is the same whichever
// connection learnt it.
var DefaultLoads = NewLoadTable(0)

func init() {
	for _, p := range []struct {
		name string
		new  func() balance.Balancer
		cfg  Config
	}{
		{RoundRobin, func() balance.Balancer { return balance.NewRoundRobin() }, Config{}},
		{WeightedRoundRobin, func() balance.Balancer { return balance.NewWeightedRoundRobin() }, Config{}},
		{Random, func() balance.Balancer { return balance.NewRandom() }, Config{}},
		{P2C, func() balance.Balancer {
			p, _ := balance.NewP2C(balance.P2CConfig{Reports: DefaultLoads}) // a valid config: no error
			return p
		}, Config{Loads: DefaultLoads}},
		{LeastLoaded, func() balance.Balancer {
			return balance.NewLeastLoaded(balance.LeastLoadedConfig{Load: DefaultLoads.Load})
		}, Config{Loads: DefaultLoads}},
		{ConsistentHash, func() balance.Balancer {
			h, _ := balance.NewConsistentHash(balance.ConsistentHashConfig{}) // a valid config: no error
			return h
		}, Config{KeyMetadata: DefaultKeyMetadata}},
	} {
		if err := Register(p.name, p.new, p.cfg); err != nil {
			panic(err) // not reached: the names are ours and valid
		}
	}
}

// ours holds the names Register registered, which it may register again.
var ours sync.Map // name → struct{}

// Register registers with gRPC a load-balancing policy named name, which
// gives every ClientConn that selects it a balancer of its own, made by
// newBalancer (see the package doc). Like balancer.Register, it must be
// called before the ClientConns that use the name are created,
// typically in an init function. A name registered by this package may
// be registered again, replacing the previous policy for ClientConns
// created after.
//
// It fails with ErrInvalidConfig for an empty name, a name with upper
// case letters (gRPC's registry is case sensitive, and service configs
// name policies in lower case), a nil newBalancer or a KeyMetadata with
// upper case letters, and with ErrNameTaken for a name another package
// registered.
func Register(name string, newBalancer func() balance.Balancer, cfg Config) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty policy name", ErrInvalidConfig)
	case strings.ToLower(name) != name:
		return fmt.Errorf("%w: policy name %q is not lower case", ErrInvalidConfig, name)
	case newBalancer == nil:
		return fmt.Errorf("%w: policy %q: nil balancer factory", ErrInvalidConfig, name)
	case strings.ToLower(cfg.KeyMetadata) != cfg.KeyMetadata:
		return fmt.Errorf("%w: policy %q: KeyMetadata %q is not lower case", ErrInvalidConfig, name, cfg.KeyMetadata)
	}
	if _, mine := ours.Load(name); !mine && balancer.Get(name) != nil {
		return fmt.Errorf("%w: %q", ErrNameTaken, name)
	}
	if cfg.IsFailure == nil {
		cfg.IsFailure = IsFailure
	}
	ours.Store(name, struct{}{})
	balancer.Register(&builder{name: name, newBalancer: newBalancer, cfg: cfg})
	return nil
}
