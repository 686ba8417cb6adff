package redisqueue

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
)

// Close returns between an Enqueue's script call and its handing the call
// slot to the Enqueues waiting for one (the order a race can give): no
// sender may start after Close returned. The waiting job fails with
// ErrClosed and is not sent.
func TestCloseBeforeSlotHandedOn(t *testing.T) {
	rdb := testenv.RedisClient(t)
	q, err := New(rdb, Config{Prefix: testenv.Prefix(t)})
	require.NoError(t, err)
	j, id, err := queue.Prepare(queue.Job{Queue: "c", Type: "x"}, 0)
	require.NoError(t, err)
	waiting := &enqReq{ctx: t.Context(), job: j, id: id, now: time.Now().UnixMilli(), done: make(chan struct{})}
	g := &enqGroup{inflight: 1, pending: []*enqReq{waiting}}
	q.enqGroups["c"] = g

	require.NoError(t, q.Close())
	q.nextEnqueue("c", g) // the slot of the call that was in flight
	select {
	case <-waiting.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting Enqueue was never answered")
	}
	require.ErrorIs(t, waiting.err, queue.ErrClosed)
	n, err := rdb.Exists(t.Context(), q.keys("c").job(j.ID)).Result()
	require.NoError(t, err)
	require.Zero(t, n, "a job was sent to Redis after Close returned")
	require.Empty(t, q.enqGroups, "the slot was given back")
}
