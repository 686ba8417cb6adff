package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleout/scaleout/bench/impls"
	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/observe/otelobserve"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// BenchmarkObserveQueueOTel is the queue's throughput with the
// OpenTelemetry adapter off and on (issue 19: on ≥ 0.9× off), the two
// interleaved in every iteration: no-op jobs enqueued, then drained by a
// Worker at concurrency 10, on queue.Memory (20,000 jobs) and on
// redisqueue (5,000 jobs; skipped without $SCALEOUT_REDIS_ADDR). On, every
// job is enqueued with its trace context (InjectJob under a span), runs in
// a consumer span (JobMiddleware), and the Worker reports its metrics to
// an OTel SDK MeterProvider; every span is sampled and recorded, then
// dropped when it ends (no exporter: the cost is the instrumentation's).
// Read off-jobs/s, otel-jobs/s and on/off, not ns/op; off- and
// otel-cpu-us/job are the process's CPU time per job of the drains (on
// Linux), which a busy machine disturbs less than their wall time.
//
// span is the floor of any tracing of a job: the OpenTelemetry SDK's own
// cost of one span as JobMiddleware starts it (same provider, name, kind
// and attributes), without propagation, metrics or a queue, as
// cpu-ns/op. A drain's on minus off CPU per job, less that floor, is what
// the rest costs (the trace context's extraction, the Worker's metrics
// through the SDK, the headers carried by the queue). metrics is the
// Worker's measurements of one job through the adapter into the SDK
// (two counters, a histogram and the clock read twice):
//
//	cd bench && eval "$(../scripts/services.sh env)"
//	go test -run '^$' -bench ObserveQueueOTel -benchtime 1x -count 8 .
func BenchmarkObserveQueueOTel(b *testing.B) {
	b.Run("span", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
		tracer := tp.Tracer("bench")
		ctx, parent := tracer.Start(context.Background(), "enqueue")
		defer parent.End()
		b.ReportAllocs()
		cpuPerOp(b, func() {
			for b.Loop() {
				_, span := tracer.Start(ctx, "process default",
					trace.WithSpanKind(trace.SpanKindConsumer),
					trace.WithAttributes(
						attribute.String("messaging.system", "scaleout"),
						attribute.String("messaging.operation.name", "process"),
						attribute.String("messaging.operation.type", "process"),
						attribute.String("messaging.destination.name", "default"),
						attribute.String("messaging.message.id", "01JABCDEFGHJKMNPQRSTVWXYZ0"),
						otelobserve.JobTypeKey.String("noop"),
						otelobserve.JobAttemptKey.Int(1),
					))
				span.End()
			}
		})
	})
	b.Run("metrics", func(b *testing.B) {
		m := otelobserve.New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())))
		started := observe.NewCounter(m, observe.QueueStarted, queue.DefaultQueue)
		succeeded := observe.NewCounter(m, observe.QueueSucceeded, queue.DefaultQueue)
		duration := observe.NewHistogram(m, observe.QueueHandlerDuration, queue.DefaultQueue)
		b.ReportAllocs()
		cpuPerOp(b, func() {
			for b.Loop() {
				started.Inc()
				start := time.Now()
				duration.ObserveDuration(time.Since(start))
				succeeded.Inc()
			}
		})
	})
	b.Run("memory", func(b *testing.B) {
		benchQueueOTel(b, 20_000, func() (otelQueue, func()) {
			q, err := queue.NewMemory(queue.MemoryConfig{})
			if err != nil {
				b.Fatal(err)
			}
			return q, func() { _ = q.Close() }
		})
	})
	b.Run("redis", func(b *testing.B) {
		addr := os.Getenv(impls.RedisAddrEnv)
		if addr == "" {
			b.Skipf(`%s unset: run eval "$(../scripts/services.sh env)" first`, impls.RedisAddrEnv)
		}
		c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
		b.Cleanup(func() { _ = c.Close() })
		benchQueueOTel(b, 5_000, func() (otelQueue, func()) {
			var buf [6]byte
			_, _ = rand.Read(buf[:])
			prefix := "scaleoutbench:otel:" + hex.EncodeToString(buf[:]) + ":"
			q, err := redisqueue.New(c, redisqueue.Config{Prefix: prefix})
			if err != nil {
				b.Fatal(err)
			}
			return q, func() {
				_ = q.Close()
				keys, _ := c.Keys(context.Background(), prefix+"*").Result()
				for len(keys) > 0 {
					n := min(len(keys), 1000)
					c.Del(context.Background(), keys[:n]...)
					keys = keys[n:]
				}
			}
		})
	})
}

// otelQueue is a JobQueue whose depth can be read.
type otelQueue interface {
	queue.JobQueue
	queue.Inspector
}

func benchQueueOTel(b *testing.B, jobs int, open func() (otelQueue, func())) {
	var off, on, offCPU, onCPU []float64
	i := 0
	for b.Loop() {
		// Alternate which runs first, so that neither always meets a
		// warmer or a busier machine.
		first := i%2 == 0
		for _, instrumented := range []bool{!first, first} {
			jps, cpu := drainOTel(b, jobs, instrumented, open)
			if instrumented {
				on, onCPU = append(on, jps), append(onCPU, cpu)
			} else {
				off, offCPU = append(off, jps), append(offCPU, cpu)
			}
		}
		i++
	}
	o, n := median(off), median(on)
	b.ReportMetric(o, "off-jobs/s")
	b.ReportMetric(n, "otel-jobs/s")
	b.ReportMetric(n/o, "on/off")
	if c := median(offCPU); c > 0 {
		b.ReportMetric(c, "off-cpu-us/job")
		b.ReportMetric(median(onCPU), "otel-cpu-us/job")
	}
}

// drainOTel enqueues jobs on a fresh queue, then drains them with a
// Worker and returns jobs/s of the drain and the process's CPU time per
// job during it, in µs (0 where not measured).
func drainOTel(b *testing.B, jobs int, instrumented bool, open func() (otelQueue, func())) (jobsPerSec, cpuPerJob float64) {
	q, closeQ := open()
	defer closeQ()
	cfg := queue.WorkerConfig{Concurrency: 10}
	ctx := context.Background()
	var traceOpts []otelobserve.TraceOption
	if instrumented {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
		traceOpts = []otelobserve.TraceOption{otelobserve.WithTracerProvider(tp), otelobserve.WithPropagator(propagation.TraceContext{})}
		cfg.Meter = otelobserve.New(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())))
		cfg.Middleware = []queue.Middleware{otelobserve.JobMiddleware(traceOpts...)}
		var span trace.Span
		ctx, span = tp.Tracer("bench").Start(ctx, "enqueue")
		defer span.End()
	}
	for range jobs {
		j := queue.Job{Type: "noop", Payload: []byte("x")}
		if instrumented {
			otelobserve.InjectJob(ctx, &j, traceOpts...)
		}
		if _, err := q.Enqueue(ctx, j); err != nil {
			b.Fatal(err)
		}
	}
	w, err := queue.NewWorker(q, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.HandleFunc("noop", func(context.Context, *queue.Delivery) error { return nil }); err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start, cpu0 := time.Now(), processCPU()
	go func() { defer close(done); _ = w.Run(rctx) }()
	for {
		c, err := q.Counts(context.Background(), queue.DefaultQueue)
		if err != nil {
			b.Fatal(err)
		}
		if c.Pending() == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	cancel()
	<-done
	return float64(jobs) / elapsed.Seconds(), float64(cpu.Microseconds()) / float64(jobs)
}

// median of xs (not empty), which it sorts.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
