package queue_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue"
)

// requireFigures checks the value of each metric of queue qn in rec.
func requireFigures(t *testing.T, rec *observe.Recorder, qn string, want map[string]float64) {
	t.Helper()
	for name, v := range want {
		require.Equal(t, v, rec.Value(name, "queue", qn), "%s of queue %s", name, qn)
	}
}

// TestWorkerMetrics runs a known workload through a Worker on a Memory
// queue, both reporting to one Recorder, and checks every figure of
// observe's table that they report: per queue, jobs enqueued (an
// idempotent retry of Enqueue not counted), started, succeeded, failed,
// retried and dead-lettered, handler durations, and leases lost both ways
// the Worker finds out (a heartbeat refused, an Ack refused).
func TestWorkerMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := observe.NewRecorder()
		q := wMemory(t, queue.MemoryConfig{Meter: rec, Backoff: func(int) time.Duration { return 0 }})
		var logs bytes.Buffer
		w := wNew(t, q, queue.WorkerConfig{
			Queues: map[string]int{"a": 1, "b": 1}, Meter: rec, Lease: 3 * time.Second,
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		require.NoError(t, w.HandleFunc("ok", func(context.Context, *queue.Delivery) error {
			time.Sleep(2 * time.Second)
			return nil
		}))
		require.NoError(t, w.HandleFunc("flaky", func(_ context.Context, d *queue.Delivery) error {
			if d.Attempt == 1 {
				return errors.New("flaky")
			}
			return nil
		}))
		require.NoError(t, w.HandleFunc("fail", func(context.Context, *queue.Delivery) error { return errors.New("fail") }))
		require.NoError(t, w.HandleFunc("permanent", func(context.Context, *queue.Delivery) error {
			return queue.Permanent(errors.New("bad input"))
		}))
		require.NoError(t, w.HandleFunc("panic", func(context.Context, *queue.Delivery) error { panic("boom") }))
		// selfack settles its own delivery: the Worker's Ack is refused.
		require.NoError(t, w.HandleFunc("selfack", func(ctx context.Context, d *queue.Delivery) error {
			return d.Ack(ctx, nil)
		}))
		// release gives its first delivery back and holds on: the next
		// heartbeat is refused and cancels it; the redelivery succeeds.
		var released atomic.Bool
		require.NoError(t, w.HandleFunc("release", func(ctx context.Context, d *queue.Delivery) error {
			if released.CompareAndSwap(false, true) {
				if err := d.Release(ctx); err != nil {
					return err
				}
				<-ctx.Done()
				return context.Cause(ctx)
			}
			return nil
		}))

		var ids []queue.JobID
		for range 3 {
			ids = append(ids, wEnqueue(t, q, queue.Job{Queue: "a", Type: "ok"}))
		}
		ids = append(ids,
			wEnqueue(t, q, queue.Job{Queue: "a", Type: "flaky", ID: "flaky-1", MaxAttempts: 3}),
			wEnqueue(t, q, queue.Job{Queue: "a", Type: "selfack"}),
			wEnqueue(t, q, queue.Job{Queue: "a", Type: "release"}),
			wEnqueue(t, q, queue.Job{Queue: "b", Type: "fail", MaxAttempts: 2}),
			wEnqueue(t, q, queue.Job{Queue: "b", Type: "permanent"}),
			wEnqueue(t, q, queue.Job{Queue: "b", Type: "panic", MaxAttempts: 1}),
			wEnqueue(t, q, queue.Job{Queue: "b", Type: "nobody handles this"}),
		)
		// A retry of an Enqueue names the job already stored: no new job.
		require.Equal(t, ids[3], wEnqueue(t, q, queue.Job{Queue: "a", Type: "flaky", ID: "flaky-1", MaxAttempts: 3}))

		stop := wRun(t, w)
		for _, id := range ids {
			wWait(t, q, id)
		}
		require.ErrorIs(t, stop(), context.Canceled) // every settlement counted

		requireFigures(t, rec, "a", map[string]float64{
			"scaleout.queue.enqueued":      6,
			"scaleout.queue.started":       8, // ok 3, flaky 2, selfack 1, release 2
			"scaleout.queue.succeeded":     5, // ok 3, flaky 1, release 1
			"scaleout.queue.failed":        1,
			"scaleout.queue.retried":       1,
			"scaleout.queue.dead_lettered": 0,
			"scaleout.queue.lease_losses":  2, // selfack's Ack, release's heartbeat
		})
		requireFigures(t, rec, "b", map[string]float64{
			"scaleout.queue.enqueued":      4,
			"scaleout.queue.started":       5, // fail 2, permanent, panic, unknown type
			"scaleout.queue.succeeded":     0,
			"scaleout.queue.failed":        5,
			"scaleout.queue.retried":       1, // fail's first attempt
			"scaleout.queue.dead_lettered": 4,
			"scaleout.queue.lease_losses":  0,
		})
		// One observation per run; the ok jobs' 2 s each of (fake) time
		// are the whole of queue a's, as every other handler returns at
		// once but release's first run, cut off by its next heartbeat (1 s).
		require.EqualValues(t, 8, rec.Count("scaleout.queue.handler.duration", "queue", "a"))
		require.EqualValues(t, 5, rec.Count("scaleout.queue.handler.duration", "queue", "b"))
		require.Equal(t, 7.0, rec.Value("scaleout.queue.handler.duration", "queue", "a"))
		require.Equal(t, 0.0, rec.Value("scaleout.queue.handler.duration", "queue", "b"))
		require.Equal(t, 1, strings.Count(logs.String(), "handler panicked"), logs.String())
	})
}

