package balance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// ZoneAwareConfig configures a ZoneAware balancer. The zero value of each
// field but Local means its default.
type ZoneAwareConfig struct {
	// Local is the caller's zone: backends whose Zone equals it are local.
	// Required.
	Local string
	// LocalShare is the fraction of all the traffic to this backend set
	// that comes from callers in Local, in (0, 1]; 0 means callers are
	// spread evenly over the zones the backends are in (1/Z for Z distinct
	// zones, counting an empty Zone as a zone). Set it when callers are
	// not spread like that, for example 1 when all callers are local.
	LocalShare float64
	// New makes the balancer that spreads traffic within the local zone,
	// and the one that spreads traffic sent out of it over the backends of
	// all other zones; it is called twice, by NewZoneAware. Default
	// NewRoundRobin. Use NewWeightedRoundRobin when weights differ.
	New func() Balancer
}

// ZoneAware prefers backends in the caller's zone (geography-based
// balancing), and sends part of the traffic to other zones only when the
// local zone has too little capacity for its callers.
//
// # Spill
//
// A zone's capacity is the sum of its backends' weights (0 meaning 1; with
// unweighted backends, their count), and its capacity share is that sum
// over the whole set's. Let c be the local zone's capacity share and d its
// demand, ZoneAwareConfig.LocalShare. Then
//
//   - if c ≥ d, all traffic stays local;
//   - otherwise a fraction c/d stays local and the rest spills, spread over
//     the backends of all other zones by the remote balancer (with the
//     default round robin, each other zone receives in proportion to its
//     number of backends);
//   - with no local backend, everything spills; with no other backend,
//     everything stays local.
//
// This is Envoy's zone-aware routing reduced to its core: when every
// zone's callers do the same, each zone's backends receive traffic in
// proportion to their capacity. For example with three zones of 3 backends
// each and callers spread evenly, all traffic stays in its zone; if two of
// zone a's backends are removed, a has capacity share 1/7 against demand
// 1/3, so a's callers keep 3/7 of their traffic and spill 4/7 to zones b and
// c, and every backend in every zone then serves 1/7 of all traffic.
//
// Health is not ZoneAware's business: a health checker updates the set,
// and a zone whose backends fail and are removed spills as above.
//
// Which requests spill is decided by a Weyl sequence (golden-ratio steps
// over 2^64) rather than by chance, so the split is within a few requests
// of c/d over any stretch of traffic. Picks allocate nothing beyond what
// the inner balancers do; while everything stays local they touch no
// shared counter of ZoneAware's.
type ZoneAware struct {
	cfg           ZoneAwareConfig
	local, remote Balancer
	state         atomic.Pointer[zoneState]
	_             [rrCacheLine]byte
	seq           atomic.Uint64 // the Weyl sequence deciding spills
	_             [rrCacheLine]byte

	mu        sync.Mutex // serializes Update
	prevLocal []Backend  // the local set of the last Update, to roll back to
}

var _ Pinner = (*ZoneAware)(nil)

// zoneState is the split computed by one Update.
type zoneState struct {
	// keep is the fraction of picks that stay local, scaled to 2^64:
	// a pick stays local when its Weyl number is below keep. zoneAll means
	// always.
	keep  uint64
	local float64 // keep as a fraction, for Spill
}

const (
	zoneAll  = math.MaxUint64
	zoneWeyl = 0x9E3779B97F4A7C15 // 2^64 / golden ratio, odd
)

// NewZoneAware returns a ZoneAware balancer with no backends. It fails with
// ErrInvalidConfig when Local is empty, LocalShare is outside [0, 1], or
// New returns nil.
func NewZoneAware(cfg ZoneAwareConfig) (*ZoneAware, error) {
	if cfg.Local == "" {
		return nil, fmt.Errorf("%w: ZoneAware needs a Local zone", ErrInvalidConfig)
	}
	if !(cfg.LocalShare >= 0 && cfg.LocalShare <= 1) {
		return nil, fmt.Errorf("%w: ZoneAware LocalShare %v is not in [0, 1]", ErrInvalidConfig, cfg.LocalShare)
	}
	if cfg.New == nil {
		cfg.New = func() Balancer { return NewRoundRobin() }
	}
	z := &ZoneAware{cfg: cfg, local: cfg.New(), remote: cfg.New()}
	if z.local == nil || z.remote == nil {
		return nil, fmt.Errorf("%w: ZoneAware New returned nil", ErrInvalidConfig)
	}
	return z, nil
}

// Update replaces the backend set; see Balancer.Update.
func (z *ZoneAware) Update(backends []Backend) error {
	if err := validate(backends); err != nil {
		return err
	}
	var local, remote []Backend
	var localCap, allCap float64
	zones := make(map[string]struct{})
	for _, b := range backends {
		zones[b.Zone] = struct{}{}
		allCap += float64(b.weight())
		if b.Zone == z.cfg.Local {
			local = append(local, b)
			localCap += float64(b.weight())
		} else {
			remote = append(remote, b)
		}
	}
	st := &zoneState{keep: zoneAll, local: 1}
	if len(remote) > 0 {
		demand := z.cfg.LocalShare
		if demand == 0 {
			demand = 1 / float64(len(zones))
		}
		if f := localCap / allCap; f < demand {
			st.local = f / demand
			st.keep = randomScale(st.local)
		}
	}

	z.mu.Lock()
	defer z.mu.Unlock()
	// Picks go on meanwhile: one that finds its side empty tries the other
	// (see Pick), so every pick comes from the old set or the new one.
	if err := z.local.Update(local); err != nil {
		return err
	}
	if err := z.remote.Update(remote); err != nil {
		_ = z.local.Update(z.prevLocal) // it took this set before
		return err
	}
	z.prevLocal = local
	z.state.Store(st)
	return nil
}

// Pick returns a backend from the local zone or, when this pick spills,
// from another zone; key is passed to the inner balancer.
func (z *ZoneAware) Pick(ctx context.Context, key string) (Choice, error) {
	if err := ctx.Err(); err != nil {
		return Choice{}, err
	}
	st := z.state.Load()
	if st == nil {
		return Choice{}, ErrNoBackend
	}
	first, second := z.local, z.remote
	if st.keep != zoneAll && z.seq.Add(zoneWeyl) >= st.keep {
		first, second = second, first
	}
	c, err := first.Pick(ctx, key)
	if errors.Is(err, ErrNoBackend) {
		// That side is empty, or was emptied by an Update in progress.
		return second.Pick(ctx, key)
	}
	return c, err
}

// PickAddr returns a Choice for the backend at addr from whichever side
// holds it; see Pinner. It fails with ErrNoBackend when neither inner
// balancer is a Pinner.
func (z *ZoneAware) PickAddr(ctx context.Context, addr string) (Choice, error) {
	err := error(ErrNoBackend)
	for _, side := range []Balancer{z.local, z.remote} {
		if p, ok := side.(Pinner); ok {
			var c Choice
			if c, err = p.PickAddr(ctx, addr); err == nil || !errors.Is(err, ErrNoBackend) {
				return c, err
			}
		}
	}
	return Choice{}, err
}

// Spill returns the fraction of picks the current set sends out of the
// local zone: 0 while the local zone has capacity for its callers, 1 when
// it has no backend.
func (z *ZoneAware) Spill() float64 {
	st := z.state.Load()
	if st == nil {
		return 0
	}
	return 1 - st.local
}
