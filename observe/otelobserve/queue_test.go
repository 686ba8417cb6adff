package otelobserve_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleout/scaleout/observe/otelobserve"
	"github.com/scaleout/scaleout/queue"
)

// tracing returns a recorder of ended spans, and the options that make
// InjectJob and JobMiddleware use it and the W3C propagator.
func tracing(t *testing.T) (*tracetest.SpanRecorder, trace.Tracer, []otelobserve.TraceOption) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return sr, tp.Tracer("test"), []otelobserve.TraceOption{
		otelobserve.WithTracerProvider(tp), otelobserve.WithPropagator(propagation.TraceContext{}),
	}
}

// runJobs runs a Worker with JobMiddleware on q, and handlers, until the
// jobs of ids have ended.
func runJobs(t *testing.T, q *queue.Memory, opts []otelobserve.TraceOption, handlers map[string]queue.HandlerFunc, ids ...queue.JobID) {
	t.Helper()
	w, err := queue.NewWorker(q, queue.WorkerConfig{
		Queues:     map[string]int{queue.DefaultQueue: 1, "reports": 1},
		Middleware: []queue.Middleware{otelobserve.JobMiddleware(opts...)},
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	for typ, h := range handlers {
		if err := w.Handle(typ, h); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	for _, id := range ids {
		if _, err := q.Wait(wctx, id); err != nil {
			t.Fatalf("waiting for %s: %v", id, err)
		}
	}
	cancel()
	<-done
}

func memory(t *testing.T) *queue.Memory {
	q, err := queue.NewMemory(queue.MemoryConfig{Backoff: func(int) time.Duration { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func attrOf(s sdktrace.ReadOnlySpan, k attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestJobMiddlewareSpans checks the consumer spans of a job that fails
// once and then succeeds: each attempt a child of the enqueuing span,
// with the queue, type and attempt, the failure recorded as an error,
// and the handler's own spans children of the attempt's.
func TestJobMiddlewareSpans(t *testing.T) {
	sr, tracer, opts := tracing(t)
	q := memory(t)
	ctx, parent := tracer.Start(t.Context(), "POST /reports")
	j := queue.Job{Queue: "reports", Type: "render", MaxAttempts: 2, Headers: map[string]string{"request-id": "r1"}}
	otelobserve.InjectJob(ctx, &j, opts...)
	parent.End()
	id, err := q.Enqueue(t.Context(), j)
	if err != nil {
		t.Fatal(err)
	}
	runJobs(t, q, opts, map[string]queue.HandlerFunc{"render": func(ctx context.Context, d *queue.Delivery) error {
		_, child := tracer.Start(ctx, "render page")
		child.End()
		if d.Attempt == 1 {
			return errors.New("renderer busy")
		}
		return nil
	}}, id)

	var attempts []sdktrace.ReadOnlySpan
	inner := map[trace.SpanID]bool{}
	for _, s := range sr.Ended() {
		switch s.Name() {
		case "process reports":
			attempts = append(attempts, s)
		case "render page":
			inner[s.Parent().SpanID()] = true
		}
	}
	if len(attempts) != 2 {
		t.Fatalf("%d consumer spans, want one per attempt: 2", len(attempts))
	}
	for i, s := range attempts {
		if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("attempt %d: parent %v, want the enqueuing span %v", i+1, s.Parent(), parent.SpanContext())
		}
		if !s.Parent().IsRemote() {
			t.Errorf("attempt %d: the parent came from the job's headers: want it remote", i+1)
		}
		if s.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("attempt %d: kind %v, want consumer", i+1, s.SpanKind())
		}
		if got := attrOf(s, otelobserve.JobAttemptKey).AsInt64(); got != int64(i+1) {
			t.Errorf("attempt %d: attempt attribute %d", i+1, got)
		}
		if attrOf(s, otelobserve.JobTypeKey).AsString() != "render" || attrOf(s, "messaging.destination.name").AsString() != "reports" ||
			attrOf(s, "messaging.message.id").AsString() != string(id) {
			t.Errorf("attempt %d: attributes %v", i+1, s.Attributes())
		}
		if !inner[s.SpanContext().SpanID()] {
			t.Errorf("attempt %d: the handler's span is not its child", i+1)
		}
	}
	if st := attempts[0].Status(); st.Code != codes.Error || st.Description != "renderer busy" || len(attempts[0].Events()) != 1 {
		t.Errorf("failed attempt: status %v, events %v: want the error recorded", st, attempts[0].Events())
	}
	if st := attempts[1].Status(); st.Code == codes.Error {
		t.Errorf("successful attempt: status %v", st)
	}
	if j.Headers["request-id"] != "r1" || j.Headers["traceparent"] == "" {
		t.Errorf("headers %v: want request-id kept and traceparent added", j.Headers)
	}
}

// TestJobMiddlewarePanic checks that a panic is recorded on an ended span
// and still reaches the Worker, which fails the job with it.
func TestJobMiddlewarePanic(t *testing.T) {
	sr, _, opts := tracing(t)
	q := memory(t)
	id, err := q.Enqueue(t.Context(), queue.Job{Type: "boom", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	runJobs(t, q, opts, map[string]queue.HandlerFunc{"boom": func(context.Context, *queue.Delivery) error { panic("kaput") }}, id)
	spans := sr.Ended()
	if len(spans) != 1 || spans[0].Status().Code != codes.Error || spans[0].Status().Description != "handler panicked: kaput" {
		t.Fatalf("spans %v: want one, ended with the panic as its error", spans)
	}
	if spans[0].Parent().IsValid() {
		t.Errorf("a job without a trace context gets a root span; parent %v", spans[0].Parent())
	}
	info, err := q.Status(t.Context(), id)
	if err != nil || info.State != queue.StateDead || info.LastErr != "queue: handler panicked: kaput" {
		t.Errorf("status %+v, %v: want the Worker to have recovered the panic", info, err)
	}
}

// TestInjectJob checks that InjectJob writes into a copy of the headers
// and leaves a job alone when there is nothing to propagate.
func TestInjectJob(t *testing.T) {
	_, tracer, opts := tracing(t)
	shared := map[string]string{"tenant": "t1"}
	j := queue.Job{Type: "t", Headers: shared}
	otelobserve.InjectJob(t.Context(), &j, opts...)
	if len(j.Headers) != 1 {
		t.Errorf("no span in ctx: headers %v, want them unchanged", j.Headers)
	}
	ctx, span := tracer.Start(t.Context(), "request")
	defer span.End()
	otelobserve.InjectJob(ctx, &j, opts...)
	if len(shared) != 1 {
		t.Errorf("InjectJob wrote into the caller's map: %v", shared)
	}
	want := "00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01"
	if j.Headers["traceparent"] != want || j.Headers["tenant"] != "t1" {
		t.Errorf("headers %v: want tenant and traceparent %s", j.Headers, want)
	}
	var noHeaders queue.Job
	otelobserve.InjectJob(t.Context(), &noHeaders, opts...)
	if noHeaders.Headers != nil {
		t.Errorf("nothing to propagate: headers %v, want nil", noHeaders.Headers)
	}
}
