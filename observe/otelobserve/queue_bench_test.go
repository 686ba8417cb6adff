package otelobserve_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleout/scaleout/observe/otelobserve"
	"github.com/scaleout/scaleout/queue"
)

// The per-job cost of tracing a job, against the OpenTelemetry SDK's own
// floor, with the SDK configured as bench/observe_otel_queue_bench_test.go
// configures it (every span sampled and recorded, no exporter): JobMiddleware
// and InjectJob beside SDKSpan, a bare span of the SDK.
//
//	cd observe/otelobserve && go test -run '^$' -bench 'SDKSpan|InjectJob|JobMiddleware' -benchmem .

func benchTracing() (trace.Tracer, context.Context, []otelobserve.TraceOption) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	ctx, _ := tp.Tracer("bench").Start(context.Background(), "enqueue")
	return tp.Tracer("bench"), ctx, []otelobserve.TraceOption{
		otelobserve.WithTracerProvider(tp), otelobserve.WithPropagator(propagation.TraceContext{}),
	}
}

// BenchmarkSDKSpan is the floor without attributes: a bare Start and End
// of a span, no propagation and no work of ours. The span as
// JobMiddleware starts it, attributes included, is measured beside the
// queue's drains by BenchmarkObserveQueueOTel/span in bench.
func BenchmarkSDKSpan(b *testing.B) {
	tracer, ctx, _ := benchTracing()
	b.ReportAllocs()
	for b.Loop() {
		_, span := tracer.Start(ctx, "process default")
		span.End()
	}
}

func BenchmarkInjectJob(b *testing.B) {
	_, ctx, opts := benchTracing()
	b.ReportAllocs()
	for b.Loop() {
		j := queue.Job{Type: "noop"}
		otelobserve.InjectJob(ctx, &j, opts...)
		if len(j.Headers) == 0 {
			b.Fatal("nothing injected")
		}
	}
}

func BenchmarkJobMiddleware(b *testing.B) {
	_, ctx, opts := benchTracing()
	j := queue.Job{Type: "noop", Queue: queue.DefaultQueue}
	otelobserve.InjectJob(ctx, &j, opts...)
	d := &queue.Delivery{Job: j, ID: "01JABCDEFGHJKMNPQRSTVWXYZ0", Attempt: 1}
	h := otelobserve.JobMiddleware(opts...)(queue.HandlerFunc(func(context.Context, *queue.Delivery) error { return nil }))
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Process(context.Background(), d); err != nil {
			b.Fatal(err)
		}
	}
}
