package pgqueue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scaleout/scaleout/queue"
)

// enqueueQuietSQL stores a job whose ID the queue chose and that has no
// unique key (nothing can conflict with it), reporting whether it is
// ready, and notifies nobody: the notifier sends the notification after
// the commit, with other Enqueues' (see notifier).
const enqueueQuietSQL = `INSERT INTO {p}jobs (queue, name, type, payload, headers, priority, state, run_at,
		max_attempts, enqueued_at, retention_ms, timeout_ms)
	VALUES ($1, $2, $3, $4, $5, $6, 0, greatest($7::timestamptz, clock_timestamp()), $8, clock_timestamp(), $9, $10)
	RETURNING run_at <= enqueued_at`

// enqueueSQL is enqueueQuietSQL notifying the blocked Dequeues when the
// job is ready, at commit: a job enqueued in a transaction that rolls
// back wakes nobody.
const enqueueSQL = `WITH ins AS (` + enqueueQuietSQL + ` AS ready)
SELECT count(pg_notify($11, $1)) FROM ins WHERE ready`

// enqueueFnSQL stores a job with a caller-chosen ID or a unique key.
const enqueueFnSQL = `SELECT o_outcome, o_name FROM {p}enqueue($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`

// A PgxTx is a pgx transaction, or anything else that runs a query on
// one: pgx.Tx, *pgx.Conn, *pgxpool.Pool and pgxpool.Tx have it.
type PgxTx interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// rowQuerier runs one statement that returns one row.
type rowQuerier func(ctx context.Context, query string, args ...any) interface{ Scan(...any) error }

// Enqueue stores j and returns its ID; see queue.JobQueue.
func (q *Queue) Enqueue(ctx context.Context, j queue.Job) (queue.JobID, error) {
	if err := q.checkOpen(); err != nil {
		return "", err
	}
	ctx = q.ctx(ctx)
	return q.enqueue(ctx, func(ctx context.Context, query string, args ...any) interface{ Scan(...any) error } {
		return q.db.QueryRowContext(ctx, query, args...)
	}, j, true)
}

// EnqueueTx stores j in tx, the caller's transaction: the job exists if
// and only if tx commits, and blocked Dequeues hear of it at the commit.
// Use it to enqueue in the transaction of the write that calls for the
// job (an order row and its "send the invoice" job), so that no crash can
// leave one without the other. tx must be on the Queue's database (on the
// primary, through replica: a read-write transaction of replica.DB is).
//
// Errors are as Enqueue's. A statement that fails aborts tx, as any
// failed statement does in PostgreSQL; validation errors (a bad job, a
// payload too large) are found before anything is sent and leave tx as
// it was. A unique job whose key is held, or an ID taken by another job,
// is ErrDuplicate without aborting tx. The transaction sees its own
// enqueued job (Status in it is not available: Status runs on the Queue's
// DB, which sees the job once tx commits).
func (q *Queue) EnqueueTx(ctx context.Context, tx *sql.Tx, j queue.Job) (queue.JobID, error) {
	if err := q.checkOpen(); err != nil {
		return "", err
	}
	if tx == nil {
		return "", fmt.Errorf("%w: pgqueue: nil transaction", queue.ErrInvalidConfig)
	}
	return q.enqueue(ctx, func(ctx context.Context, query string, args ...any) interface{ Scan(...any) error } {
		return tx.QueryRowContext(ctx, query, args...)
	}, j, false)
}

// EnqueuePgxTx is EnqueueTx for a pgx transaction (pgx.Tx, pgxpool.Tx, or
// any PgxTx): the job exists if and only if tx commits.
func (q *Queue) EnqueuePgxTx(ctx context.Context, tx PgxTx, j queue.Job) (queue.JobID, error) {
	if err := q.checkOpen(); err != nil {
		return "", err
	}
	if tx == nil {
		return "", fmt.Errorf("%w: pgqueue: nil transaction", queue.ErrInvalidConfig)
	}
	return q.enqueue(ctx, func(ctx context.Context, query string, args ...any) interface{ Scan(...any) error } {
		return tx.QueryRow(ctx, query, args...)
	}, j, false)
}

// enqueue stores j through run. committed says that run's statement
// commits on its own (Enqueue): then only one Enqueue at a time notifies
// in its statement, the others after their commit (see notifier). In a
// caller's transaction the notification goes with the statement, and
// PostgreSQL delivers it at the transaction's commit.
func (q *Queue) enqueue(ctx context.Context, run rowQuerier, j queue.Job, committed bool) (queue.JobID, error) {
	chosen := j.ID != ""
	j, id, err := queue.Prepare(j, q.maxPayload)
	if err != nil {
		return "", err
	}
	payload := j.Payload
	if payload == nil {
		payload = []byte{}
	}
	// $1 to $10 of every enqueue statement.
	args := []any{j.Queue, j.ID, j.Type, payload, encodeHeaders(j.Headers), int16(j.Priority),
		runAt(j.RunAt), j.MaxAttempts, ms(j.Retention), ms(j.Timeout)}
	if !chosen && j.UniqueKey == "" {
		// A plain job: nothing can conflict with it, one INSERT. It
		// notifies in its statement unless, committing on its own, it
		// finds another Enqueue's statement notifying (it would wait for
		// that one's commit): then it pokes the notifier after its own.
		quiet := committed && !q.notify.claim()
		if committed && !quiet {
			defer q.notify.unclaim()
		}
		var err error
		var ready bool
		var n int64
		if quiet {
			err = run(ctx, q.enqueueQuietSQL, args...).Scan(&ready)
		} else {
			err = run(ctx, q.enqueueSQL, append(args, q.readyChan)...).Scan(&n)
		}
		if err != nil {
			return "", dbErr(ctx, "enqueue", err)
		}
		q.enqueued.Get(j.Queue).Inc()
		if quiet && ready {
			q.notify.poke(j.Queue)
		}
		return id, nil
	}
	var ukey *string
	if j.UniqueKey != "" {
		ukey = &j.UniqueKey
	}
	var outcome int
	var name string
	err = run(ctx, q.enqueueFnSQL, append(args, ukey, ms(j.UniqueFor), q.readyChan)...).Scan(&outcome, &name)
	if err != nil {
		return "", dbErr(ctx, "enqueue", err)
	}
	if outcome == outcomeStored {
		q.enqueued.Get(j.Queue).Inc()
	}
	return outcomeErr(j.Queue, outcome, name)
}

