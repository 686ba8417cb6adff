package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

// The dashboard's queue depth is the queue's own count of its jobs not
// yet ended: ready, scheduled and running, not done, dead or canceled,
// whoever enqueued and ran them.
func TestQueueDepthIsExact(t *testing.T) {
	q, err := queue.NewMemory(queue.MemoryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	ctx := t.Context()
	enq := func(j queue.Job) queue.JobID {
		id, err := q.Enqueue(ctx, j)
		require.NoError(t, err)
		return id
	}
	take := func() *queue.Delivery {
		d, err := q.Dequeue(ctx, []string{queue.DefaultQueue}, time.Minute)
		require.NoError(t, err)
		return d
	}
	for range 2 {
		enq(queue.Job{Type: "report"})
		require.NoError(t, take().Ack(ctx, nil)) // done
	}
	enq(queue.Job{Type: "report", MaxAttempts: 1})
	require.NoError(t, take().Fail(ctx, queue.Permanent(context.Canceled))) // dead
	require.NoError(t, q.Cancel(ctx, enq(queue.Job{Type: "report"})))       // canceled
	enq(queue.Job{Type: "report"})
	_ = take() // running
	enq(queue.Job{Type: "report", RunAt: time.Now().Add(time.Hour)})
	enq(queue.Job{Type: "report"})
	enq(queue.Job{Type: "report", Queue: "other"}) // not the farm's queue

	depth, err := queueDepth(ctx, q)
	require.NoError(t, err)
	require.EqualValues(t, 3, depth, "one running, one scheduled, one ready")

	_, err = queueDepth(ctx, struct{ queue.JobQueue }{q})
	require.Error(t, err, "a queue without an Inspector")
}
