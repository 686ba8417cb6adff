package pgqueue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
)

// Cleaning keeps up with a queue that ends more jobs a second than one
// clean deletes: a clean that deleted a whole batch (1,000) runs again
// at the next call, not a second later. Once a second, a process ending
// 5,000 short-lived jobs a second kept ever more of them.
func TestCleanKeepsUp(t *testing.T) {
	db := testenv.PostgresDB(t, testenv.PGPrimaryDSN(t))
	prefix := testPrefix(t, db)
	q := newQueue(t, db, prefix, pgqueue.Config{}, true)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	const ended = 3500
	jobs := make([]queue.Job, ended)
	for i := range jobs {
		jobs[i] = queue.Job{Queue: "done", Type: "x", Retention: time.Millisecond}
	}
	_, err := q.EnqueueBatch(ctx, jobs)
	require.NoError(t, err)
	// As Ack leaves them, their Retention over (set here in one statement
	// rather than 3,500 leases and acks).
	_, err = db.ExecContext(ctx, "UPDATE "+prefix+"jobs SET state = 2, ended_at = now(), expires_at = now() - interval '1 second'")
	require.NoError(t, err)

	// Each Dequeue of an empty queue cleans when a clean is due and none
	// is in flight: eight calls over 2.4 s, where cleaning once a second
	// deleted at most 3,000.
	left := -1
	for range 8 {
		dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := q.Dequeue(dctx, []string{"empty"}, time.Minute)
		dcancel()
		require.True(t, errors.Is(err, context.DeadlineExceeded), "Dequeue of an empty queue: %v", err)
		require.NoError(t, db.QueryRowContext(ctx, "SELECT count(*) FROM "+prefix+"jobs").Scan(&left))
		if left == 0 {
			break
		}
	}
	require.Zero(t, left, "jobs past their Retention left after eight Dequeues")
}
