package otelobserve_test

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleout/scaleout/observe/otelobserve"
	"github.com/scaleout/scaleout/queue"
)

// ExampleJobMiddleware carries a trace from the code that enqueues a job
// to the worker that runs it: InjectJob writes the request's trace
// context into the job's headers, and JobMiddleware, in the Worker,
// runs the handler in a consumer span that continues the trace. The
// worker may be another process on another machine (queue/redisqueue,
// queue/pgqueue): the trace travels in the job.
func ExampleJobMiddleware() {
	// A program sets its tracer provider and the W3C propagator once.
	spans := tracetest.NewSpanRecorder() // an exporter, in a real program
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})

	q, _ := queue.NewMemory(queue.MemoryConfig{})
	defer q.Close()

	// In an HTTP handler, inside the request's span:
	ctx, request := otel.Tracer("web").Start(context.Background(), "POST /reports")
	job := queue.Job{Type: "report", Payload: []byte("Q3")}
	otelobserve.InjectJob(ctx, &job)
	id, _ := q.Enqueue(ctx, job)
	request.End()

	// In the worker:
	w, _ := queue.NewWorker(q, queue.WorkerConfig{
		Middleware: []queue.Middleware{otelobserve.JobMiddleware()},
		Logger:     slog.New(slog.DiscardHandler),
	})
	_ = w.HandleFunc("report", func(ctx context.Context, d *queue.Delivery) error {
		_, render := otel.Tracer("worker").Start(ctx, "render "+string(d.Job.Payload))
		render.End()
		return nil
	})
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(wctx) }()
	_, _ = q.Wait(context.Background(), id)
	stop()
	<-done

	names := map[trace.SpanID]string{{}: "no parent"}
	for _, s := range spans.Ended() {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	for _, s := range spans.Ended() {
		fmt.Printf("%s (%s) <- %s\n", s.Name(), s.SpanKind(), names[s.Parent().SpanID()])
	}
	// Output:
	// POST /reports (internal) <- no parent
	// render Q3 (internal) <- process default
	// process default (consumer) <- POST /reports
}
