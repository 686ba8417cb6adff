package redisqueue

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
)

// The Dequeue records, step by step: a run again of a call answers its
// delivery; a give-back makes the job ready with its attempt uncounted;
// and a call given back before its script reached Redis (a request
// overtaken by the call's failure) leases nothing when it arrives.
func TestDequeueRecords(t *testing.T) {
	rdb := testenv.RedisClient(t)
	q, err := New(rdb, Config{Prefix: testenv.Prefix(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	ctx := t.Context()
	const qn = "rec"
	k := q.keys(qn)
	bo := q.backoffs()
	a, err := q.Enqueue(ctx, queue.Job{Queue: qn, Type: "x"})
	require.NoError(t, err)
	b, err := q.Enqueue(ctx, queue.Job{Queue: qn, Type: "x"})
	require.NoError(t, err)

	// A run again answers the same delivery.
	d1, _, err := q.take(ctx, qn, k, time.Minute, bo, "n1")
	require.NoError(t, err)
	require.Equal(t, a, d1.ID)
	again, _, err := q.take(ctx, qn, k, time.Minute, bo, "n1")
	require.NoError(t, err)
	require.NotNil(t, again, "a run again of the call leased nothing")
	require.Equal(t, d1.ID, again.ID, "a run again of the call leased another job")
	require.Equal(t, d1.Token, again.Token)
	require.Equal(t, d1.Attempt, again.Attempt)

	// The give-back makes it ready, at the head, its attempt uncounted.
	q.runGiveBack(k, "n1")
	info, err := q.Status(ctx, a)
	require.NoError(t, err)
	require.Equal(t, queue.StateReady, info.State)
	require.Zero(t, info.Attempt)
	require.ErrorIs(t, d1.Ack(ctx, nil), queue.ErrLeaseLost, "the given-back delivery is not current")

	// A late run of the given-back call leases nothing.
	late, _, err := q.take(ctx, qn, k, time.Minute, bo, "n1")
	require.NoError(t, err)
	require.Nil(t, late, "a call given back leased a job when its script arrived")

	// A give-back before the script arrives leaves a tombstone.
	q.runGiveBack(k, "n2")
	late, _, err = q.take(ctx, qn, k, time.Minute, bo, "n2")
	require.NoError(t, err)
	require.Nil(t, late, "a call given back leased a job when its script arrived")

	d, _, err := q.take(ctx, qn, k, time.Minute, bo, "n3")
	require.NoError(t, err)
	require.Equal(t, a, d.ID, "the given-back job is first again")
	require.Equal(t, 1, d.Attempt)
	require.Greater(t, d.Token, d1.Token)
	require.NoError(t, d.Ack(ctx, nil))
	q.runGiveBack(k, "n3") // after the Ack: nothing to give back
	info, err = q.Status(ctx, a)
	require.NoError(t, err)
	require.Equal(t, queue.StateDone, info.State)
	n, err := rdb.Exists(ctx, k.base+"dq:n3").Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the tombstone")

	d, _, err = q.take(ctx, qn, k, time.Minute, bo, "n4")
	require.NoError(t, err)
	require.Equal(t, b, d.ID)
	require.NoError(t, d.Ack(ctx, nil))
	n, err = rdb.Exists(ctx, k.base+"dq:n4").Result()
	require.NoError(t, err)
	require.Zero(t, n, "the Ack deletes the call's record")
}
