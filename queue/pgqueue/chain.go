package pgqueue

import (
	"context"
	"fmt"

	"github.com/scaleout/scaleout/queue"
)

var _ queue.Chainer = (*Queue)(nil)

// AckThen implements queue.Chainer in one transaction on one connection:
// Ack's statement, which finds the delivery current or changes nothing,
// then the next jobs' inserts in one statement (EnqueueBatch's), then
// COMMIT. A next job refused (its ID held by another job, its unique key
// by another job than the acked one, whose key the ack frees first) rolls
// the whole transaction back, the ack with it. Next jobs may be in any
// queue of the Queue's tables. Notifications (the job's end, ready next
// jobs) go out at the commit, so a rolled-back step wakes nobody.
//
// A COMMIT whose reply is lost leaves the outcome unknown, as for any
// call: the step happened whole or not at all, and a call again answers
// queue.ErrLeaseLost if it happened (its next jobs then exist once), or
// does it.
func (q *Queue) AckThen(ctx context.Context, d *queue.Delivery, result []byte, next []queue.Job) ([]queue.JobID, error) {
	if err := q.settling(d); err != nil {
		return nil, err
	}
	if len(next) == 0 {
		return nil, q.Ack(ctx, d, result)
	}
	jobs, ids, err := queue.PrepareChain(next, q.maxPayload)
	if err != nil {
		return nil, err
	}
	ctx = q.ctx(ctx)
	stored, err := q.ackThen(ctx, d, result, jobs)
	if err != nil {
		return nil, err
	}
	for i, ok := range stored {
		if ok {
			q.enqueued.Get(jobs[i].Queue).Inc()
		}
	}
	return ids, nil
}

// ackThen runs AckThen's transaction; stored reports, by next job, the
// ones it stored (not already there under their ID).
func (q *Queue) ackThen(ctx context.Context, d *queue.Delivery, result []byte, jobs []queue.Job) (stored []bool, err error) {
	conn, err := q.db.Conn(ctx)
	if err != nil {
		return nil, dbErr(ctx, "ack then", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, dbErr(ctx, "ack then", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	acked, err := q.ackOne(ctx, tx, ackReq{d.Job.Queue, d.Job.ID, int64(d.Token), result})
	if err != nil {
		return nil, err
	}
	if !acked {
		err = fmt.Errorf("%w: %s token %d", queue.ErrLeaseLost, d.ID, d.Token)
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, q.sql(batchSQL), append(batchArgs(jobs), q.readyChan)...)
	if err != nil {
		return nil, dbErr(ctx, "ack then", err)
	}
	stored = make([]bool, 0, len(jobs))
	var refused error
	for rows.Next() {
		var outcome int
		var name string
		if err = rows.Scan(&outcome, &name); err != nil {
			_ = rows.Close()
			return nil, dbErr(ctx, "ack then", err)
		}
		i := len(stored)
		if _, oerr := outcomeErr(jobs[i].Queue, outcome, name); oerr != nil && refused == nil {
			refused = fmt.Errorf("next job %d: %w", i, oerr)
		}
		stored = append(stored, outcome == outcomeStored)
	}
	if err = rows.Err(); err != nil {
		return nil, dbErr(ctx, "ack then", err)
	}
	if err = rows.Close(); err != nil {
		return nil, dbErr(ctx, "ack then", err)
	}
	if len(stored) != len(jobs) {
		err = fmt.Errorf("pgqueue: ack then: %d outcomes for %d next jobs", len(stored), len(jobs))
		return nil, err
	}
	if refused != nil {
		err = refused
		return nil, err
	}
	if err = tx.Commit(); err != nil {
		return nil, dbErr(ctx, "ack then: commit", err)
	}
	return stored, nil
}
