package balance_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/balancetest"
)

// zoneSet returns backends named zone-i, count[zone] of them per zone.
func zoneSet(counts ...any) []balance.Backend {
	var bs []balance.Backend
	for j := 0; j < len(counts); j += 2 {
		zone, n := counts[j].(string), counts[j+1].(int)
		for i := range n {
			bs = append(bs, balance.Backend{Addr: fmt.Sprintf("%s-%d", zone, i), Zone: zone})
		}
	}
	return bs
}

func newZoneAware(t testing.TB, cfg balance.ZoneAwareConfig) *balance.ZoneAware {
	t.Helper()
	z, err := balance.NewZoneAware(cfg)
	require.NoError(t, err)
	return z
}

// zonePicks counts picks per zone (the part of the address before "-").
func zonePicks(t testing.TB, lb balance.Balancer, n int) map[string]int {
	t.Helper()
	count := map[string]int{}
	for _, a := range rrPicks(t, lb, n) {
		zone := a
		for i := range a {
			if a[i] == '-' {
				zone = a[:i]
				break
			}
		}
		count[zone]++
	}
	return count
}

func TestZoneAwareConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  balance.ZoneAwareConfig
	}{
		{"no local zone", balance.ZoneAwareConfig{}},
		{"negative share", balance.ZoneAwareConfig{Local: "a", LocalShare: -0.1}},
		{"share above one", balance.ZoneAwareConfig{Local: "a", LocalShare: 1.5}},
		{"NaN share", balance.ZoneAwareConfig{Local: "a", LocalShare: math.NaN()}},
		{"nil inner", balance.ZoneAwareConfig{Local: "a", New: func() balance.Balancer { return nil }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := balance.NewZoneAware(tc.cfg)
			require.ErrorIs(t, err, balance.ErrInvalidConfig)
		})
	}
}

// TestZoneAwareSpill: the local zone keeps all traffic while its share of
// capacity covers its callers' share, and otherwise keeps the ratio of
// the two; the rest spreads over the other zones' backends.
func TestZoneAwareSpill(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     balance.ZoneAwareConfig
		set     []balance.Backend
		spill   float64
		perZone map[string]int // of 7000 picks
	}{
		{"even zones stay local", balance.ZoneAwareConfig{Local: "a"},
			zoneSet("a", 3, "b", 3, "c", 3), 0, map[string]int{"a": 7000}},
		{"local lost two of three", balance.ZoneAwareConfig{Local: "a"},
			zoneSet("a", 1, "b", 3, "c", 3), 4.0 / 7, map[string]int{"a": 3000, "b": 2000, "c": 2000}},
		{"a bigger local zone stays local", balance.ZoneAwareConfig{Local: "a"},
			zoneSet("a", 5, "b", 2), 0, map[string]int{"a": 7000}},
		{"a smaller remote zone spills", balance.ZoneAwareConfig{Local: "b"},
			zoneSet("a", 5, "b", 2), 1 - (2.0/7)/(1.0/2), map[string]int{"a": 3000, "b": 4000}},
		{"all callers local", balance.ZoneAwareConfig{Local: "a", LocalShare: 1},
			zoneSet("a", 1, "b", 6), 6.0 / 7, map[string]int{"a": 1000, "b": 6000}},
		{"few callers local", balance.ZoneAwareConfig{Local: "a", LocalShare: 0.1},
			zoneSet("a", 1, "b", 6), 0, map[string]int{"a": 7000}},
		{"no local backend", balance.ZoneAwareConfig{Local: "a"},
			zoneSet("b", 4, "c", 3), 1, map[string]int{"b": 4000, "c": 3000}},
		{"only local backends", balance.ZoneAwareConfig{Local: "a", LocalShare: 1},
			zoneSet("a", 2), 0, map[string]int{"a": 7000}},
		{"empty zone name is a zone", balance.ZoneAwareConfig{Local: "a"},
			append(zoneSet("a", 1), balance.Backend{Addr: "-0"}, balance.Backend{Addr: "-1"}, balance.Backend{Addr: "-2"}),
			1 - (1.0/4)/(1.0/2), map[string]int{"a": 3500, "": 3500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			z := newZoneAware(t, tc.cfg)
			require.NoError(t, z.Update(tc.set))
			require.InDelta(t, tc.spill, z.Spill(), 1e-9)
			got := zonePicks(t, z, 7000)
			require.Len(t, got, len(tc.perZone), "%v", got)
			for zone, want := range tc.perZone {
				require.InDelta(t, want, got[zone], 3, "zone %q: %v", zone, got)
			}
		})
	}
}

