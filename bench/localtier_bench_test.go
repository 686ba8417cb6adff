package bench

import (
	"fmt"
	"testing"

	"github.com/scaleout/scaleout/bench/impls"
)

// Local tier: cache.Memory against maypok86/otter/v2 (impls/localtier.go,
// shared with cmd/compare, whose cache section reports the medians):
//
//	cd bench
//	go test -run '^$' -bench 'LocalTier' -benchmem -count 5 .
//
// BenchmarkLocalTierHit/<impl>, BenchmarkLocalTierHitParallel/<impl>: one
// Get hit of a 16-byte value per op, 10,000 keys in a cache of 20,000
// (Parallel: from GOMAXPROCS goroutines, b.N split between them).
// BenchmarkLocalTierMissSet/<impl>: one Get miss and the Set of that key
// per op, in a full cache of 10,000. BenchmarkLocalTierHitRatio/<trace>/
// <capacity>/<impl> reports hit% (read the metric, not ns/op);
// BenchmarkLocalTierMemory/<impl> reports B/entry, the heap growth of
// 100,000 entries of 16 bytes over the entries held.

func BenchmarkLocalTierHit(b *testing.B)         { benchLocal(b, impls.LocalOps[0]) }
func BenchmarkLocalTierHitParallel(b *testing.B) { benchLocal(b, impls.LocalOps[1]) }
func BenchmarkLocalTierMissSet(b *testing.B)     { benchLocal(b, impls.LocalOps[2]) }

func benchLocal(b *testing.B, op impls.LocalOp) {
	for _, im := range impls.LocalTierImpls() {
		b.Run(im.Bench, impls.LocalBench(op, im))
	}
}

func BenchmarkLocalTierHitRatio(b *testing.B) {
	for _, tr := range impls.LocalTraces() {
		for _, n := range impls.LocalRatioCapacities {
			for _, im := range impls.LocalTierImpls() {
				b.Run(fmt.Sprintf("%s/%d/%s", tr.Name, n, im.Bench), func(b *testing.B) {
					var ratio float64
					for range b.N {
						ratio = impls.LocalHitRatio(im, tr, n)
					}
					b.ReportMetric(ratio, "hit%")
				})
			}
		}
	}
}

func BenchmarkLocalTierMemory(b *testing.B) {
	for _, im := range impls.LocalTierImpls() {
		b.Run(im.Bench, func(b *testing.B) {
			var per float64
			for range b.N {
				per = impls.LocalBytesPerEntry(im)
			}
			b.ReportMetric(per, "B/entry")
		})
	}
}
