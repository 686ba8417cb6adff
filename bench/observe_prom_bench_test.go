package bench

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/observe/promobserve"
)

// BenchmarkObserveProm is BenchmarkObserveOff with the Prometheus adapter
// on: a pick adds to picks, in flight (twice) and a latency histogram, and
// reads the clock; a local hit adds to one counter.
func BenchmarkObserveProm(b *testing.B) {
	b.Run("HealthPick", func(b *testing.B) {
		benchHealthPick(b, balance.HealthConfig{Meter: promobserve.New(prometheus.NewRegistry())})
	})
	b.Run("LoaderLocalHit", func(b *testing.B) {
		benchLocalHit(b, cache.LoaderConfig[string]{LocalTTL: time.Minute, Meter: promobserve.New(prometheus.NewRegistry())})
	})
}
