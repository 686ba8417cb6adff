package pgqueue

import (
	"context"
	"fmt"
	"time"

	"github.com/scaleout/scaleout/queue"
)

// ackLeaseSQL acks the jobs of arrays $1 to $4 as ackManySQL does and, in
// the same statement, leases as many ready jobs of queue $8 for $9 ms as
// it acked, as leaseManySQL does (nothing from a queue with limits or a
// pause): a row per leased job (true, then the columns of a leaseRow),
// then a row per acked job (false, its name, and the notifications'
// count where a leaseRow has its wait). Both parts read one snapshot: the
// jobs acked are active, those leased were ready, so no row is both.
var ackLeaseSQL = ackManyCTEs + `,
l AS (` + leaseManySQLBody + `)
SELECT true, l.* FROM l
UNION ALL
SELECT false, e.name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	` + notifyEnded + ` + ` + notifyLimited + ` FROM e`

// leaseManySQLBody is leaseManySQL leasing one job per acked one.
var leaseManySQLBody = leaseManyWith("$8", "$9", "(SELECT count(*) FROM e)")

// AckAndDequeue acknowledges d as Ack does and, in the same statement
// (one round trip, one commit), leases the best ready job of d's queue as
// Dequeue would, without blocking: the next delivery, or nil when the
// queue has none ready, or has Limits or is paused (Dequeue applies
// those). When the Ack is refused (queue.ErrLeaseLost) nothing is leased.
// queue.Worker uses it when it takes jobs from one queue; the calls of
// this process that come while two are in flight for the queue run as
// one statement (see combiner), so a busy queue acks and leases dozens of
// jobs per commit. A call waiting for its batch honours ctx; once its
// statement runs, the statement's bound applies (10 s), and a job leased
// for a caller whose ctx ended meanwhile is still returned to it, never
// dropped. When the reply is lost after the commit (a broken connection),
// the call fails, its Ack happened, and the job leased for it waits for
// its lease to run out and is retried, the attempt counted: at least once,
// as for a Dequeue whose reply is lost.
//
// Since a Worker busy with AckAndDequeue calls Dequeue only when the
// queue runs dry, AckAndDequeue also turns expired leases into retries
// and deletes jobs past their Retention, as Dequeue does, at most once a
// second per process.
func (q *Queue) AckAndDequeue(ctx context.Context, d *queue.Delivery, result []byte, lease time.Duration) (*queue.Delivery, error) {
	if err := q.settling(d); err != nil {
		return nil, err
	}
	if lease < time.Millisecond {
		return nil, fmt.Errorf("%w: pgqueue: AckAndDequeue needs a lease of at least 1ms", queue.ErrInvalidConfig)
	}
	ctx = q.ctx(ctx)
	qn := d.Job.Queue
	if q.sweepDue() {
		// Housekeeping: a failure is left to the next time.
		_, _ = q.sweep(ctx, []string{qn})
	}
	q.maybeClean(ctx)
	req := ackReq{qn, d.Job.ID, int64(d.Token), result}
	r, err := q.ackLeases.do(ctx, leaseKey{qn, lease}, req, func(reqs []ackReq) ([]ackLeased, error) {
		// The statement runs to its end whatever becomes of the callers,
		// so that no job it leases is left to its lease's expiry.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
		defer cancel()
		return q.ackLease(sctx, qn, lease, reqs)
	})
	if err != nil {
		return nil, err
	}
	if r.alone {
		return nil, q.Ack(ctx, d, result)
	}
	if !r.acked {
		return nil, fmt.Errorf("%w: %s token %d", queue.ErrLeaseLost, d.ID, d.Token)
	}
	return r.next, nil
}

// ackLeased answers an AckAndDequeue of a batch: acked or not, the job
// leased for it (if any), or alone (the batch held another Ack of the
// job: the caller acks by itself, and leases nothing).
type ackLeased struct {
	next         *queue.Delivery
	acked, alone bool
}

// ackLease acks the jobs of reqs, all of queue qn, and leases as many
// jobs as it acked, in one statement; the leased jobs go to the acked
// callers in order.
func (q *Queue) ackLease(ctx context.Context, qn string, lease time.Duration, reqs []ackReq) ([]ackLeased, error) {
	b := newAckBatch(reqs)
	out := make([]ackLeased, len(reqs))
	for i, dup := range b.dup {
		out[i].alone = dup
	}
	start := time.Now()
	rows, err := q.db.QueryContext(ctx, q.ackLeaseSQL, b.args(q, qn, ms(lease))...)
	if err != nil {
		return nil, dbErr(ctx, "ack", err)
	}
	defer rows.Close()
	var next []*queue.Delivery
	for rows.Next() {
		var leased bool
		var r leaseRow
		if err := rows.Scan(append([]any{&leased}, r.fields()...)...); err != nil {
			return nil, dbErr(ctx, "ack", err)
		}
		if !leased {
			if i, ok := b.at[jobKey{qn, r.name.String}]; ok {
				out[i].acked = true
			}
			continue
		}
		if d, _, err := q.delivery(&r, qn, lease, start); err == nil {
			next = append(next, d)
		} // else leased but unreadable: the lease runs out and the job is delivered again
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, "ack", err)
	}
	for i := range out {
		if out[i].acked && len(next) > 0 {
			out[i].next, next = next[0], next[1:]
		}
	}
	return out, nil
}
