package bench

import (
	"strconv"
	"testing"

	"github.com/scaleout/scaleout/bench/impls"
)

// BenchmarkPick compares the cost of one pick at 10 backends, ours (a Pick
// and its Done) against vulcand/oxy/v2's roundrobin.NextServer, with the
// floor (an atomic counter indexing a slice) for context:
//
//	go test -bench 'Pick' -benchmem -count 5
//
// cmd/compare runs the same bodies (impls.Picker.Serial and Parallel) several times and
// reports medians.
func BenchmarkPick(b *testing.B) { benchPickers(b, impls.Pickers, 10, false) }

// BenchmarkPickParallel is BenchmarkPick under RunParallel: every
// goroutine picks from the same balancer.
func BenchmarkPickParallel(b *testing.B) { benchPickers(b, impls.Pickers, 10, true) }

// BenchmarkPickWeighted compares WeightedRoundRobin with oxy's roundrobin
// over 10,000 backends of weights 1 to 10, serially.
func BenchmarkPickWeighted(b *testing.B) { benchPickers(b, impls.WeightedPickers, 10_000, false) }

func benchPickers(b *testing.B, build func(int) ([]impls.Picker, error), n int, parallel bool) {
	keys := impls.PickKeys()
	ps, err := build(n)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range ps {
		b.Run(p.Bench+"/"+strconv.Itoa(n), func(b *testing.B) {
			if parallel {
				p.Parallel(b, keys)
			} else {
				p.Serial(b, keys)
			}
		})
	}
}

// TestPickers checks that every picker builds and picks a backend of its
// set, so the benchmarks above cannot silently time a failing pick.
func TestPickers(t *testing.T) {
	for _, build := range []func(int) ([]impls.Picker, error){impls.Pickers, impls.WeightedPickers} {
		ps, err := build(20)
		if err != nil {
			t.Fatal(err)
		}
		addrs := map[string]bool{}
		for _, b := range impls.Backends(20, false) {
			addrs[b.Addr] = true
		}
		for _, p := range ps {
			for _, key := range impls.PickKeys()[:50] {
				if a := p.Pick(key); !addrs[a] {
					t.Fatalf("%s picked %q, not one of the backends", p.Name, a)
				}
			}
		}
	}
}
