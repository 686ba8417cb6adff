package pgqueue_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
)

// TestEnqueuedMetric checks scaleout.queue.enqueued on PostgreSQL: every
// way of enqueueing counts the jobs it stored, by queue, and not an
// Enqueue answered by the job already stored under its ID, a duplicate
// unique key, or a batch's retry.
func TestEnqueuedMetric(t *testing.T) {
	db := testenv.PostgresDB(t, testenv.PGPrimaryDSN(t))
	rec := observe.NewRecorder()
	q := newQueue(t, db, testPrefix(t, db), pgqueue.Config{Meter: rec}, true)
	ctx := ctxFor(t, 30*time.Second)
	enqueued := func(qn string) float64 { return rec.Value("scaleout.queue.enqueued", "queue", qn) }

	_, err := q.Enqueue(ctx, queue.Job{Queue: "a", Type: "t"}) // an ID the queue chose
	require.NoError(t, err)
	_, err = q.Enqueue(ctx, queue.Job{Queue: "a", Type: "t", ID: "x"})
	require.NoError(t, err)
	_, err = q.Enqueue(ctx, queue.Job{Queue: "a", Type: "t", ID: "x"}) // a retry
	require.NoError(t, err)
	_, err = q.Enqueue(ctx, queue.Job{Queue: "a", Type: "t", UniqueKey: "k", UniqueFor: time.Hour})
	require.NoError(t, err)
	_, err = q.Enqueue(ctx, queue.Job{Queue: "a", Type: "t", UniqueKey: "k", UniqueFor: time.Hour})
	require.ErrorIs(t, err, queue.ErrDuplicate)
	require.Equal(t, 3.0, enqueued("a"))

	batch := []queue.Job{{Queue: "a", Type: "t", ID: "x"}, {Queue: "b", Type: "t", ID: "y"}, {Queue: "b", Type: "t"}}
	_, err = q.EnqueueBatch(ctx, batch)
	require.NoError(t, err)
	_, err = q.EnqueueBatch(ctx, batch[:2]) // a retry of the batch
	require.NoError(t, err)
	require.Equal(t, 3.0, enqueued("a"))
	require.Equal(t, 2.0, enqueued("b"))

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = q.EnqueueTx(ctx, tx, queue.Job{Queue: "b", Type: "t"})
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.Equal(t, 3.0, enqueued("b"))
}
