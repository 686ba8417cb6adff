package pgqueue_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
	"github.com/scaleout/scaleout/replica"
)

// TestEnqueueTx: a job enqueued in a transaction exists if and only if the
// transaction commits, with *sql.Tx and with a pgx transaction; a Dequeue
// blocked meanwhile sees nothing until the commit, and then the one job.
func TestEnqueueTx(t *testing.T) {
	dsn := testenv.PGPrimaryDSN(t)
	db := testenv.PostgresDB(t, dsn)
	q := newQueue(t, db, testPrefix(t, db), pgqueue.Config{}, true)
	ctx := t.Context()
	pc, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close(t.Context()) })

	enqueueIn := map[string]func(commit bool, j queue.Job) (queue.JobID, error){
		"sql": func(commit bool, j queue.Job) (queue.JobID, error) {
			tx, err := db.BeginTx(ctx, nil)
			require.NoError(t, err)
			id, err := q.EnqueueTx(ctx, tx, j)
			if commit {
				require.NoError(t, tx.Commit())
			} else {
				require.NoError(t, tx.Rollback())
			}
			return id, err
		},
		"pgx": func(commit bool, j queue.Job) (queue.JobID, error) {
			tx, err := pc.Begin(ctx)
			require.NoError(t, err)
			id, err := q.EnqueuePgxTx(ctx, tx, j)
			if commit {
				require.NoError(t, tx.Commit(ctx))
			} else {
				require.NoError(t, tx.Rollback(ctx))
			}
			return id, err
		},
	}
	for name, enqueue := range enqueueIn {
		t.Run(name, func(t *testing.T) {
			qn := "tx-" + name
			for _, j := range []queue.Job{
				{Queue: qn, Type: "invoice"},
				{Queue: qn, Type: "invoice", ID: "order-1-" + name},
				{Queue: qn, Type: "invoice", UniqueKey: "order-2", UniqueFor: time.Hour},
			} {
				// Rolled back: no job, and the ID and key stay free.
				id, err := enqueue(false, j)
				require.NoError(t, err)
				_, err = q.Status(ctx, id)
				require.ErrorIs(t, err, queue.ErrNotFound, "a rolled-back job exists")

				// Committed: exactly one job, delivered once.
				got := make(chan *queue.Delivery, 1)
				go func() {
					d, err := q.Dequeue(ctxFor(t, 5*time.Second), []string{qn}, time.Minute)
					if err != nil {
						t.Errorf("Dequeue: %v", err)
					}
					got <- d
				}()
				time.Sleep(50 * time.Millisecond)
				id, err = enqueue(true, j)
				require.NoError(t, err)
				start := time.Now()
				d := <-got
				require.NotNil(t, d)
				require.Equal(t, id, d.ID)
				latency := time.Since(start)
				require.Less(t, latency, 500*time.Millisecond, "the commit's notification did not wake Dequeue (poll is 1 s)")
				t.Logf("%s: commit to delivery %v", name, latency)
				require.NoError(t, d.Ack(ctx, nil))
				_, err = q.Dequeue(ctxFor(t, 200*time.Millisecond), []string{qn}, time.Minute)
				require.ErrorIs(t, err, context.DeadlineExceeded, "a second job after one committed Enqueue")
			}
		})
	}

	// A held unique key is ErrDuplicate without aborting the transaction.
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	j := queue.Job{Queue: "tx-u", Type: "t", UniqueKey: "k", UniqueFor: time.Hour}
	first, err := q.EnqueueTx(ctx, tx, j)
	require.NoError(t, err)
	again, err := q.EnqueueTx(ctx, tx, j)
	require.ErrorIs(t, err, queue.ErrDuplicate)
	require.Equal(t, first, again)
	_, err = tx.ExecContext(ctx, "SELECT 1")
	require.NoError(t, err, "the transaction still works")
	require.NoError(t, tx.Commit())
	require.Equal(t, queue.StateReady, status(t, q, first).State)
}

// TestThroughReplica: a Queue on a replica.DB works on the primary (its
// statements, including the SELECTs, go there: a standby would refuse the
// writes and lag behind on the reads).
func TestThroughReplica(t *testing.T) {
	primary := testenv.PostgresDB(t, testenv.PGPrimaryDSN(t))
	standby := testenv.PostgresDB(t, testenv.PGReplicaDSN(t))
	r, err := replica.New(replica.Config{Probe: new(replica.PostgreSQL)},
		replica.Node{Name: "primary", DB: primary}, replica.Node{Name: "standby", DB: standby})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	q := newQueue(t, r.DB(), testPrefix(t, primary), pgqueue.Config{}, true)
	ctx := t.Context()
	for range 20 {
		id, err := q.Enqueue(ctx, queue.Job{Queue: "r", Type: "t"})
		require.NoError(t, err)
		require.Equal(t, queue.StateReady, status(t, q, id).State, "Status reads its own write")
		waited := make(chan queue.JobInfo, 1)
		go func() {
			in, err := q.Wait(ctxFor(t, 5*time.Second), id)
			if err != nil {
				t.Errorf("Wait: %v", err)
			}
			waited <- in
		}()
		d, err := q.Dequeue(ctxFor(t, 5*time.Second), []string{"r"}, time.Minute)
		require.NoError(t, err)
		require.Equal(t, id, d.ID)
		require.NoError(t, d.Ack(ctx, []byte("ok")))
		require.Equal(t, queue.StateDone, (<-waited).State)
	}
}
