package queue_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue"
)

// A handler that returns SnoozeFor runs again once the delay has passed,
// never before, with the same attempt: with MaxAttempts 1, a snooze
// counted as a failed attempt would dead-letter the job. Meanwhile the
// job is scheduled, and the snoozed delivery is counted only as started.
func TestWorkerSnoozeFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := observe.NewRecorder()
		m := wMemory(t, queue.MemoryConfig{})
		w := wNew(t, m, queue.WorkerConfig{Meter: rec})
		const delay = 5 * time.Minute
		type run struct {
			at      time.Time
			attempt int
			token   uint64
		}
		runs := make(chan run, 3)
		var n atomic.Int32
		require.NoError(t, w.HandleFunc("poll", func(_ context.Context, d *queue.Delivery) error {
			runs <- run{time.Now(), d.Attempt, d.Token}
			if n.Add(1) == 1 {
				return queue.SnoozeFor(delay)
			}
			return nil
		}))
		stop := wRun(t, w)
		id := wEnqueue(t, m, queue.Job{Type: "poll", MaxAttempts: 1})

		first := <-runs
		synctest.Wait()
		info, err := m.Status(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, queue.StateScheduled, info.State)
		require.Equal(t, first.at.Add(delay), info.RunAt)

		info = wWait(t, m, id)
		require.Equal(t, queue.StateDone, info.State, "LastErr %q", info.LastErr)
		second := <-runs
		require.Equal(t, first.at.Add(delay), second.at, "ran again before or long after the delay")
		require.Equal(t, 1, first.attempt)
		require.Equal(t, 1, second.attempt, "a snooze counted an attempt")
		require.Greater(t, second.token, first.token)
		require.Empty(t, info.LastErr)
		require.ErrorIs(t, stop(), context.Canceled)
		require.Empty(t, runs, "the handler ran more than twice")
		requireFigures(t, rec, queue.DefaultQueue, map[string]float64{
			"scaleout.queue.started":   2,
			"scaleout.queue.succeeded": 1,
			"scaleout.queue.failed":    0,
		})
	})
}

// noSnoozeQueue hands out deliveries whose Settler is no Snoozer, as a
// third party's queue written before Snoozer.
type noSnoozeQueue struct{ *queue.Memory }

// plainSettler settles a delivery of the Memory it wraps, without Snooze.
type plainSettler struct{ orig *queue.Delivery }

func (s plainSettler) Ack(ctx context.Context, _ *queue.Delivery, r []byte) error {
	return s.orig.Ack(ctx, r)
}

func (s plainSettler) Fail(ctx context.Context, _ *queue.Delivery, cause error) error {
	return s.orig.Fail(ctx, cause)
}

func (s plainSettler) Extend(ctx context.Context, _ *queue.Delivery, lease time.Duration) error {
	return s.orig.Extend(ctx, lease)
}

func (s plainSettler) Release(ctx context.Context, _ *queue.Delivery) error {
	return s.orig.Release(ctx)
}

func (q noSnoozeQueue) Dequeue(ctx context.Context, queues []string, lease time.Duration) (*queue.Delivery, error) {
	d, err := q.Memory.Dequeue(ctx, queues, lease)
	if err != nil {
		return nil, err
	}
	return queue.NewDelivery(plainSettler{d}, *d), nil
}

func TestDeliverySnoozeUnsupported(t *testing.T) {
	m := wMemory(t, queue.MemoryConfig{})
	q := noSnoozeQueue{m}
	id := wEnqueue(t, q, queue.Job{Type: "t"})
	d, err := q.Dequeue(t.Context(), []string{queue.DefaultQueue}, time.Minute)
	require.NoError(t, err)
	err = d.Snooze(t.Context(), time.Second)
	require.ErrorIs(t, err, queue.ErrUnsupported)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	info, err := m.Status(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, queue.StateActive, info.State, "an unsupported Snooze changed the job")
}

// When the snooze cannot be done, the Worker fails the attempt with the
// reason at once, rather than leave the job leased until its lease runs
// out.
func TestWorkerSnoozeForFallsBackToFail(t *testing.T) {
	for _, tc := range []struct {
		name  string
		q     func(m *queue.Memory) queue.JobQueue
		delay time.Duration
		want  error
	}{
		{"unsupported", func(m *queue.Memory) queue.JobQueue { return noSnoozeQueue{m} }, time.Minute, queue.ErrUnsupported},
		{"negative delay", func(m *queue.Memory) queue.JobQueue { return m }, -time.Minute, queue.ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := wMemory(t, queue.MemoryConfig{})
				q := tc.q(m)
				w := wNew(t, q, queue.WorkerConfig{Lease: time.Hour})
				start := time.Now()
				require.NoError(t, w.HandleFunc("t", func(context.Context, *queue.Delivery) error {
					return queue.SnoozeFor(tc.delay)
				}))
				stop := wRun(t, w)
				id := wEnqueue(t, q, queue.Job{Type: "t", MaxAttempts: 1})
				info := wWait(t, q, id)
				require.ErrorIs(t, stop(), context.Canceled)
				require.Equal(t, queue.StateDead, info.State)
				require.Contains(t, info.LastErr, "snoozed for")
				require.Contains(t, info.LastErr, tc.want.Error())
				require.Equal(t, start, info.EndedAt, "failed only when the lease ran out")
			})
		})
	}
}
