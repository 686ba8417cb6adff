package pgqueue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/scaleout/scaleout/queue"
)

// A delivery is current while its job is active under its token and the
// lease has not run out, by the database's clock.
const current = `queue = $1 AND name = $2 AND token = $3 AND state = 1 AND lease_until > clock_timestamp()`

// notifyEnded wakes the Waits on the ended jobs of CTE e that have one;
// notifyLimited wakes the Dequeues of a queue under a concurrency limit,
// as a slot freed.
const (
	notifyEnded   = `(SELECT count(pg_notify($CH_ENDED, e.queue || '~' || e.name)) FROM e WHERE e.awaited)`
	notifyLimited = `(SELECT count(pg_notify($CH_READY, e.queue)) FROM e JOIN {p}queues qq ON qq.queue = e.queue WHERE qq.concurrency > 0)`
)

// failSQL records a failed attempt: a retry after $5 ms, or death when
// $4 (permanent) or the attempts are spent. {lease} is the condition on
// the lease: current for Fail, run out for an expired lease.
const failSQL = `WITH e AS (
	UPDATE {p}jobs SET
		state = CASE WHEN $4 OR attempt >= max_attempts THEN 3 ELSE 0 END,
		run_at = clock_timestamp() + $5::bigint * interval '1 millisecond',
		last_err = $6, lease_until = NULL,
		ended_at = CASE WHEN $4 OR attempt >= max_attempts THEN clock_timestamp() END,
		expires_at = CASE WHEN $4 OR attempt >= max_attempts THEN clock_timestamp() + retention_ms * interval '1 millisecond' END
	WHERE queue = $1 AND name = $2 AND token = $3 AND state = 1 AND {lease}
	RETURNING queue, name, state, awaited, unique_key, run_at <= clock_timestamp() AS ready),
u AS (DELETE FROM {p}uniq x USING e WHERE e.state = 3 AND x.queue = e.queue AND x.key = e.unique_key AND x.name = e.name)
SELECT (SELECT count(pg_notify($CH_ENDED, e.queue || '~' || e.name)) FROM e WHERE e.awaited AND e.state = 3)
	+ (SELECT count(pg_notify($CH_READY, e.queue)) FROM e WHERE e.state = 0 AND e.ready)
	+ ` + notifyLimited + ` FROM e`

const extendSQL = `UPDATE {p}jobs SET lease_until = clock_timestamp() + $4::bigint * interval '1 millisecond' WHERE ` + current + ` RETURNING 1`

// snoozeSQL gives a leased job back without counting the attempt
// (Release: no delay), ready $4 µs from now: then it is scheduled
// (state 0, run_at ahead), as a retry's backoff is. It notifies the
// queue's Dequeues whatever the delay: a blocked one reckoned its sleep
// without this job and must look again to wait for its run_at (and a
// slot may have freed under a concurrency limit).
const snoozeSQL = `WITH e AS (
	UPDATE {p}jobs SET state = 0, attempt = attempt - 1,
		run_at = clock_timestamp() + $4::bigint * interval '1 microsecond', lease_until = NULL
	WHERE ` + current + ` RETURNING queue)
SELECT count(pg_notify($5, e.queue)) FROM e HAVING count(*) > 0`

// channels fills in the channel parameters of a statement: $CH_ENDED and
// $CH_READY become the parameters after the statement's own.
func channels(s string, ended, ready int) string {
	s = replaceAll(s, "$CH_ENDED", fmt.Sprintf("$%d", ended))
	return replaceAll(s, "$CH_READY", fmt.Sprintf("$%d", ready))
}

// settling checks a Settler call's Queue and delivery: ErrClosed, or
// ErrLeaseLost for a nil delivery (no job is its).
func (q *Queue) settling(d *queue.Delivery) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	if d == nil {
		return fmt.Errorf("%w: nil delivery", queue.ErrLeaseLost)
	}
	return nil
}

// ackManySQL ends the jobs of arrays $1 (queues), $2 (names), $3 (tokens)
// and $4 (results) that are current under their tokens as done, frees
// their unique keys, counts them in the totals (shard $5), wakes their
// Waits and the Dequeues of their queues under a concurrency limit, and
// returns the ones it acked: the CTEs of ackManyCTEs, which AckThen and
// AckAndDequeue share, and their answer. One Ack is a batch of one.
const ackManySQL = ackManyCTEs + `
SELECT e.queue, e.name, ` + notifyEnded + ` + ` + notifyLimited + ` FROM e`