// TestWorkerMetricsOnlyItsQueues checks that a Worker binds the
// instruments of its own queues, at NewWorker, and none without a Meter.
func TestWorkerMetricsOnlyItsQueues(t *testing.T) {
	rec := observe.NewRecorder()
	q := wMemory(t, queue.MemoryConfig{})
	wNew(t, q, queue.WorkerConfig{Queues: map[string]int{"a": 1, "b": 2}, Meter: rec})
	seen := map[string]bool{}
	for _, s := range rec.Series() {
		require.Zero(t, s.Value, s.Desc.Name)
		seen[s.Desc.Name+"/"+s.Labels["queue"]] = true
	}
	for _, name := range []string{"started", "succeeded", "failed", "retried", "dead_lettered", "lease_losses", "handler.duration"} {
		for _, qn := range []string{"a", "b"} {
			require.True(t, seen["scaleout.queue."+name+"/"+qn], "%s of %s not bound", name, qn)
		}
	}
	require.Len(t, seen, 14)
}

// TestDepthReporter polls a Memory queue's counts on a fake clock and
// checks the gauges after each poll: the depth by state, the age of the
// oldest ready job, queues appearing when the reporter lists them, and
// the values kept while polls fail.
func TestDepthReporter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := observe.NewRecorder()
		m := wMemory(t, queue.MemoryConfig{})
		in := &flakyInspector{Memory: m}
		var logs bytes.Buffer
		r, err := queue.NewDepthReporter(in, queue.DepthReporterConfig{
			Interval: 10 * time.Second, Meter: rec, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		require.NoError(t, err)
		ctx := t.Context()
		for range 3 {
			wEnqueue(t, m, queue.Job{Queue: "a", Type: "t"})
		}
		wEnqueue(t, m, queue.Job{Queue: "a", Type: "t", RunAt: time.Now().Add(time.Hour)})
		d, err := m.Dequeue(ctx, []string{"a"}, time.Hour)
		require.NoError(t, err)
		require.NoError(t, d.Fail(ctx, queue.Permanent(errors.New("dead"))))
		_, err = m.Dequeue(ctx, []string{"a"}, time.Hour)
		require.NoError(t, err)
		depth := func(qn string, s queue.State) float64 {
			return rec.Value("scaleout.queue.depth", "queue", qn, "state", string(s))
		}

		time.Sleep(5 * time.Second) // the oldest ready job has waited 5 s
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(runCtx) }()
		synctest.Wait() // the first poll is at once
		require.ErrorIs(t, r.Run(ctx), queue.ErrAlreadyRunning)
		require.Equal(t, 1.0, depth("a", queue.StateReady))
		require.Equal(t, 1.0, depth("a", queue.StateScheduled))
		require.Equal(t, 1.0, depth("a", queue.StateActive))
		require.Equal(t, 1.0, depth("a", queue.StateDead))
		require.Equal(t, 5.0, rec.Value("scaleout.queue.oldest_age", "queue", "a"))

		// A queue appears; 10 s later the next poll sees it.
		wEnqueue(t, m, queue.Job{Queue: "b", Type: "t"})
		wEnqueue(t, m, queue.Job{Queue: "b", Type: "t"})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, 2.0, depth("b", queue.StateReady))
		require.Equal(t, 10.0, rec.Value("scaleout.queue.oldest_age", "queue", "b"), "b's jobs waited one interval")
		require.Equal(t, 15.0, rec.Value("scaleout.queue.oldest_age", "queue", "a"))

		// Counts fails: the gauges keep their values, one record per poll.
		in.fail.Store(true)
		_, err = m.Dequeue(ctx, []string{"b"}, time.Hour)
		require.NoError(t, err)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, 2.0, depth("b", queue.StateReady))
		require.Equal(t, 1, strings.Count(logs.String(), "counting queues failed"), logs.String())
		require.Contains(t, logs.String(), `queues="[a b]"`)
		in.fail.Store(false)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		require.Equal(t, 1.0, depth("b", queue.StateReady))
		require.Equal(t, 1.0, depth("b", queue.StateActive))

		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		require.ErrorIs(t, r.Run(canceled()), context.Canceled, "a Run after the first one ended runs")
	})
}

