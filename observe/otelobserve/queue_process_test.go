package otelobserve_test

// Real time and real processes: TestJobTraceAcrossProcesses runs this
// test binary again as a worker process on a real Redis; no duration is
// asserted, only generous deadlines for a hang.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/observe/otelobserve"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// The worker process finds its orders in these variables.
const (
	childWorker = "SCALEOUT_OTEL_QUEUE_CHILD" // set: run as the worker
	childPrefix = "SCALEOUT_OTEL_QUEUE_PREFIX"
	childJob    = "SCALEOUT_OTEL_QUEUE_JOB"
)

// childSpan is what the worker process tells of each span it ended, one
// JSON line on stdout after "span ".
type childSpan struct {
	Name, Kind, TraceID, SpanID, ParentSpanID string
	ParentRemote                              bool
	Attrs                                     map[string]string
}

// TestJobTraceAcrossProcesses: an HTTP handler starts a span and enqueues
// a job on Redis with InjectJob; a worker in another process, with
// JobMiddleware and nothing but the job to go on, runs it in a span whose
// parent is the HTTP handler's, in the same trace. The worker process
// reports its span's parent in the job's result and its ended spans on
// stdout.
func TestJobTraceAcrossProcesses(t *testing.T) {
	rdb := testenv.RedisClient(t)
	prefix := testenv.Prefix(t)
	q, err := redisqueue.New(rdb, redisqueue.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	sr, tracer, opts := tracing(t)

	serverSpans := make(chan trace.SpanContext, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(r.Context(), "POST /reports", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		serverSpans <- span.SpanContext()
		j := queue.Job{Queue: "traced", Type: "report", Payload: []byte("q3")}
		otelobserve.InjectJob(ctx, &j, opts...)
		id, err := q.Enqueue(ctx, j)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, string(id))
	}))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s %s", resp.Status, body)
	}
	id := queue.JobID(body)
	serverSpan := <-serverSpans
	if len(sr.Ended()) != 1 {
		t.Fatalf("%d spans ended in the web process, want the handler's", len(sr.Ended()))
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestJobTraceChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childWorker+"=1", childPrefix+"="+prefix, childJob+"="+string(id))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("worker process: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}

	info, err := q.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != queue.StateDone || string(info.Result) != serverSpan.SpanID().String() {
		t.Errorf("job %s %s with result %q: want done, its handler's span a child of %s", id, info.State, info.Result, serverSpan.SpanID())
	}
	var spans []childSpan
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "span "); ok {
			var s childSpan
			if err := json.Unmarshal([]byte(line), &s); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			spans = append(spans, s)
		}
	}
	if len(spans) != 1 {
		t.Fatalf("the worker process ended %d spans, want 1:\n%s", len(spans), out)
	}
	s := spans[0]
	if s.TraceID != serverSpan.TraceID().String() || s.ParentSpanID != serverSpan.SpanID().String() || !s.ParentRemote {
		t.Errorf("worker span in trace %s with parent %s (remote %v): want trace %s, parent %s, remote",
			s.TraceID, s.ParentSpanID, s.ParentRemote, serverSpan.TraceID(), serverSpan.SpanID())
	}
	if s.Name != "process traced" || s.Kind != "consumer" || s.Attrs["scaleout.queue.job.type"] != "report" ||
		s.Attrs["scaleout.queue.job.attempt"] != "1" || s.Attrs["messaging.destination.name"] != "traced" {
		t.Errorf("worker span %+v", s)
	}
}

// TestJobTraceChild is the worker process of TestJobTraceAcrossProcesses:
// it runs the job named in its environment with JobMiddleware on the
// global tracer provider and propagator, answers with its span's parent
// (the result) and prints the spans it ended.
func TestJobTraceChild(t *testing.T) {
	if os.Getenv(childWorker) == "" {
		t.Skip("the worker process of TestJobTraceAcrossProcesses")
	}
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})

	rdb := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t), ContextTimeoutEnabled: true})
	defer rdb.Close()
	q, err := redisqueue.New(rdb, redisqueue.Config{Prefix: os.Getenv(childPrefix)})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	w, err := queue.NewWorker(q, queue.WorkerConfig{
		Queues:     map[string]int{"traced": 1},
		Middleware: []queue.Middleware{otelobserve.JobMiddleware()},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Handle("report", queue.ResultFunc(func(ctx context.Context, _ *queue.Delivery) ([]byte, error) {
		span, ok := trace.SpanFromContext(ctx).(sdktrace.ReadOnlySpan)
		if !ok {
			return nil, queue.Permanent(errors.New("the handler's context holds no SDK span"))
		}
		return []byte(span.Parent().SpanID().String()), nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	_, err = q.Wait(ctx, queue.JobID(os.Getenv(childJob)))
	stop()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sr.Ended() {
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		line, _ := json.Marshal(childSpan{
			Name: s.Name(), Kind: s.SpanKind().String(),
			TraceID: s.SpanContext().TraceID().String(), SpanID: s.SpanContext().SpanID().String(),
			ParentSpanID: s.Parent().SpanID().String(), ParentRemote: s.Parent().IsRemote(), Attrs: attrs,
		})
		os.Stdout.WriteString("span " + string(line) + "\n")
	}
}