// ackManyCTEs ack the jobs of arrays $1 to $4 (e: the ones acked).
const ackManyCTEs = `WITH a AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[]) AS a(queue, name, token, result)),
e AS (
	UPDATE {p}jobs j SET state = 2, result = a.result, lease_until = NULL, ended_at = clock_timestamp(),
		expires_at = clock_timestamp() + j.retention_ms * interval '1 millisecond'
	FROM a
	WHERE j.queue = a.queue AND j.name = a.name AND j.token = a.token AND j.state = 1 AND j.lease_until > clock_timestamp()
	RETURNING j.queue, j.name, j.awaited, j.unique_key),
u AS (DELETE FROM {p}uniq x USING e WHERE x.queue = e.queue AND x.key = e.unique_key AND x.name = e.name),
t AS (INSERT INTO {p}totals AS t (queue, shard, done) SELECT e.queue, $5, count(*) FROM e GROUP BY e.queue
	ON CONFLICT (queue, shard) DO UPDATE SET done = t.done + EXCLUDED.done)`

// An ackReq is one Ack of a batch (see combiner).
type ackReq struct {
	queue, name string
	token       int64
	result      []byte
}

// ackRes answers an ackReq: acked, or alone (the batch held another Ack of
// the job: the caller acks by itself, and learns its fate).
type ackRes struct{ acked, alone bool }

// Ack ends the delivery's job successfully; see queue.Settler. The Acks
// of this process that come while one is in flight run as one statement
// (see combiner).
func (q *Queue) Ack(ctx context.Context, d *queue.Delivery, result []byte) error {
	if err := q.settling(d); err != nil {
		return err
	}
	ctx = q.ctx(ctx)
	req := ackReq{d.Job.Queue, d.Job.ID, int64(d.Token), result}
	r, err := q.acks.do(ctx, struct{}{}, req, func(reqs []ackReq) ([]ackRes, error) {
		if len(reqs) == 1 {
			acked, err := q.ackOne(ctx, q.db, reqs[0])
			return []ackRes{{acked: acked}}, err
		}
		// The batch answers callers other than this one: their contexts
		// do not end with this caller's.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
		defer cancel()
		return q.ackMany(bctx, q.db, reqs)
	})
	if err == nil && r.alone {
		r.acked, err = q.ackOne(ctx, q.db, req)
	}
	if err != nil {
		return err
	}
	if !r.acked {
		return queue.ErrLeaseLost
	}
	return nil
}

// ackOne acks one job through qr, the DB or a transaction.
func (q *Queue) ackOne(ctx context.Context, qr querier, r ackReq) (bool, error) {
	out, err := q.ackMany(ctx, qr, []ackReq{r})
	if err != nil {
		return false, err
	}
	return out[0].acked, nil
}

// A querier runs a statement that returns rows: the DB, or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// A jobKey names a job.
type jobKey struct{ queue, name string }

// An ackBatch is the parameters of ackManyCTEs for a batch of Acks: one
// element per job, and where each job's Ack sits in the batch. A second
// Ack of a job (one delivery acked twice at once, or two deliveries of
// it) cannot share the statement: dup marks it, to be answered alone.
type ackBatch struct {
	at            map[jobKey]int
	dup           []bool
	queues, names []string
	tokens        []int64
	results       [][]byte
}

func newAckBatch(reqs []ackReq) *ackBatch {
	b := &ackBatch{at: make(map[jobKey]int, len(reqs)), dup: make([]bool, len(reqs))}
	for i, r := range reqs {
		k := jobKey{r.queue, r.name}
		if _, dup := b.at[k]; dup {
			b.dup[i] = true
			continue
		}
		b.at[k] = i
		b.queues, b.names = append(b.queues, r.queue), append(b.names, r.name)
		b.tokens, b.results = append(b.tokens, r.token), append(b.results, r.result)
	}
	return b
}

// args are the statement's parameters $1 to $7, then more.
func (b *ackBatch) args(q *Queue, more ...any) []any {
	return append([]any{b.queues, b.names, b.tokens, b.results,
		rand.IntN(totalShards), q.endedChan, q.readyChan}, more...)
}

