package redisqueue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// TestMetrics runs a known workload on a real Redis through a Queue and
// a Worker reporting to one Recorder, then a DepthReporter over it, and
// checks the figures of observe's table for queue: enqueued (Enqueue and
// EnqueueBatch, their idempotent retries not counted), the Worker's
// counts through AckAndDequeue (one queue), a lease lost on Ack, and the
// depth by state.
func TestMetrics(t *testing.T) {
	rec := observe.NewRecorder()
	q := newQueue(t, testenv.RedisClient(t), redisqueue.Config{Meter: rec, Backoff: shortBackoff})
	ctx := t.Context()
	enqueue := func(j queue.Job) queue.JobID {
		t.Helper()
		id, err := q.Enqueue(ctx, j)
		require.NoError(t, err)
		return id
	}
	j := func(typ, id string) queue.Job { return queue.Job{Queue: "m", Type: typ, ID: id, MaxAttempts: 3} }
	ids := []queue.JobID{enqueue(j("ok", "ok-1")), enqueue(j("ok", "ok-2")), enqueue(j("flaky", "")),
		enqueue(j("permanent", "")), enqueue(j("selfack", ""))}
	require.Equal(t, ids[0], enqueue(j("ok", "ok-1")), "a retry of an Enqueue names the stored job")
	batch, err := q.EnqueueBatch(ctx, []queue.Job{j("ok", "ok-2"), j("ok", "ok-3")})
	require.NoError(t, err)
	ids = append(ids, batch[1])
	require.Equal(t, 6.0, rec.Value("scaleout.queue.enqueued", "queue", "m"))

	w, err := queue.NewWorker(q, queue.WorkerConfig{Queues: map[string]int{"m": 1}, Meter: rec, Lease: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, w.HandleFunc("ok", func(context.Context, *queue.Delivery) error { return nil }))
	require.NoError(t, w.HandleFunc("flaky", func(_ context.Context, d *queue.Delivery) error {
		if d.Attempt == 1 {
			return errors.New("flaky")
		}
		return nil
	}))
	require.NoError(t, w.HandleFunc("permanent", func(context.Context, *queue.Delivery) error {
		return queue.Permanent(errors.New("bad input"))
	}))
	require.NoError(t, w.HandleFunc("selfack", func(ctx context.Context, d *queue.Delivery) error {
		return d.Ack(ctx, nil) // the Worker's own Ack is then refused
	}))
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, id := range ids {
		_, err := q.Wait(waitCtx, id)
		require.NoError(t, err, "job %s", id)
	}
	stop()
	require.ErrorIs(t, <-done, context.Canceled)

	for name, want := range map[string]float64{
		"scaleout.queue.started":       7, // ok 3, flaky 2, permanent, selfack
		"scaleout.queue.succeeded":     4, // ok 3, flaky's second attempt
		"scaleout.queue.failed":        2,
		"scaleout.queue.retried":       1,
		"scaleout.queue.dead_lettered": 1,
		"scaleout.queue.lease_losses":  1,
	} {
		require.Equal(t, want, rec.Value(name, "queue", "m"), name)
	}
	require.EqualValues(t, 7, rec.Count("scaleout.queue.handler.duration", "queue", "m"))

	// Depth: one ready job, one scheduled, none active, the dead one.
	enqueue(queue.Job{Queue: "m", Type: "ok"})
	enqueue(queue.Job{Queue: "m", Type: "ok", RunAt: time.Now().Add(time.Hour)})
	r, err := queue.NewDepthReporter(q, queue.DepthReporterConfig{Queues: []string{"m"}, Meter: rec})
	require.NoError(t, err)
	rctx, rstop := context.WithCancel(ctx)
	rdone := make(chan error, 1)
	go func() { rdone <- r.Run(rctx) }()
	require.Eventually(t, func() bool { return rec.Count("scaleout.queue.oldest_age", "queue", "m") > 0 },
		10*time.Second, 5*time.Millisecond, "no poll within 10 s")
	rstop()
	require.ErrorIs(t, <-rdone, context.Canceled)
	for state, want := range map[string]float64{"ready": 1, "scheduled": 1, "active": 0, "dead": 1} {
		require.Equal(t, want, rec.Value("scaleout.queue.depth", "queue", "m", "state", state), state)
	}
	require.Equal(t, 8.0, rec.Value("scaleout.queue.enqueued", "queue", "m"))
}
