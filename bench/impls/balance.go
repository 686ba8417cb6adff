package impls

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/vulcand/oxy/v2/roundrobin"

	"github.com/scaleout/scaleout/balance"
)

// Picker names. The compare program keys its targets and ratios on them.
const (
	PickFloor  = "floor: atomic counter indexing a slice"
	PickOxy    = "oxy roundrobin"
	PickRR     = "ours RoundRobin"
	PickWRR    = "ours WeightedRoundRobin"
	PickRandom = "ours Random"
	PickLeast  = "ours LeastLoaded"
	PickP2C    = "ours P2C"
	PickHash   = "ours ConsistentHash"
	PickZone   = "ours ZoneAware"
	PickOxyWRR = "oxy roundrobin (weighted)"
)

// A Picker is one way of choosing a backend, timed one pick per op: for
// scaleout's balancers a Pick and its Done (the Done is part of the cost a
// load-aware strategy charges every request), for oxy a NextServer call,
// which is its whole pick (oxy has no per-request completion), and for the
// floor one atomic increment indexing a slice of backends.
type Picker struct {
	// Name labels the picker in reports.
	Name string
	// Bench is the sub-benchmark name: no spaces or slashes.
	Bench string
	// Ours marks scaleout's balance strategies.
	Ours bool
	// Config says in words how it is configured, for the report.
	Config string
	// Pick picks one backend for key and returns its address. Only
	// ConsistentHash and ZoneAware look at the key. It panics if the
	// balancer fails, which it cannot once built (Pickers checks one pick
	// of each).
	Pick func(key string) string
}

// PickKeys are the keys the pickers are called with: 1024 of NewKeys'
// 23-byte keys, cycled.
func PickKeys() []string { return NewKeys(1024).S }

// Backends returns n distinct backends 10.0.x.y:80, alternating between
// zones "a" and "b"; weighted gives backend i the weight 1 + i%10
// (weights 1 to 10, varied), otherwise every weight is 0 (meaning 1).
func Backends(n int, weighted bool) []balance.Backend {
	bs := make([]balance.Backend, n)
	for i := range bs {
		bs[i] = balance.Backend{Addr: fmt.Sprintf("10.0.%d.%d:80", i/250, i%250+1), Zone: string(rune('a' + i%2))}
		if weighted {
			bs[i].Weight = 1 + i%10
		}
	}
	return bs
}

// Pickers returns the floor, oxy's roundrobin and every scaleout strategy,
// each built over n unweighted backends, in that order.
func Pickers(n int) ([]Picker, error) {
	backends := Backends(n, false)
	oxy, err := newOxy(backends)
	if err != nil {
		return nil, err
	}
	ps := []Picker{
		floor(backends),
		{Name: PickOxy, Bench: "oxy-roundrobin", Config: "vulcand/oxy/v2 v2.0.2 roundrobin.New(http.NotFoundHandler()), UpsertServer per backend; NextServer", Pick: oxy},
	}
	ours := []struct {
		name, bench, config string
		new                 func() (balance.Balancer, error)
	}{
		{PickRR, "ours-RoundRobin", "balance.NewRoundRobin()", func() (balance.Balancer, error) {
			return balance.NewRoundRobin(), nil
		}},
		{PickWRR, "ours-WeightedRoundRobin", "balance.NewWeightedRoundRobin() (equal weights here)", func() (balance.Balancer, error) {
			return balance.NewWeightedRoundRobin(), nil
		}},
		{PickRandom, "ours-Random", "balance.NewRandom()", func() (balance.Balancer, error) {
			return balance.NewRandom(), nil
		}},
		{PickLeast, "ours-LeastLoaded", "balance.NewLeastLoaded(LeastLoadedConfig{})", func() (balance.Balancer, error) {
			return balance.NewLeastLoaded(balance.LeastLoadedConfig{}), nil
		}},
		{PickP2C, "ours-P2C", "balance.NewP2C(P2CConfig{})", func() (balance.Balancer, error) {
			return balance.NewP2C(balance.P2CConfig{})
		}},
		{PickHash, "ours-ConsistentHash", "balance.NewConsistentHash(ConsistentHashConfig{})", func() (balance.Balancer, error) {
			return balance.NewConsistentHash(balance.ConsistentHashConfig{})
		}},
		{PickZone, "ours-ZoneAware", `balance.NewZoneAware(ZoneAwareConfig{Local: "a"}), backends alternating zones a and b`, func() (balance.Balancer, error) {
			return balance.NewZoneAware(balance.ZoneAwareConfig{Local: "a"})
		}},
	}
	for _, o := range ours {
		lb, err := o.new()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.name, err)
		}
		pick, err := oursPick(lb, backends)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.name, err)
		}
		ps = append(ps, Picker{Name: o.name, Bench: o.bench, Ours: true, Config: o.config, Pick: pick})
	}
	return ps, nil
}

