package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

type mwKey string

// tracer records the steps of the middleware and handlers it is given.
type tracer struct {
	mu    sync.Mutex
	steps []string
}

func (tr *tracer) add(s string) {
	tr.mu.Lock()
	tr.steps = append(tr.steps, s)
	tr.mu.Unlock()
}

func (tr *tracer) take() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := tr.steps
	tr.steps = nil
	return s
}

// named is a middleware that records its entry and exit, puts its name in
// the context under its own key, and counts its constructions.
func named(tr *tracer, name string, built *atomic.Int32) queue.Middleware {
	return func(next queue.Handler) queue.Handler {
		built.Add(1)
		return queue.HandlerFunc(func(ctx context.Context, d *queue.Delivery) error {
			tr.add(name + ">")
			err := next.Process(context.WithValue(ctx, mwKey(name), name+"-value"), d)
			tr.add(fmt.Sprintf("<%s(%v)", name, err))
			return err
		})
	}
}

// The first middleware is outermost; values each sets in the context
// reach the ones inside and the handler; each sees what the inner ones
// return; the result of a ResultFunc still reaches the Ack.
func TestMiddlewareOrderAndContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		tr := &tracer{}
		var builtA, builtB atomic.Int32
		w := wNew(t, m, queue.WorkerConfig{Middleware: []queue.Middleware{named(tr, "A", &builtA), named(tr, "B", &builtB)}})
		require.NoError(t, w.Handle("t", queue.ResultFunc(func(ctx context.Context, d *queue.Delivery) ([]byte, error) {
			tr.add(fmt.Sprintf("handler A=%v B=%v", ctx.Value(mwKey("A")), ctx.Value(mwKey("B"))))
			return []byte("result"), nil
		})))
		stop := wRun(t, w)
		info := wWait(t, m, wEnqueue(t, m, queue.Job{Type: "t"}))
		require.Equal(t, queue.StateDone, info.State)
		require.Equal(t, "result", string(info.Result), "the result passes through the middleware")
		require.Equal(t, []string{"A>", "B>", "handler A=A-value B=B-value", "<B(<nil>)", "<A(<nil>)"}, tr.take())
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

// The chain is built once per handler (and once for jobs of unknown
// types) however many jobs and retries run through it, and every
// delivery runs it once.
func TestMiddlewareBuiltOnceRunPerDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{Backoff: func(int) time.Duration { return time.Second }})
		tr := &tracer{}
		var built atomic.Int32
		w := wNew(t, m, queue.WorkerConfig{Middleware: []queue.Middleware{named(tr, "A", &built)}})
		require.EqualValues(t, 1, built.Load(), "NewWorker builds the chain for unknown types")
		var attempts atomic.Int32
		require.NoError(t, w.HandleFunc("flaky", func(ctx context.Context, d *queue.Delivery) error {
			if attempts.Add(1) < 3 {
				return errors.New("not yet")
			}
			return nil
		}))
		require.NoError(t, w.HandleFunc("ok", func(ctx context.Context, d *queue.Delivery) error { return nil }))
		require.EqualValues(t, 3, built.Load(), "one chain per Handle")
		stop := wRun(t, w)
		var ids []queue.JobID
		for range 5 {
			ids = append(ids, wEnqueue(t, m, queue.Job{Type: "ok"}))
		}
		flaky := wEnqueue(t, m, queue.Job{Type: "flaky"})
		for _, id := range append(ids, flaky) {
			require.Equal(t, queue.StateDone, wWait(t, m, id).State)
		}
		require.Equal(t, 3, wWait(t, m, flaky).Attempt)
		require.EqualValues(t, 3, built.Load(), "no chain is built per job or per retry")
		steps := tr.take()
		require.Equal(t, 8, countOf(steps, "A>"), "5 jobs and 3 deliveries of the flaky one each run the chain once: %q", steps)
		require.Equal(t, 2, countOf(steps, "<A(not yet)"), "the middleware sees the handler's error")
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

