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

// A handler's Then jobs are enqueued by the Worker's Ack, with the
// handler's result, and run once; the declaring job is done by then.
func TestWorkerThen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := observe.NewRecorder()
		m := wMemory(t, queue.MemoryConfig{Meter: rec})
		w := wNew(t, m, queue.WorkerConfig{Meter: rec})
		published := make(chan string, 2)
		require.NoError(t, w.Handle("resize", queue.ResultFunc(func(_ context.Context, d *queue.Delivery) ([]byte, error) {
			d.Then(queue.Job{Type: "publish", Payload: d.Job.Payload})
			return []byte("resized"), nil
		})))
		require.NoError(t, w.HandleFunc("publish", func(_ context.Context, d *queue.Delivery) error {
			published <- string(d.Job.Payload)
			return nil
		}))
		stop := wRun(t, w)
		id := wEnqueue(t, m, queue.Job{Type: "resize", Payload: []byte("cat.jpg")})
		info := wWait(t, m, id)
		require.Equal(t, queue.StateDone, info.State)
		require.Equal(t, "resized", string(info.Result))
		require.Equal(t, "cat.jpg", <-published)
		synctest.Wait()
		require.ErrorIs(t, stop(), context.Canceled)
		require.Empty(t, published, "the next job ran twice")
		requireFigures(t, rec, queue.DefaultQueue, map[string]float64{
			"scaleout.queue.enqueued":  2,
			"scaleout.queue.started":   2,
			"scaleout.queue.succeeded": 2,
			"scaleout.queue.failed":    0,
		})
	})
}

// Jobs declared by an attempt that fails are dropped: only the attempt
// that succeeds enqueues its next jobs, once, though each attempt
// declared them.
func TestWorkerThenDroppedOnFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		w := wNew(t, m, queue.WorkerConfig{})
		var attempts, nexts atomic.Int32
		require.NoError(t, w.HandleFunc("flaky", func(_ context.Context, d *queue.Delivery) error {
			d.Then(queue.Job{Type: "next"}) // no ID: a second enqueue would be a second job
			if attempts.Add(1) < 3 {
				return errors.New("not yet")
			}
			return nil
		}))
		require.NoError(t, w.HandleFunc("next", func(context.Context, *queue.Delivery) error {
			nexts.Add(1)
			return nil
		}))
		stop := wRun(t, w)
		id := wEnqueue(t, m, queue.Job{Type: "flaky"})
		info := wWait(t, m, id)
		require.Equal(t, queue.StateDone, info.State)
		require.Equal(t, 3, info.Attempt)
		time.Sleep(time.Minute) // far past any backoff: every job that exists has run
		require.ErrorIs(t, stop(), context.Canceled)
		require.EqualValues(t, 1, nexts.Load(), "next jobs of failed attempts were enqueued")
	})
}

// ackDequeueQueue is a queue that is an AckDequeuer, whose
// AckAndDequeue acks as the backends' do, by the queue's own Ack, which
// knows nothing of a delivery's Then.
type ackDequeueQueue struct{ *queue.Memory }

func (q ackDequeueQueue) AckAndDequeue(ctx context.Context, d *queue.Delivery, result []byte, _ time.Duration) (*queue.Delivery, error) {
	return nil, q.Memory.Ack(ctx, d, result)
}

// A Worker serving one queue that is an AckDequeuer settles with
// AckAndDequeue, which cannot enqueue next jobs: a job that declared some
// is acked with them instead.
func TestWorkerThenOnAckDequeuer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		q := ackDequeueQueue{m}
		w := wNew(t, q, queue.WorkerConfig{})
		done := make(chan struct{}, 1)
		require.NoError(t, w.HandleFunc("first", func(_ context.Context, d *queue.Delivery) error {
			d.Then(queue.Job{Type: "second"})
			return nil
		}))
		require.NoError(t, w.HandleFunc("second", func(context.Context, *queue.Delivery) error {
			done <- struct{}{}
			return nil
		}))
		stop := wRun(t, w)
		wEnqueue(t, q, queue.Job{Type: "first"})
		select {
		case <-done:
		case <-time.After(time.Hour):
			t.Fatal("the next job was lost")
		}
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