// ackMany acks the jobs of reqs in one statement through qr; the second
// Ack of a job in reqs is answered alone.
func (q *Queue) ackMany(ctx context.Context, qr querier, reqs []ackReq) ([]ackRes, error) {
	b := newAckBatch(reqs)
	out := make([]ackRes, len(reqs))
	for i, dup := range b.dup {
		out[i].alone = dup
	}
	rows, err := qr.QueryContext(ctx, q.ackManySQL, b.args(q)...)
	if err != nil {
		return nil, dbErr(ctx, "ack", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k jobKey
		var n int64
		if err := rows.Scan(&k.queue, &k.name, &n); err != nil {
			return nil, dbErr(ctx, "ack", err)
		}
		if i, ok := b.at[k]; ok {
			out[i].acked = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, "ack", err)
	}
	return out, nil
}

// Fail records a failed attempt; see queue.Settler.
func (q *Queue) Fail(ctx context.Context, d *queue.Delivery, cause error) error {
	if err := q.settling(d); err != nil {
		return err
	}
	ctx = q.ctx(ctx)
	msg := "failed"
	if cause != nil {
		msg = cause.Error()
	}
	ok, err := q.fail(ctx, d.Job.Queue, d.Job.ID, int64(d.Token), d.Attempt, errors.Is(cause, queue.ErrPermanent), msg, false)
	if err != nil {
		return err
	}
	if !ok {
		return queue.ErrLeaseLost
	}
	return nil
}

// fail records a failed attempt of the delivery with token: by its worker,
// or because its lease expired.
func (q *Queue) fail(ctx context.Context, qn, name string, token int64, attempt int, permanent bool, msg string, expired bool) (bool, error) {
	s := q.failCurrentSQL
	if expired {
		s = q.failExpiredSQL
	}
	var n int64
	err := q.db.QueryRowContext(ctx, s, qn, name, token, permanent, ms(max(q.backoff(attempt), 0)), msg,
		q.endedChan, q.readyChan).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, dbErr(ctx, "fail", err)
	}
	return true, nil
}

// Extend renews the lease; see queue.Settler.
func (q *Queue) Extend(ctx context.Context, d *queue.Delivery, lease time.Duration) error {
	if err := q.settling(d); err != nil {
		return err
	}
	if lease <= 0 {
		return fmt.Errorf("%w: pgqueue: Extend needs a positive lease", queue.ErrInvalidConfig)
	}
	ctx = q.ctx(ctx)
	var one int
	err := q.db.QueryRowContext(ctx, q.extendSQL, d.Job.Queue, d.Job.ID, int64(d.Token), ms(lease)).Scan(&one)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return dbErr(ctx, "extend", err)
	}
	var state int
	err = q.db.QueryRowContext(ctx, q.sql(`SELECT state FROM {p}jobs WHERE queue = $1 AND name = $2 AND token = $3`),
		d.Job.Queue, d.Job.ID, int64(d.Token)).Scan(&state)
	if err == nil && state == stateCanceled {
		return queue.ErrCanceled
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return dbErr(ctx, "extend", err)
	}
	return queue.ErrLeaseLost
}

// Release gives the job back without counting the attempt; see
// queue.Settler.
func (q *Queue) Release(ctx context.Context, d *queue.Delivery) error {
	if err := q.settling(d); err != nil {
		return err
	}
	return q.release(q.ctx(ctx), d)
}

// release gives the job back, ready at once: a snooze of no delay.
func (q *Queue) release(ctx context.Context, d *queue.Delivery) error {
	return q.snooze(ctx, "release", d, 0)
}

// Snooze gives the job back to run delay from now, by the database's
// clock, without counting the attempt, in one statement as Release; see
// queue.Snoozer.
func (q *Queue) Snooze(ctx context.Context, d *queue.Delivery, delay time.Duration) error {
	if err := q.settling(d); err != nil {
		return err
	}
	if delay < 0 {
		return fmt.Errorf("%w: pgqueue: Snooze needs a delay >= 0, got %v", queue.ErrInvalidConfig, delay)
	}
	return q.snooze(q.ctx(ctx), "snooze", d, delay)
}

func (q *Queue) snooze(ctx context.Context, op string, d *queue.Delivery, delay time.Duration) error {
	// Rounded up to PostgreSQL's microseconds, so that the job is never
	// due before delay has passed.
	delay = min(delay, queue.MaxSnooze)
	us := int64((delay + time.Microsecond - 1) / time.Microsecond)
	var n int64
	err := q.db.QueryRowContext(ctx, q.snoozeSQL, d.Job.Queue, d.Job.ID, int64(d.Token), us, q.readyChan).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return queue.ErrLeaseLost
	}
	if err != nil {
		return dbErr(ctx, op, err)
	}
	return nil
}