// WeightedPickers returns the floor, oxy's roundrobin and our
// WeightedRoundRobin over n backends of weights 1 to 10 (Backends(n,
// true)), in that order: the large weighted set the issue sizes
// WeightedRoundRobin for. (The floor ignores the weights.)
func WeightedPickers(n int) ([]Picker, error) {
	backends := Backends(n, true)
	oxy, err := newOxy(backends)
	if err != nil {
		return nil, err
	}
	pick, err := oursPick(balance.NewWeightedRoundRobin(), backends)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", PickWRR, err)
	}
	return []Picker{
		floor(backends),
		{Name: PickOxyWRR, Bench: "oxy-roundrobin", Config: "as oxy roundrobin, each backend upserted with roundrobin.Weight(1 + i%10)", Pick: oxy},
		{Name: PickWRR, Bench: "ours-WeightedRoundRobin", Ours: true, Config: "balance.NewWeightedRoundRobin(), weights 1 + i%10", Pick: pick},
	}, nil
}

// floor is the cheapest pick there is, the one the issue measured at
// about 2 ns: an atomic counter indexing a slice, with no balancer API
// around it.
func floor(backends []balance.Backend) Picker {
	var next atomic.Uint64
	n := uint64(len(backends))
	return Picker{
		Name: PickFloor, Bench: "floor",
		Config: "backends[(counter.Add(1)-1) % n].Addr with an atomic.Uint64 counter; no balancer",
		Pick:   func(string) string { return backends[(next.Add(1)-1)%n].Addr },
	}
}

// newOxy builds oxy's roundrobin over backends, with their weights when
// set, and returns its NextServer as a pick.
func newOxy(backends []balance.Backend) (func(string) string, error) {
	lb, err := roundrobin.New(http.NotFoundHandler())
	if err != nil {
		return nil, fmt.Errorf("oxy roundrobin: %w", err)
	}
	for _, b := range backends {
		u, err := url.Parse("http://" + b.Addr)
		if err != nil {
			return nil, fmt.Errorf("oxy roundrobin: %w", err)
		}
		var opts []roundrobin.ServerOption
		if b.Weight > 0 {
			opts = append(opts, roundrobin.Weight(b.Weight))
		}
		if err := lb.UpsertServer(u, opts...); err != nil {
			return nil, fmt.Errorf("oxy roundrobin: %w", err)
		}
	}
	if _, err := lb.NextServer(); err != nil {
		return nil, fmt.Errorf("oxy roundrobin: %w", err)
	}
	return func(string) string {
		u, err := lb.NextServer()
		if err != nil {
			panic(fmt.Sprintf("oxy roundrobin: NextServer: %v", err))
		}
		return u.Host
	}, nil
}

// oursPick gives lb the backends and returns its Pick and Done as a pick,
// after checking that one pick succeeds.
func oursPick(lb balance.Balancer, backends []balance.Backend) (func(string) string, error) {
	if err := lb.Update(backends); err != nil {
		return nil, err
	}
	ctx := context.Background()
	c, err := lb.Pick(ctx, "user:000000000000000000")
	if err != nil {
		return nil, err
	}
	c.Done(nil)
	return func(key string) string {
		c, err := lb.Pick(ctx, key)
		if err != nil {
			panic(fmt.Sprintf("balance: Pick: %v", err))
		}
		c.Done(nil)
		return c.Backend().Addr
	}, nil
}

// PickSink receives the pick benchmarks' results (the total length of the
// picked addresses) so the compiler cannot drop the picks.
var PickSink atomic.Int64

// Serial is the body of the serial pick benchmarks: one pick per
// iteration, cycling through keys (a power-of-two count). It reports
// allocations.
func (p Picker) Serial(b *testing.B, keys []string) {
	b.ReportAllocs()
	mask := pickMask(b, keys)
	pick, sum := p.Pick, 0
	for i := 0; b.Loop(); i++ {
		sum += len(pick(keys[i&mask]))
	}
	PickSink.Add(int64(sum))
}

// Parallel is Serial under RunParallel: every goroutine picks from the
// same balancer, each cycling through keys from its own offset.
func (p Picker) Parallel(b *testing.B, keys []string) {
	b.ReportAllocs()
	mask := pickMask(b, keys)
	var offset atomic.Int64
	pick := p.Pick
	b.RunParallel(func(pb *testing.PB) {
		i, sum := int(offset.Add(257)), 0
		for pb.Next() {
			sum += len(pick(keys[i&mask]))
			i++
		}
		PickSink.Add(int64(sum))
	})
}

func pickMask(b *testing.B, keys []string) int {
	mask := len(keys) - 1
	if len(keys) == 0 || mask&(mask+1) != 0 {
		b.Fatal("impls: pick key count must be a power of two")
	}
	return mask
}