// When the queue is no Chainer, or refuses a next job, the Worker fails
// the attempt with the reason at once (the job is dead at once with
// MaxAttempts 1), rather than leave it leased until its lease runs out,
// and enqueues nothing.
func TestWorkerThenRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		q    func(m *queue.Memory) queue.JobQueue
		next queue.Job
		want error
	}{
		{"unsupported", func(m *queue.Memory) queue.JobQueue { return noSnoozeQueue{m} }, queue.Job{Type: "next", ID: "n"}, queue.ErrUnsupported},
		{"invalid", func(m *queue.Memory) queue.JobQueue { return m }, queue.Job{ID: "n"}, queue.ErrInvalidJob},
		{"held unique key", func(m *queue.Memory) queue.JobQueue { return m }, queue.Job{Type: "next", ID: "n", UniqueKey: "held", UniqueFor: time.Hour}, queue.ErrDuplicate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := observe.NewRecorder()
				m := wMemory(t, queue.MemoryConfig{})
				q := tc.q(m)
				wEnqueue(t, m, queue.Job{Type: "holder", UniqueKey: "held", UniqueFor: time.Hour, RunAt: time.Now().Add(time.Hour)})
				w := wNew(t, q, queue.WorkerConfig{Lease: time.Hour, Meter: rec})
				start := time.Now()
				require.NoError(t, w.HandleFunc("t", func(_ context.Context, d *queue.Delivery) error {
					d.Then(tc.next)
					return nil
				}))
				stop := wRun(t, w)
				id := wEnqueue(t, q, queue.Job{Type: "t", MaxAttempts: 1})
				info := wWait(t, q, id)
				require.ErrorIs(t, stop(), context.Canceled)
				require.Equal(t, queue.StateDead, info.State)
				require.Contains(t, info.LastErr, "next jobs were refused")
				require.Contains(t, info.LastErr, tc.want.Error())
				require.Equal(t, start, info.EndedAt, "failed only when the lease ran out")
				_, err := m.Status(t.Context(), queue.FormatID(queue.DefaultQueue, "n"))
				require.ErrorIs(t, err, queue.ErrNotFound, "a refused step enqueued")
				requireFigures(t, rec, queue.DefaultQueue, map[string]float64{
					"scaleout.queue.succeeded":     0,
					"scaleout.queue.failed":        1,
					"scaleout.queue.dead_lettered": 1,
				})
			})
		})
	}
}

// Delivery.AckThen on a queue that is no Chainer is ErrUnsupported and
// changes nothing: no ack followed by an enqueue that a crash could cut.
// With no next job it is Ack.
func TestDeliveryAckThenUnsupported(t *testing.T) {
	m := wMemory(t, queue.MemoryConfig{})
	q := noSnoozeQueue{m}
	id := wEnqueue(t, q, queue.Job{Type: "t"})
	d, err := q.Dequeue(t.Context(), []string{queue.DefaultQueue}, time.Minute)
	require.NoError(t, err)
	_, err = d.AckThen(t.Context(), nil, queue.Job{Type: "next", ID: "n"})
	require.ErrorIs(t, err, queue.ErrUnsupported)
	require.ErrorIs(t, err, errors.ErrUnsupported)
	d.Then(queue.Job{Type: "next", ID: "n"})
	require.ErrorIs(t, d.Ack(t.Context(), nil), queue.ErrUnsupported, "Ack with jobs declared by Then")
	info, err := m.Status(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, queue.StateActive, info.State, "an unsupported AckThen changed the job")
	_, err = m.Status(t.Context(), queue.FormatID(queue.DefaultQueue, "n"))
	require.ErrorIs(t, err, queue.ErrNotFound)

	ids, err := d.AckThen(t.Context(), []byte("r"))
	require.NoError(t, err, "AckThen with no next job is Ack")
	require.Empty(t, ids)
	info, err = m.Status(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, queue.StateDone, info.State)
}

// PrepareChain refuses, naming the job, what one step cannot store.
func TestPrepareChain(t *testing.T) {
	j := func(id, key string) queue.Job {
		job := queue.Job{Type: "t", ID: id, UniqueKey: key}
		if key != "" {
			job.UniqueFor = time.Hour
		}
		return job
	}
	_, ids, err := queue.PrepareChain([]queue.Job{j("a", ""), j("", "k"), {Queue: "other", Type: "t", UniqueKey: "k", UniqueFor: time.Hour}}, 0)
	require.NoError(t, err, "one key in two queues is two keys")
	require.Equal(t, queue.FormatID(queue.DefaultQueue, "a"), ids[0])
	require.NotEmpty(t, ids[1])

	_, _, err = queue.PrepareChain([]queue.Job{j("a", ""), j("a", "")}, 0)
	require.ErrorIs(t, err, queue.ErrInvalidJob)
	_, _, err = queue.PrepareChain([]queue.Job{j("", "k"), j("", "k")}, 0)
	require.ErrorIs(t, err, queue.ErrDuplicate)
	_, _, err = queue.PrepareChain([]queue.Job{j("a", ""), {}}, 0)
	require.ErrorIs(t, err, queue.ErrInvalidJob)
	require.Contains(t, err.Error(), "next job 1")
	_, _, err = queue.PrepareChain(make([]queue.Job, queue.MaxChain+1), 0)
	require.ErrorIs(t, err, queue.ErrInvalidJob)
}
