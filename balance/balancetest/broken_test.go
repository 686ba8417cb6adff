package balancetest_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/balancetest"
	"github.com/scaleout/scaleout/internal/kitcheck"
)

// The kit is a product: a Balancer that breaks a clause must fail it.
// Each broken Balancer below is balance.LeastLoaded (which counts Dones,
// so that a miscounted Done shows) with one promise broken by a wrapper;
// TestKitCatchesBrokenBalancers runs the clause it breaks in a child
// process and requires that clause to fail.

// brokenEnv names the broken Balancer the child process runs the kit on.
const brokenEnv = "BALANCETEST_BROKEN"

// brokenBalancers maps each broken behaviour to the clause that must
// catch it.
var brokenBalancers = map[string]string{
	"an empty set picks nothing, without error": "EmptySetHasNoBackend",
	"Update keeps the first set":                "PicksComeFromTheSet",
	"a bad Update empties the set":              "BadUpdateKeepsPreviousSet",
	"a bad Update is accepted":                  "BadUpdateKeepsPreviousSet",
	"ignores the context":                       "DoneContext",
	"drops the last backend":                    "EveryBackendGetsTraffic",
	"Update empties the set for a moment":       "UpdateDuringPicks",
	"a Done counts twice":                       "DoneLateOrTwice",
	"PickAddr pins any address":                 "PickAddr",
}

type broken struct {
	*balance.LeastLoaded
	how string

	mu      sync.Mutex
	updated bool
}

func (b *broken) Update(set []balance.Backend) error {
	switch b.how {
	case "Update keeps the first set":
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.updated && len(set) > 0 {
			return nil
		}
		b.updated = len(set) > 0
	case "a bad Update empties the set":
		if err := b.LeastLoaded.Update(set); err != nil {
			_ = b.LeastLoaded.Update(nil)
			return err
		}
		return nil
	case "a bad Update is accepted":
		_ = b.LeastLoaded.Update(set)
		return nil
	case "drops the last backend":
		if len(set) > 1 {
			set = set[:len(set)-1]
		}
	case "Update empties the set for a moment":
		_ = b.LeastLoaded.Update(nil)
	}
	return b.LeastLoaded.Update(set)
}

func (b *broken) Pick(ctx context.Context, key string) (balance.Choice, error) {
	switch b.how {
	case "an empty set picks nothing, without error":
		c, err := b.LeastLoaded.Pick(ctx, key)
		if errors.Is(err, balance.ErrNoBackend) {
			return balance.Choice{}, nil
		}
		return c, err
	case "ignores the context":
		return b.LeastLoaded.Pick(context.Background(), key)
	case "a Done counts twice":
		c, err := b.LeastLoaded.Pick(ctx, key)
		extra := c // a copy has its own once-only flag
		extra.Done(nil)
		return c, err
	}
	return b.LeastLoaded.Pick(ctx, key)
}

func (b *broken) PickAddr(ctx context.Context, addr string) (balance.Choice, error) {
	if b.how == "PickAddr pins any address" {
		return balance.NewChoice(balance.Backend{Addr: addr}), nil
	}
	return b.LeastLoaded.PickAddr(ctx, addr)
}

// TestBrokenBalancerChild runs the kit on the broken Balancer the parent
// names; it is skipped in a normal run.
func TestBrokenBalancerChild(t *testing.T) {
	how := os.Getenv(brokenEnv)
	if how == "" {
		t.Skip("run by TestKitCatchesBrokenBalancers")
	}
	balancetest.Run(t, func(t *testing.T) balance.Balancer {
		return &broken{LeastLoaded: balance.NewLeastLoaded(balance.LeastLoadedConfig{}), how: how}
	})
}

// TestKitOnLeastLoaded is the baseline: unbroken, the Balancer the broken
// ones wrap passes every clause.
func TestKitOnLeastLoaded(t *testing.T) {
	balancetest.Run(t, func(t *testing.T) balance.Balancer {
		return balance.NewLeastLoaded(balance.LeastLoadedConfig{})
	})
}

func TestKitCatchesBrokenBalancers(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in the child process")
	}
	for how, clause := range brokenBalancers {
		t.Run(how, func(t *testing.T) {
			kitcheck.Catches(t, "TestBrokenBalancerChild", clause, "a Balancer where "+how, brokenEnv+"="+how)
		})
	}
}
