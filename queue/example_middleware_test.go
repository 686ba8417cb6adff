package queue_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/scaleout/scaleout/queue"
)

// A request ID flows from the HTTP handler that enqueued a job to the
// handler that runs it: the web handler copies it into the job's headers,
// and a Worker middleware puts it back into the job's context, where the
// handler (and its logger) finds it as it would in a web request. A W3C
// traceparent travels the same way (an OpenTelemetry propagator injects
// into propagation.MapCarrier(job.Headers) and extracts from it).
func ExampleMiddleware() {
	// The context key of a request's ID, in the web handler and in the
	// job handler alike.
	type requestIDKey struct{}
	requestID := func(ctx context.Context) string {
		id, _ := ctx.Value(requestIDKey{}).(string)
		return id
	}

	q, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	// The worker: the middleware restores the request ID, the handler uses it.
	fromHeaders := func(next queue.Handler) queue.Handler {
		return queue.HandlerFunc(func(ctx context.Context, d *queue.Delivery) error {
			if id := d.Job.Headers["request-id"]; id != "" {
				ctx = context.WithValue(ctx, requestIDKey{}, id)
			}
			return next.Process(ctx, d)
		})
	}
	w, err := queue.NewWorker(q, queue.WorkerConfig{Middleware: []queue.Middleware{fromHeaders}})
	if err != nil {
		log.Fatal(err)
	}
	err = w.Handle("report", queue.ResultFunc(func(ctx context.Context, d *queue.Delivery) ([]byte, error) {
		return []byte("report for request " + requestID(ctx)), nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(runCtx) }()

	// The web side: a middleware reads the request ID, the handler
	// enqueues the job with it in the headers and answers 202.
	withRequestID := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			ctx := context.WithValue(r.Context(), requestIDKey{}, r.Header.Get("X-Request-Id"))
			next.ServeHTTP(rw, r.WithContext(ctx))
		})
	}
	var id queue.JobID
	enqueue := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var err error
		id, err = q.Enqueue(r.Context(), queue.Job{
			Type:    "report",
			Headers: map[string]string{"request-id": requestID(r.Context())},
		})
		if err != nil {
			http.Error(rw, "try again", http.StatusServiceUnavailable)
			return
		}
		rw.WriteHeader(http.StatusAccepted)
	})
	req := httptest.NewRequest(http.MethodPost, "/reports", nil)
	req.Header.Set("X-Request-Id", "req-7f3a")
	rec := httptest.NewRecorder()
	withRequestID(enqueue).ServeHTTP(rec, req)
	fmt.Println("HTTP", rec.Code)

	info, err := q.Wait(context.Background(), id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Headers["request-id"], "->", string(info.Result))

	stop()
	<-done
	// Output:
	// HTTP 202
	// req-7f3a -> report for request req-7f3a
}