// canceled returns a canceled context.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// flakyInspector is a Memory whose Counts fails while fail is set.
type flakyInspector struct {
	*queue.Memory
	fail atomic.Bool
}

func (f *flakyInspector) Counts(ctx context.Context, qn string) (queue.QueueCounts, error) {
	if f.fail.Load() {
		return queue.QueueCounts{}, errors.New("backend down")
	}
	return f.Memory.Counts(ctx, qn)
}

// TestDepthReporterGivenQueues reports the queues it is given, whether
// the Inspector lists them or not, and nothing without a Meter.
func TestDepthReporterGivenQueues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := observe.NewRecorder()
		m := wMemory(t, queue.MemoryConfig{})
		wEnqueue(t, m, queue.Job{Queue: "a", Type: "t"})
		wEnqueue(t, m, queue.Job{Queue: "b", Type: "t"})
		r, err := queue.NewDepthReporter(m, queue.DepthReporterConfig{Queues: []string{"b", "never-used"}, Meter: rec})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait()
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		require.Equal(t, 1.0, rec.Value("scaleout.queue.depth", "queue", "b", "state", "ready"))
		require.EqualValues(t, 4, rec.Count("scaleout.queue.depth", "queue", "never-used"), "a queue nobody used is reported empty")
		require.Zero(t, rec.Count("scaleout.queue.depth", "queue", "a"), "a is not asked for")

		off, err := queue.NewDepthReporter(m, queue.DepthReporterConfig{})
		require.NoError(t, err)
		require.ErrorIs(t, off.Run(canceled()), context.Canceled)
	})
}

func TestNewDepthReporterInvalid(t *testing.T) {
	m := wMemory(t, queue.MemoryConfig{})
	for _, cfg := range []queue.DepthReporterConfig{
		{Interval: -time.Second},
		{Queues: []string{"bad/name"}},
	} {
		_, err := queue.NewDepthReporter(m, cfg)
		require.ErrorIs(t, err, queue.ErrInvalidConfig, "%+v", cfg)
	}
	_, err := queue.NewDepthReporter(nil, queue.DepthReporterConfig{})
	require.ErrorIs(t, err, queue.ErrInvalidConfig)
}

// TestNilLoggerIsSlogDefault checks the logging rule: a Worker and a
// Scheduler without a Logger write to slog.Default, as it was when they
// were built.
func TestNilLoggerIsSlogDefault(t *testing.T) {
	var logs bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(old)

	synctest.Test(t, func(t *testing.T) {
		q := wMemory(t, queue.MemoryConfig{})
		w := wNew(t, q, queue.WorkerConfig{})
		require.NoError(t, w.HandleFunc("panic", func(context.Context, *queue.Delivery) error { panic("boom") }))
		stop := wRun(t, w)
		wWait(t, q, wEnqueue(t, q, queue.Job{Type: "panic", MaxAttempts: 1}))
		require.ErrorIs(t, stop(), context.Canceled)

		closed := wMemory(t, queue.MemoryConfig{})
		require.NoError(t, closed.Close())
		s, err := queue.NewScheduler(closed, queue.SchedulerConfig{})
		require.NoError(t, err)
		require.NoError(t, s.Add("tick", "@every 1m", queue.Job{Type: "t"}))
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		require.ErrorIs(t, s.Run(ctx), context.DeadlineExceeded)
	})
	require.Contains(t, logs.String(), "handler panicked")
	require.Contains(t, logs.String(), "periodic=tick")
}