// outcomeStored is the outcome of {p}enqueue that stored the job.
const outcomeStored = 0

// outcomeErr turns an outcome of {p}enqueue into Enqueue's answer.
func outcomeErr(qn string, outcome int, name string) (queue.JobID, error) {
	id := queue.FormatID(qn, name)
	switch outcome {
	case 0, 1:
		return id, nil
	case 2:
		return id, fmt.Errorf("%w: %s holds another job", queue.ErrDuplicate, id)
	default:
		return id, fmt.Errorf("%w: the unique key is held by %s", queue.ErrDuplicate, id)
	}
}

// runAt is the RunAt to store: the zero time (run now) as the earliest
// time PostgreSQL's timestamptz holds, so that greatest() picks the clock.
func runAt(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0)
	}
	return t
}

// batchSQL enqueues a batch in one statement, each job by {p}enqueue, in
// order.
const batchSQL = `SELECT e.o_outcome, e.o_name
FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::smallint[],
	$7::timestamptz[], $8::integer[], $9::bigint[], $10::bigint[], $11::text[], $12::bigint[])
	WITH ORDINALITY AS b(queue, name, type, payload, headers, priority, run_at, max_attempts,
		retention_ms, timeout_ms, unique_key, unique_for_ms, ord)
CROSS JOIN LATERAL {p}enqueue(b.queue, b.name, b.type, b.payload, b.headers, b.priority, b.run_at,
	b.max_attempts, b.retention_ms, b.timeout_ms, nullif(b.unique_key, ''), b.unique_for_ms, $13) e
ORDER BY b.ord`

// EnqueueBatch enqueues jobs in one statement (one transaction: all or
// none are stored when it fails); see queue.BatchEnqueuer. A job whose
// unique key is held, or whose ID another job holds, is ErrDuplicate
// (the first such), the others enqueued and their IDs set.
func (q *Queue) EnqueueBatch(ctx context.Context, jobs []queue.Job) ([]queue.JobID, error) {
	if err := q.checkOpen(); err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	ctx = q.ctx(ctx)
	n := len(jobs)
	prepared := make([]queue.Job, n)
	queues, names := make([]string, n), make([]string, n)
	for i, j := range jobs {
		j, _, err := queue.Prepare(j, q.maxPayload)
		if err != nil {
			return nil, err
		}
		prepared[i], queues[i], names[i] = j, j.Queue, j.ID
	}
	rows, err := q.db.QueryContext(ctx, q.sql(batchSQL), append(batchArgs(prepared), q.readyChan)...)
	if err != nil {
		return nil, dbErr(ctx, "enqueue batch", err)
	}
	defer rows.Close()
	ids := make([]queue.JobID, 0, n)
	var stored []bool // by job, when counting
	if q.enqueued != nil {
		stored = make([]bool, 0, n)
	}
	var first error
	for rows.Next() {
		var outcome int
		var name string
		if err := rows.Scan(&outcome, &name); err != nil {
			return ids, dbErr(ctx, "enqueue batch", err)
		}
		id, err := outcomeErr(queues[len(ids)], outcome, name)
		if err != nil && first == nil {
			first = err
		}
		if err != nil && errors.Is(err, queue.ErrDuplicate) && outcome == 2 {
			// The ID is the job's, though it is another one.
			id = queue.FormatID(queues[len(ids)], names[len(ids)])
		}
		ids = append(ids, id)
		if stored != nil {
			stored = append(stored, outcome == outcomeStored)
		}
	}
	if err := rows.Err(); err != nil {
		return ids, dbErr(ctx, "enqueue batch", err)
	}
	// Counted once every row is read: the statement is one transaction,
	// and an error before here stored none of the jobs.
	for i, ok := range stored {
		if ok {
			q.enqueued.Get(queues[i]).Inc()
		}
	}
	return ids, first
}

// batchArgs are the twelve arrays of batchSQL's parameters $1 to $12 for
// jobs, prepared (queue.Prepare).
func batchArgs(jobs []queue.Job) []any {
	n := len(jobs)
	var (
		queues, names, types, ukeys = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		payloads, headers           = make([][]byte, n), make([][]byte, n)
		prios                       = make([]int16, n)
		runAts                      = make([]time.Time, n)
		maxAtt                      = make([]int32, n)
		rets, touts, ufor           = make([]int64, n), make([]int64, n), make([]int64, n)
	)
	for i, j := range jobs {
		queues[i], names[i], types[i], ukeys[i] = j.Queue, j.ID, j.Type, j.UniqueKey
		payloads[i] = j.Payload
		if payloads[i] == nil {
			payloads[i] = []byte{}
		}
		headers[i] = encodeHeaders(j.Headers)
		prios[i] = int16(j.Priority)
		runAts[i] = runAt(j.RunAt)
		maxAtt[i] = int32(j.MaxAttempts)
		rets[i], touts[i], ufor[i] = ms(j.Retention), ms(j.Timeout), ms(j.UniqueFor)
	}
	return []any{queues, names, types, payloads, headers, prios, runAts, maxAtt, rets, touts, ukeys, ufor}
}
