package pgqueue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scaleout/scaleout/queue"
)

// Dequeue leases a ready job of the first of queues that has one its
// Limits allow; see queue.JobQueue. It blocks until a notification says a
// job may be ready, the next scheduled job or lease deadline of the queues
// comes, or PollInterval passes, whichever is first.
func (q *Queue) Dequeue(ctx context.Context, queues []string, lease time.Duration) (*queue.Delivery, error) {
	if err := q.checkOpen(); err != nil {
		return nil, err
	}
	if len(queues) == 0 || lease <= 0 {
		return nil, fmt.Errorf("%w: pgqueue: Dequeue needs queues and a positive lease", queue.ErrInvalidConfig)
	}
	for _, qn := range queues {
		if err := queue.CheckQueue(qn); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx = q.ctx(ctx)
	l := q.listener()
	if l == nil {
		return nil, queue.ErrClosed
	}
	w := l.addReady(queues)
	defer l.removeReady(queues, w)
	l.awaitUp(ctx)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	sweep := func(ctx context.Context) (int, error) { return q.sweep(ctx, queues) }
	for {
		if q.sweepDue() {
			if _, err := detach(ctx, q, sweep, nil); err != nil {
				return nil, err
			}
		}
		hint := time.Duration(-1)
		for _, qn := range queues {
			r, err := detach(ctx, q, func(ctx context.Context) (leased, error) {
				d, wait, err := q.lease(ctx, qn, lease)
				return leased{d: d, wait: wait}, err
			}, func(ctx context.Context, r leased) {
				if r.d != nil {
					// Leased for a caller who left: give it back.
					_ = q.release(ctx, r.d)
				}
			})
			if err != nil {
				return nil, err
			}
			if r.d != nil {
				return r.d, nil
			}
			if r.wait > 0 && (hint < 0 || r.wait < hint) {
				hint = r.wait
			}
		}
		q.maybeClean(ctx)
		due, err := detach(ctx, q, func(ctx context.Context) ([2]time.Duration, error) {
			sched, expiry, err := q.nextDue(ctx, queues)
			return [2]time.Duration{sched, expiry}, err
		}, nil)
		if err != nil {
			return nil, err
		}
		sched, expiry := due[0], due[1]
		if expiry >= 0 && expiry <= 0 {
			// A lease ran out: turn it into a retry, and look again.
			if n, err := detach(ctx, q, sweep, nil); err != nil {
				return nil, err
			} else if n > 0 {
				continue
			}
		}
		sleep := q.poll
		for _, d := range []time.Duration{sched, expiry, hint} {
			if d >= 0 && d < sleep {
				sleep = d
			}
		}
		sleep = max(sleep, time.Millisecond)
		if timer == nil {
			timer = time.NewTimer(sleep)
		} else {
			timer.Reset(sleep)
		}
		select {
		case <-w.ch:
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.closedCh:
			return nil, queue.ErrClosed
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// statementTimeout bounds a statement of Dequeue run on after its caller
// left (see detach).
const statementTimeout = 10 * time.Second

// cancelGrace is how long a Dequeue whose context ended waits for its
// statement in flight to finish (see detach): a few times a statement's
// usual time, well under a second.
const cancelGrace = 200 * time.Millisecond

// detach runs fn, one step of a Dequeue that ctx may end at any moment, on
// a context of its own (ctx's values, no cancellation, statementTimeout),
// and returns its result, or ctx's error when ctx ended first. A statement
// canceled midway costs its connection: the pgx driver closes it (and the
// server's backend runs on until it notices), so a worker whose Dequeues
// end often (a short poll deadline, a shutdown) would open a connection
// for each, and past max_connections every client of the server is
// refused ("too many clients"). So when ctx ends, detach waits up to
// cancelGrace for the statement to finish, and its connection goes back
// to the pool for the next call; if it did something the caller will now
// never see (a job leased), abandoned (when not nil) undoes it (releases
// the job, its attempt not counted) before detach returns. A statement
// still running after the grace (a hung server) is left to finish in the
// background, abandoned then called on its result; Close waits for it.
func detach[T any](ctx context.Context, q *Queue, fn func(context.Context) (T, error), abandoned func(context.Context, T)) (T, error) {
	var zero T
	if err := ended(ctx); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	var mu sync.Mutex
	left := false // the caller returned: the result is abandoned's
	if !q.track() {
		return zero, queue.ErrClosed
	}
	undo := func(v T) {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
		defer cancel()
		abandoned(actx, v)
	}
	go func() {
		defer q.inflight.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statementTimeout)
		v, err := fn(sctx)
		cancel()
		mu.Lock()
		gone := left
		if !gone {
			ch <- result{v, err}
		}
		mu.Unlock()
		if gone && err == nil && abandoned != nil {
			undo(v)
		}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		grace := time.NewTimer(cancelGrace)
		defer grace.Stop()
		select {
		case r = <-ch:
		case <-grace.C:
			mu.Lock()
			left = true
			mu.Unlock()
			select {
			case r = <-ch: // sent before left was set
			default:
				return zero, ctx.Err()
			}
		}
	}
	if cerr := ended(ctx); cerr != nil {
		if r.err == nil && abandoned != nil {
			undo(r.v) // done as ctx ended: the caller returns ctx's error
		}
		return zero, cerr
	}
	return r.v, r.err
}

// ended returns ctx's error, or context.DeadlineExceeded once its deadline
// has passed: a socket read or dial bounded by the deadline may fail (an
// i/o timeout) a moment before ctx's own timer fires.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// track registers a goroutine of the Queue for Close to wait on; false
// once the Queue is closed.
func (q *Queue) track() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	q.inflight.Add(1)
	return true
}

// leaseManySQL leases up to $3 ready jobs of queue $1 for $2 ms: the first
// statement of {p}lease with a larger LIMIT, for a queue without limits
// or a pause (checked in the same statement, as {p}lease does, so that a
// job enqueued after Pause returned is never leased by it). AckAndDequeue
// runs it with other parameters: $Q is the queue, $LEASE the lease, $N
// the limit. The jobs it locks are updated through the primary key by
// name: joined to the locking subquery instead, whose LIMIT the planner
// cannot know in AckAndDequeue, the update hashed the subquery's rows and
// scanned the whole table (done jobs kept for their Retention included)
// for every batch.
const leaseManySQL = `UPDATE {p}jobs j SET state = 1, attempt = j.attempt + 1, token = nextval('{p}tokens'),
	lease_until = clock_timestamp() + $LEASE * interval '1 millisecond',
	started_at = clock_timestamp()
WHERE j.queue = $Q AND j.name = ANY(ARRAY(SELECT c.name FROM {p}jobs c
	WHERE c.queue = $Q AND c.state = 0 AND c.run_at <= clock_timestamp()
	AND NOT EXISTS (SELECT 1 FROM {p}queues q WHERE q.queue = $Q
		AND (q.paused OR q.concurrency > 0 OR q.rate > 0))
	ORDER BY c.priority DESC, c.run_at, c.name
	LIMIT $N FOR UPDATE SKIP LOCKED))
RETURNING j.name, j.type, j.payload, j.headers, j.priority, j.attempt, j.max_attempts,
	j.token, j.timeout_ms, j.retention_ms, NULL::bigint`

// leaseManyWith fills in leaseManySQL's parameters.
func leaseManyWith(queue, lease, n string) string {
	return strings.NewReplacer("$Q", queue, "$LEASE", lease, "$N", n).Replace(leaseManySQL)
}

// leaseKey groups the leases one statement may serve: one queue, one
// lease time.
type leaseKey struct {
	queue string
	lease time.Duration
}

// leased is what a lease statement found: a delivery, or how long the
// queue's rate limit holds it back; alone asks the caller to run a lease
// of its own (its batch found no job, and the queue may be limited).
type leased struct {
	d     *queue.Delivery
	wait  time.Duration
	alone bool
}

// lease leases a job of queue qn, or says how long its rate limit holds it
// back (0 when that is not why nothing was leased). The leases of this
// process's Dequeues that come while one is in flight run as one
// statement (see combiner): each worker of a busy queue would otherwise
// take a statement and a commit for every job.
func (q *Queue) lease(ctx context.Context, qn string, lease time.Duration) (*queue.Delivery, time.Duration, error) {
	r, err := q.leases.do(ctx, leaseKey{qn, lease}, struct{}{}, func(reqs []struct{}) ([]leased, error) {
		if len(reqs) == 1 {
			d, wait, err := q.leaseOne(ctx, qn, lease)
			return []leased{{d: d, wait: wait}}, err
		}
		return q.leaseMany(ctx, qn, lease, len(reqs))
	})
	if err != nil || !r.alone {
		return r.d, r.wait, err
	}
	return q.leaseOne(ctx, qn, lease)
}

// leaseMany leases up to n jobs of a queue without limits for n callers;
// the callers it found no job for are told to look alone when it found
// none at all (the queue may have limits, which {p}lease applies), and
// that there is none when it found fewer than n (the queue has no more).
func (q *Queue) leaseMany(ctx context.Context, qn string, lease time.Duration, n int) ([]leased, error) {
	start := time.Now()
	rows, err := q.db.QueryContext(ctx, q.leaseManySQL, qn, ms(lease), n)
	if err != nil {
		return nil, dbErr(ctx, "dequeue", err)
	}
	out := make([]leased, n)
	k := 0
	var ferr error
	for rows.Next() {
		d, _, err := q.scanLease(rows, qn, lease, start)
		if err != nil {
			// Leased, but unreadable: the lease runs out and the job is
			// delivered again.
			ferr = err
			continue
		}
		if k < n {
			out[k].d = d
			k++
		}
	}
	if err := rows.Err(); err != nil && ferr == nil {
		ferr = dbErr(ctx, "dequeue", err)
	}
	rows.Close()
	if k == 0 && ferr != nil {
		return nil, ferr
	}
	if k == 0 {
		for i := range out {
			out[i].alone = true
		}
	}
	return out, nil
}

// leaseOne runs {p}lease on one queue: a delivery, or how long its rate
// limit holds it back (0 when that is not why nothing was leased).
func (q *Queue) leaseOne(ctx context.Context, qn string, lease time.Duration) (*queue.Delivery, time.Duration, error) {
	start := time.Now()
	d, wait, err := q.scanLease(q.db.QueryRowContext(ctx, q.leaseSQL, qn, ms(lease)), qn, lease, start)
	if err == sql.ErrNoRows {
		return nil, 0, nil
	}
	if err != nil && !errors.Is(err, errMalformed) {
		return nil, 0, dbErr(ctx, "dequeue", err)
	}
	return d, wait, err
}

// errMalformed marks a leased row that does not decode.
var errMalformed = errors.New("pgqueue: malformed job")

// A leaseRow is a row of {p}lease or leaseManySQL: a leased job, or (name
// NULL) how long a rate limit holds the queue back.
type leaseRow struct {
	name, typ                sql.NullString
	payload, headers         []byte
	prio                     sql.NullInt16
	attempt, maxAtt          sql.NullInt32
	token, tout, ret, waitMS sql.NullInt64
}

// fields are the row's columns, for Scan.
func (r *leaseRow) fields() []any {
	return []any{&r.name, &r.typ, &r.payload, &r.headers, &r.prio,
		&r.attempt, &r.maxAtt, &r.token, &r.tout, &r.ret, &r.waitMS}
}

// scanLease reads a row of {p}lease or leaseManySQL, leased at start for
// lease: a delivery, or a rate limit's wait.
func (q *Queue) scanLease(row interface{ Scan(...any) error }, qn string, lease time.Duration, start time.Time) (*queue.Delivery, time.Duration, error) {
	var r leaseRow
	if err := row.Scan(r.fields()...); err != nil {
		return nil, 0, err
	}
	return q.delivery(&r, qn, lease, start)
}

// delivery makes the delivery of a leaseRow of queue qn, leased at start
// for lease, or returns the rate limit's wait.
func (q *Queue) delivery(r *leaseRow, qn string, lease time.Duration, start time.Time) (*queue.Delivery, time.Duration, error) {
	if !r.name.Valid {
		return nil, time.Duration(r.waitMS.Int64) * time.Millisecond, nil
	}
	h, err := decodeHeaders(r.headers)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", errMalformed, err)
	}
	payload := r.payload
	if payload == nil {
		payload = []byte{}
	}
	d := queue.NewDelivery(q, queue.Delivery{
		Job: queue.Job{
			Queue: qn, Type: r.typ.String, Payload: payload, ID: r.name.String, Priority: int(r.prio.Int16),
			MaxAttempts: int(r.maxAtt.Int32), Timeout: time.Duration(r.tout.Int64) * time.Millisecond,
			Retention: time.Duration(r.ret.Int64) * time.Millisecond, Headers: h,
		},
		ID:         queue.FormatID(qn, r.name.String),
		Attempt:    int(r.attempt.Int32),
		Token:      uint64(r.token.Int64),
		LeaseUntil: start.Add(lease),
	})
	return d, 0, nil
}

// nextDueSQL finds, for the given queues, how long until the next
// scheduled job is due and until the next lease runs out (negative: one
// has), in seconds, NULL when there is none. Paused queues' jobs do not
// count.
const nextDueSQL = `SELECT min(s.at), min(a.at) FROM unnest($1::text[]) AS u(qn)
LEFT JOIN LATERAL (SELECT extract(epoch FROM j.run_at - clock_timestamp()) AS at FROM {p}jobs j
	WHERE j.queue = u.qn AND j.state = 0 AND j.run_at > clock_timestamp() ORDER BY j.run_at LIMIT 1) s ON true
LEFT JOIN LATERAL (SELECT extract(epoch FROM j.lease_until - clock_timestamp()) AS at FROM {p}jobs j
	WHERE j.queue = u.qn AND j.state = 1 ORDER BY j.lease_until LIMIT 1) a ON true`

func (q *Queue) nextDue(ctx context.Context, queues []string) (sched, expiry time.Duration, err error) {
	var s, a sql.NullFloat64
	if err := q.db.QueryRowContext(ctx, q.sql(nextDueSQL), queues).Scan(&s, &a); err != nil {
		return 0, 0, dbErr(ctx, "dequeue", err)
	}
	sched, expiry = -1, -1
	if s.Valid {
		sched = max(time.Duration(s.Float64*float64(time.Second)), 0)
	}
	if a.Valid {
		expiry = max(time.Duration(a.Float64*float64(time.Second)), 0)
	}
	return sched, expiry, nil
}

// sweepDue reports whether this process should look for expired leases
// before leasing: at most every DefaultSweepEvery, so that a queue that is
// never empty still retries the jobs of dead workers.
func (q *Queue) sweepDue() bool {
	q.sweepMu.Lock()
	defer q.sweepMu.Unlock()
	if time.Since(q.lastSweep) < DefaultSweepEvery {
		return false
	}
	q.lastSweep = time.Now()
	return true
}

const expiredSQL = `SELECT queue, name, token, attempt FROM {p}jobs
WHERE queue = ANY($1) AND state = 1 AND lease_until <= clock_timestamp() ORDER BY lease_until LIMIT 100`

// sweep turns the expired leases of queues into failed attempts (retried
// after their backoff, or dead), returning how many.
func (q *Queue) sweep(ctx context.Context, queues []string) (int, error) {
	rows, err := q.db.QueryContext(ctx, q.sql(expiredSQL), queues)
	if err != nil {
		return 0, dbErr(ctx, "sweep", err)
	}
	type exp struct {
		queue, name string
		token       int64
		attempt     int
	}
	var list []exp
	for rows.Next() {
		var e exp
		if err := rows.Scan(&e.queue, &e.name, &e.token, &e.attempt); err != nil {
			rows.Close()
			return 0, dbErr(ctx, "sweep", err)
		}
		list = append(list, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, dbErr(ctx, "sweep", err)
	}
	n := 0
	for _, e := range list {
		ok, err := q.fail(ctx, e.queue, e.name, e.token, e.attempt, false, "lease expired", true)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// cleanBatch bounds the jobs, and the unique keys, one clean deletes.
const cleanBatch = 1000

var cleanSQL = `WITH d AS (DELETE FROM {p}jobs WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM {p}jobs WHERE expires_at <= clock_timestamp() LIMIT ` + strconv.Itoa(cleanBatch) + `)) RETURNING 1),
u AS (DELETE FROM {p}uniq WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM {p}uniq WHERE until <= clock_timestamp() LIMIT ` + strconv.Itoa(cleanBatch) + `)) RETURNING 1)
SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM u)`

// maybeClean deletes jobs past their retention and unique keys past their
// time, at most every DefaultSweepEvery per process (with jitter, so that
// workers started together do not clean together), and at the next call
// again when a clean deleted a whole batch: a queue that ends more than
// cleanBatch jobs a second with a short Retention would otherwise keep
// them ever longer. Errors are left to the next time: cleaning is
// housekeeping.
func (q *Queue) maybeClean(ctx context.Context) {
	q.sweepMu.Lock()
	if time.Since(q.lastClean) < DefaultSweepEvery {
		q.sweepMu.Unlock()
		return
	}
	q.lastClean = time.Now().Add(time.Duration(rand.Int64N(int64(DefaultSweepEvery / 4))))
	q.sweepMu.Unlock()
	_, _ = detach(ctx, q, func(ctx context.Context) (struct{}, error) {
		var jobs, keys int64
		err := q.db.QueryRowContext(ctx, q.cleanSQL).Scan(&jobs, &keys)
		if err == nil && (jobs == cleanBatch || keys == cleanBatch) {
			// Here, not in the caller, who may have left meanwhile.
			q.sweepMu.Lock()
			q.lastClean = time.Time{}
			q.sweepMu.Unlock()
		}
		return struct{}{}, err
	}, nil)
}
