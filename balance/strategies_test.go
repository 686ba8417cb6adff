package balance_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/balancetest"
)

// strategies are every Balancer of the package, each made with no
// backends, so that what they all promise is tested once for all.
var strategies = []struct {
	name string
	new  func(t *testing.T) balance.Balancer
}{
	{"RoundRobin", func(*testing.T) balance.Balancer { return balance.NewRoundRobin() }},
	{"RoundRobin/zero", func(*testing.T) balance.Balancer { return new(balance.RoundRobin) }},
	{"WeightedRoundRobin", func(*testing.T) balance.Balancer { return balance.NewWeightedRoundRobin() }},
	{"WeightedRoundRobin/zero", func(*testing.T) balance.Balancer { return new(balance.WeightedRoundRobin) }},
	{"Random", func(*testing.T) balance.Balancer { return balance.NewRandom() }},
	{"Random/zero", func(*testing.T) balance.Balancer { return new(balance.Random) }},
	{"LeastLoaded", func(*testing.T) balance.Balancer { return balance.NewLeastLoaded(balance.LeastLoadedConfig{}) }},
	{"LeastLoadedIndexed", func(*testing.T) balance.Balancer { return balance.NewLeastLoadedIndexed(balance.LeastLoadedConfig{}) }},
	// The kit's backends are fictitious and answer at once: the only
	// latency P2C could measure is the kit's own time between Pick and
	// Done, which on a loaded machine is scheduling noise of several
	// milliseconds, above the default MinLatency; P2C then rightly
	// prefers whichever backend that noise made look faster, and with the
	// kit's one-at-a-time picks (equal in-flight counts) the other loses
	// every draw. A floor above any such noise makes the backends equal
	// as P2C measures them, as the kit requires; its in-flight counting,
	// which the kit checks (late and double Done), is untouched. P2C's
	// latency rules are tested on the fake clock in p2c_test.go.
	{"P2C", func(t *testing.T) balance.Balancer {
		p, err := balance.NewP2C(balance.P2CConfig{MinLatency: time.Minute})
		require.NoError(t, err)
		return p
	}},
	{"ConsistentHash", func(t *testing.T) balance.Balancer {
		h, err := balance.NewConsistentHash(balance.ConsistentHashConfig{})
		require.NoError(t, err)
		return h
	}},
	// The kit's backends are in zones "a" and "b": with every caller in
	// "a", half the traffic spills to "b"; with callers in a zone with no
	// backends, all of it does.
	{"ZoneAware/spilling", func(t *testing.T) balance.Balancer {
		return newZoneAware(t, balance.ZoneAwareConfig{Local: "a", LocalShare: 1})
	}},
	{"ZoneAware/no-local", func(t *testing.T) balance.Balancer {
		return newZoneAware(t, balance.ZoneAwareConfig{Local: "elsewhere"})
	}},
	{"ZoneAware/weighted-inner", func(t *testing.T) balance.Balancer {
		return newZoneAware(t, balance.ZoneAwareConfig{
			Local: "a", LocalShare: 1,
			New: func() balance.Balancer { return balance.NewWeightedRoundRobin() },
		})
	}},
	{"Health", func(t *testing.T) balance.Balancer {
		h, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = h.Close() })
		return h
	}},
}

func TestConformance(t *testing.T) {
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) { balancetest.Run(t, s.new) })
	}
}

// TestPickAllocatesNothing: a Pick and its Done allocate nothing, for
// every strategy.
func TestPickAllocatesNothing(t *testing.T) {
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			lb := s.new(t)
			require.NoError(t, lb.Update(balancetest.Backends(10)))
			ctx := context.Background()
			allocs := testing.AllocsPerRun(1000, func() {
				c, err := lb.Pick(ctx, "user:42")
				if err != nil {
					panic(err)
				}
				c.Done(nil)
			})
			require.Zero(t, allocs)
		})
	}
}
