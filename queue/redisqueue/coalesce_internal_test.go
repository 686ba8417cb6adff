package redisqueue

import (
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
)

// BenchmarkEnqueueCoalescing measures what sharing script calls between
// concurrent Enqueues of one queue (maxEnqueueCalls) buys: Enqueue with it
// ("on", 2 calls in flight per queue, further jobs wait and go together)
// and without it ("off", every Enqueue sends its own call), from one
// goroutine and from 16, on the real Redis. The two run in alternating
// blocks of 320 jobs, the first of each pair rotating, so both see the
// same stretch of a shared machine; the metrics are each one's median
// jobs/s over its blocks and their ratio (on/off). ns/op is meaningless
// (a block pair per 640 ops).
//
//	go test -run '^$' -bench EnqueueCoalescing -count 5 ./queue/redisqueue/
func BenchmarkEnqueueCoalescing(b *testing.B) {
	rdb := testenv.RedisClient(b)
	q, err := New(rdb, Config{Prefix: testenv.Prefix(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = q.Close() })
	defer func(n int) { maxEnqueueCalls = n }(maxEnqueueCalls)
	payload := []byte(`{"user":12345678}`)
	enqueue := func(b *testing.B) {
		if _, err := q.Enqueue(b.Context(), queue.Job{Queue: "bench", Type: "email:send", Payload: payload}); err != nil {
			b.Error(err)
		}
	}
	const block = 320
	modes := []struct {
		name  string
		calls int
	}{{"on", maxEnqueueCalls}, {"off", math.MaxInt}}
	for _, goroutines := range []int{1, 16} {
		b.Run(map[int]string{1: "serial", 16: "16-goroutines"}[goroutines], func(b *testing.B) {
			enqueue(b) // loads the script
			rate := make([][]float64, len(modes))
			for n := 0; n < b.N; n += 2 * block {
				for k := range modes {
					i := (k + n/(2*block)) % len(modes)
					maxEnqueueCalls = modes[i].calls
					start := time.Now()
					var wg sync.WaitGroup
					for range goroutines {
						wg.Go(func() {
							for range block / goroutines {
								enqueue(b)
							}
						})
					}
					wg.Wait()
					rate[i] = append(rate[i], block/time.Since(start).Seconds())
				}
			}
			med := make([]float64, len(modes))
			for i, m := range modes {
				slices.Sort(rate[i])
				med[i] = rate[i][len(rate[i])/2]
				b.ReportMetric(med[i], m.name+"-jobs/s")
			}
			b.ReportMetric(med[0]/med[1], "on/off")
		})
	}
}
