package pgqueue

import (
	"context"
	"strings"
	"time"

	"github.com/scaleout/scaleout/queue"
)

// Batches reports how many lease, ack and ack-and-lease statements served
// more than one call, so that tests know the batched path ran.
func Batches(q *Queue) (leases, acks, ackLeases int64) {
	return q.leases.batches.Load(), q.acks.batches.Load(), q.ackLeases.batches.Load()
}

// ExplainAckAndDequeue returns PostgreSQL's plan of the statement
// AckAndDequeue would run for ds, all of one queue: EXPLAIN, which runs
// nothing.
func ExplainAckAndDequeue(ctx context.Context, q *Queue, ds []*queue.Delivery, lease time.Duration) (string, error) {
	reqs := make([]ackReq, len(ds))
	for i, d := range ds {
		reqs[i] = ackReq{d.Job.Queue, d.Job.ID, int64(d.Token), nil}
	}
	b := newAckBatch(reqs)
	rows, err := q.db.QueryContext(ctx, "EXPLAIN "+q.ackLeaseSQL, b.args(q, ds[0].Job.Queue, ms(lease))...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", err
		}
		plan.WriteString(line + "\n")
	}
	return plan.String(), rows.Err()
}
