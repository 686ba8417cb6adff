package pgqueue_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
)

// AckAndDequeue's statement costs what its batch costs, not what the
// table holds: PostgreSQL plans it with no sequential scan of the jobs
// table, however many jobs wait or are kept done for their Retention.
// It leased the next jobs through a join the planner hashed, scanning the
// whole table for every batch: a drain of 50,000 jobs at concurrency 50
// ran at about 2,500 jobs/s, and at 8,000 to 14,500 without the scan.
func TestAckAndDequeuePlanHasNoTableScan(t *testing.T) {
	db := testenv.PostgresDB(t, testenv.PGPrimaryDSN(t))
	prefix := testPrefix(t, db)
	q := newQueue(t, db, prefix, pgqueue.Config{}, true)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	jobs := make([]queue.Job, 1000)
	for i := range jobs {
		jobs[i] = queue.Job{Queue: "plan", Type: "x"}
	}
	for range 10 {
		_, err := q.EnqueueBatch(ctx, jobs)
		require.NoError(t, err)
	}
	_, err := db.ExecContext(ctx, "ANALYZE "+prefix+"jobs")
	require.NoError(t, err)

	var ds []*queue.Delivery
	for range 25 {
		d, err := q.Dequeue(ctx, []string{"plan"}, time.Minute)
		require.NoError(t, err)
		ds = append(ds, d)
	}
	plan, err := pgqueue.ExplainAckAndDequeue(ctx, q, ds, time.Minute)
	require.NoError(t, err)
	require.NotRegexp(t, regexp.MustCompile(`Seq Scan on `+prefix+`jobs`), plan,
		"AckAndDequeue's statement scans the jobs table:\n%s", plan)
}
