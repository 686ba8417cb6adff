package queuetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

// ackDequeuer returns q as a queue.AckDequeuer; a clause skips on a
// queue that is not one.
func ackDequeuer(t *testing.T, q queue.JobQueue) queue.AckDequeuer {
	t.Helper()
	ad, ok := q.(queue.AckDequeuer)
	if !ok {
		t.Skip("the queue does not implement queue.AckDequeuer")
	}
	return ad
}

// testAckDequeue checks AckAndDequeue: the ack and the next lease in one
// step, best job first; nil when no job is ready; a refused ack leases
// nothing. (testInspectPause checks that a paused queue leases nothing.)
func testAckDequeue(t *testing.T, q queue.JobQueue, name string) {
	ad := ackDequeuer(t, q)
	ctx := t.Context()
	first := enqueue(t, q, queue.Job{Queue: name, Type: "t", Priority: 5})
	second := enqueue(t, q, queue.Job{Queue: name, Type: "t", Priority: 1, Payload: []byte("p")})
	third := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	later := enqueue(t, q, queue.Job{Queue: name, Type: "t", Priority: 9, RunAt: time.Now().Add(time.Hour)})

	d := dequeue(t, q, longLease, name)
	require.Equal(t, first, d.ID)
	_, err := ad.AckAndDequeue(ctx, d, nil, 0)
	require.ErrorIs(t, err, queue.ErrInvalidConfig, "a lease of 0")
	require.Equal(t, queue.StateActive, status(t, q, first).State, "a refused call acked")

	next, err := ad.AckAndDequeue(ctx, d, []byte("one"), longLease)
	require.NoError(t, err)
	require.NotNil(t, next, "a ready job was left")
	require.Equal(t, second, next.ID, "the best ready job is next")
	require.Equal(t, []byte("p"), next.Job.Payload)
	require.Equal(t, 1, next.Attempt)
	require.NotZero(t, next.Token)
	in := status(t, q, first)
	require.Equal(t, queue.StateDone, in.State)
	require.Equal(t, []byte("one"), in.Result)
	require.Equal(t, queue.StateActive, status(t, q, second).State, "the next job is leased")

	// Acked twice: refused, and nothing leased.
	again, err := ad.AckAndDequeue(ctx, d, []byte("two"), longLease)
	require.ErrorIs(t, err, queue.ErrLeaseLost)
	require.Nil(t, again)
	require.Equal(t, []byte("one"), status(t, q, first).Result)
	require.Equal(t, queue.StateReady, status(t, q, third).State, "a refused ack leased a job")

	next2, err := ad.AckAndDequeue(ctx, next, nil, longLease)
	require.NoError(t, err)
	require.NotNil(t, next2)
	require.Equal(t, third, next2.ID)
	last, err := ad.AckAndDequeue(ctx, next2, nil, longLease)
	require.NoError(t, err)
	require.Nil(t, last, "no job is ready (the scheduled one is not due)")
	require.Equal(t, queue.StateDone, status(t, q, third).State)
	require.Equal(t, queue.StateScheduled, status(t, q, later).State)
}

// testAckDequeueExpired checks that an AckAndDequeue whose lease ran out
// is refused and leases nothing: the job runs again, and the ready one
// stays ready.
func testAckDequeueExpired(t *testing.T, q queue.JobQueue, name string) {
	ad := ackDequeuer(t, q)
	ctx := t.Context()
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t", MaxAttempts: 3})
	stale := dequeue(t, q, shortLease, name)
	require.Equal(t, id, stale.ID)
	time.Sleep(2 * shortLease)
	other := enqueue(t, q, queue.Job{Queue: name, Type: "t", Priority: 9})
	next, err := ad.AckAndDequeue(ctx, stale, []byte("late"), longLease)
	require.ErrorIs(t, err, queue.ErrLeaseLost)
	require.Nil(t, next)
	require.Equal(t, queue.StateReady, status(t, q, other).State, "a refused ack leased a job")
	require.NotEqual(t, queue.StateDone, status(t, q, id).State, "an expired delivery acked its job")
	require.Empty(t, status(t, q, id).Result)
}

// testAckDequeueRace runs workers that settle with AckAndDequeue (falling
// back to Dequeue when it leases nothing) against producers: every job is
// delivered once and acked once, none lost between the ack of one job and
// the lease of the next.
func testAckDequeueRace(t *testing.T, q queue.JobQueue, name string) {
	ad := ackDequeuer(t, q)
	manyWorkers(t, q, name, func(ctx context.Context, d *queue.Delivery) (*queue.Delivery, error) {
		return ad.AckAndDequeue(ctx, d, d.Job.Payload, longLease)
	})
}