// TestZoneAwareWeights: capacity counts weights, and the inner balancer
// spreads by them when it is weighted.
func TestZoneAwareWeights(t *testing.T) {
	z := newZoneAware(t, balance.ZoneAwareConfig{
		Local: "a", LocalShare: 1,
		New: func() balance.Balancer { return new(balance.WeightedRoundRobin) },
	})
	require.NoError(t, z.Update([]balance.Backend{
		{Addr: "a-0", Zone: "a", Weight: 2},
		{Addr: "b-0", Zone: "b", Weight: 3},
		{Addr: "b-1", Zone: "b", Weight: 1},
	}))
	require.InDelta(t, 4.0/6, z.Spill(), 1e-9)
	count := rrCount(rrPicks(t, z, 6000))
	require.InDelta(t, 2000, count["a-0"], 3)
	require.InDelta(t, 3000, count["b-0"], 3)
	require.InDelta(t, 1000, count["b-1"], 3)
}

// TestZoneAwareLocalRecovers: as local backends come back, spill falls
// back to zero.
func TestZoneAwareLocalRecovers(t *testing.T) {
	z := newZoneAware(t, balance.ZoneAwareConfig{Local: "a"})
	require.Zero(t, z.Spill(), "no set yet")
	for _, step := range []struct {
		local int
		spill float64
	}{{0, 1}, {1, 1 - (1.0/4)/(1.0/2)}, {2, 1 - (2.0/5)/(1.0/2)}, {3, 0}, {4, 0}} {
		set := append(zoneSet("a", step.local), zoneSet("b", 3)...)
		require.NoError(t, z.Update(set))
		require.InDelta(t, step.spill, z.Spill(), 1e-9, "%d local", step.local)
		got := zonePicks(t, z, 1000)
		require.InDelta(t, 1000*step.spill, got["b"], 3, "%d local: %v", step.local, got)
	}
	require.Error(t, z.Update(zoneSet("a", 1, "a", 1)), "duplicates are refused")
	require.Zero(t, z.Spill(), "the previous set stays")
}

// zoneFailing is a Balancer whose Update fails on demand.
type zoneFailing struct {
	balance.RoundRobin
	fail bool
}

func (f *zoneFailing) Update(bs []balance.Backend) error {
	if f.fail && len(bs) > 0 {
		return fmt.Errorf("%w: refused", balance.ErrInvalidBackend)
	}
	return f.RoundRobin.Update(bs)
}

// TestZoneAwareInnerUpdateFails: when an inner balancer refuses a set, the
// previous set stays whole.
func TestZoneAwareInnerUpdateFails(t *testing.T) {
	var inner []*zoneFailing
	z := newZoneAware(t, balance.ZoneAwareConfig{Local: "a", LocalShare: 1, New: func() balance.Balancer {
		f := new(zoneFailing)
		inner = append(inner, f)
		return f
	}})
	require.Len(t, inner, 2)
	require.NoError(t, z.Update(zoneSet("a", 1, "b", 1)))
	inner[1].fail = true // the remote one
	require.ErrorIs(t, z.Update(zoneSet("a", 3, "b", 2)), balance.ErrInvalidBackend)
	count := rrCount(rrPicks(t, z, 100))
	require.Len(t, count, 2, "%v", count)
	require.InDelta(t, 50, count["a-0"], 2, "%v", count)
	require.InDelta(t, 50, count["b-0"], 2, "%v", count)
}

func BenchmarkZoneAware(b *testing.B) {
	lb := newZoneAware(b, balance.ZoneAwareConfig{Local: "a"})
	if err := lb.Update(balancetest.Backends(10)); err != nil { // zones a and b
		b.Fatal(err)
	}
	rrBench(b, "10", lb)
	spill := newZoneAware(b, balance.ZoneAwareConfig{Local: "a", LocalShare: 1})
	if err := spill.Update(balancetest.Backends(10)); err != nil {
		b.Fatal(err)
	}
	rrBench(b, "10-spilling", spill)
}