func countOf(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// A job whose type has no handler runs through the middleware too (a
// tracing middleware sees it) and is dead with ErrUnknownType; what a
// middleware returns settles the job (an error without calling the
// handler, a panic), as a handler's would.
func TestMiddlewareSettlesJobs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		tr := &tracer{}
		var built atomic.Int32
		gate := func(next queue.Handler) queue.Handler {
			return queue.HandlerFunc(func(ctx context.Context, d *queue.Delivery) error {
				switch d.Job.Headers["gate"] {
				case "refuse":
					return queue.Permanent(errors.New("refused by middleware"))
				case "panic":
					panic("middleware panic")
				}
				return next.Process(ctx, d)
			})
		}
		w := wNew(t, m, queue.WorkerConfig{Middleware: []queue.Middleware{named(tr, "A", &built), gate}})
		var ran atomic.Int32
		require.NoError(t, w.HandleFunc("t", func(ctx context.Context, d *queue.Delivery) error {
			ran.Add(1)
			return nil
		}))
		stop := wRun(t, w)

		info := wWait(t, m, wEnqueue(t, m, queue.Job{Type: "nobody"}))
		require.Equal(t, queue.StateDead, info.State)
		require.Contains(t, info.LastErr, queue.ErrUnknownType.Error())
		steps := tr.take()
		require.Len(t, steps, 2)
		require.Equal(t, "A>", steps[0], "a job of unknown type runs through the middleware")
		require.Contains(t, steps[1], queue.ErrUnknownType.Error())

		info = wWait(t, m, wEnqueue(t, m, queue.Job{Type: "t", Headers: map[string]string{"gate": "refuse"}}))
		require.Equal(t, queue.StateDead, info.State)
		require.Equal(t, "refused by middleware", info.LastErr)
		info = wWait(t, m, wEnqueue(t, m, queue.Job{Type: "t", MaxAttempts: 1, Headers: map[string]string{"gate": "panic"}}))
		require.Equal(t, queue.StateDead, info.State)
		require.Contains(t, info.LastErr, "middleware panic", "a middleware's panic is recovered as a handler's")
		require.Zero(t, ran.Load(), "the gate kept both from the handler")
		require.Equal(t, queue.StateDone, wWait(t, m, wEnqueue(t, m, queue.Job{Type: "t"})).State)
		require.EqualValues(t, 1, ran.Load())
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

// The job's timeout and its cancellation reach the handler through the
// context a middleware derived.
func TestMiddlewareKeepsJobContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		derive := func(next queue.Handler) queue.Handler {
			return queue.HandlerFunc(func(ctx context.Context, d *queue.Delivery) error {
				ctx, cancel := context.WithCancel(context.WithValue(ctx, mwKey("x"), 1))
				defer cancel()
				return next.Process(ctx, d)
			})
		}
		w := wNew(t, m, queue.WorkerConfig{Middleware: []queue.Middleware{derive}, JobTimeout: time.Minute})
		var cause atomic.Value
		require.NoError(t, w.HandleFunc("slow", func(ctx context.Context, d *queue.Delivery) error {
			<-ctx.Done()
			cause.Store(context.Cause(ctx))
			return ctx.Err()
		}))
		stop := wRun(t, w)
		start := time.Now()
		info := wWait(t, m, wEnqueue(t, m, queue.Job{Type: "slow", MaxAttempts: 1}))
		require.Equal(t, queue.StateDead, info.State)
		require.Equal(t, time.Minute, time.Since(start), "the job's timeout ends the handler under the middleware")
		require.Contains(t, info.LastErr, "timed out")
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

func TestMiddlewareConfig(t *testing.T) {
	m := wMemory(t, queue.MemoryConfig{})
	_, err := queue.NewWorker(m, queue.WorkerConfig{Middleware: []queue.Middleware{nil}})
	require.ErrorIs(t, err, queue.ErrInvalidConfig)
	nilHandler := func(queue.Handler) queue.Handler { return nil }
	_, err = queue.NewWorker(m, queue.WorkerConfig{Middleware: []queue.Middleware{nilHandler}})
	require.ErrorIs(t, err, queue.ErrInvalidConfig, "a middleware returning nil")
	// The Worker keeps its own copy of the list.
	var order []string
	mws := []queue.Middleware{func(h queue.Handler) queue.Handler { order = append(order, "first"); return h }}
	w := wNew(t, m, queue.WorkerConfig{Middleware: mws})
	mws[0] = func(h queue.Handler) queue.Handler { order = append(order, "replaced"); return h }
	require.NoError(t, w.HandleFunc("t", func(context.Context, *queue.Delivery) error { return nil }))
	require.Equal(t, []string{"first", "first"}, order)
	require.False(t, slices.Contains(order, "replaced"))
}
