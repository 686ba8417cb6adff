package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue"
)

// BenchmarkState measures one poll of the page (GET api/state) and one
// sample, for a service of middling size: a queue store of three queues
// with 20 dead letters each, a balancer of 10 backends, a cache and 3
// replica nodes, after 100 samples (the charts full at 100 points).
func BenchmarkState(b *testing.B) {
	ctx := context.Background()
	cfg := open()
	cfg.Interval, cfg.Window = time.Second, 100*time.Second
	h, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	q, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	for _, name := range []string{"mail", "thumbs", "reports"} {
		for range 20 {
			if _, err := q.Enqueue(ctx, queue.Job{Queue: name, Type: "t", MaxAttempts: 1}); err != nil {
				b.Fatal(err)
			}
			d, err := q.Dequeue(ctx, []string{name}, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Fail(ctx, errors.New("no")); err != nil {
				b.Fatal(err)
			}
		}
	}
	h.Queues("jobs", q)
	m := h.Meter("web")
	for i := range 10 {
		addr := fmt.Sprintf("10.0.0.%d:8080", i)
		observe.NewCounter(m, observe.BalancePicks, addr).Add(100)
		observe.NewHistogram(m, observe.BalanceDuration, addr).Observe(0.01)
		observe.NewUpDownCounter(m, observe.BalanceInFlight, addr).Add(1)
		observe.NewGauge(m, observe.BalanceHealthy, addr).Set(1)
	}
	observe.NewCounter(m, observe.CacheHits, "shared").Add(90)
	observe.NewCounter(m, observe.CacheMisses).Add(10)
	for i := range 3 {
		observe.NewGauge(m, observe.ReplicaLag, fmt.Sprint("n", i)).Set(0.1)
	}
	for range 100 {
		h.sample(ctx)
	}

	b.Run("poll", func(b *testing.B) {
		r := httptest.NewRequest("GET", "/api/state", nil)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
			b.SetBytes(int64(w.Body.Len()))
		}
	})
	b.Run("sample", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.sample(ctx)
		}
	})
}
