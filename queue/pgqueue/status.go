package pgqueue

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/scaleout/scaleout/queue"
)

// jobCols are the columns a JobInfo is made of, then the database's clock.
const jobCols = `name, type, state, payload, result, attempt, last_err, priority, headers,
	enqueued_at, run_at, started_at, ended_at, lease_until, token, clock_timestamp()`

// live is the condition of a job Status knows: not past its retention.
const live = `(expires_at IS NULL OR expires_at > clock_timestamp())`

// scanned is one row of jobCols.
type scanned struct {
	info       queue.JobInfo
	leaseUntil time.Time
	token      int64
	now        time.Time
}

type rowScanner interface{ Scan(...any) error }

func scanJob(qn string, r rowScanner) (scanned, error) {
	var (
		s                          scanned
		name, typ                  string
		state                      int
		payload, result, headers   []byte
		attempt, prio              int
		lastErr                    sql.NullString
		enq, runAt                 time.Time
		started, ended, leaseUntil sql.NullTime
	)
	if err := r.Scan(&name, &typ, &state, &payload, &result, &attempt, &lastErr, &prio, &headers,
		&enq, &runAt, &started, &ended, &leaseUntil, &s.token, &s.now); err != nil {
		return s, err
	}
	h, err := decodeHeaders(headers)
	if err != nil {
		return s, err
	}
	if payload == nil {
		payload = []byte{}
	}
	in := queue.JobInfo{
		ID: queue.FormatID(qn, name), Queue: qn, Type: typ, Payload: payload, Result: result,
		Attempt: attempt, LastErr: lastErr.String, Priority: prio, Headers: h,
		EnqueuedAt: enq, StartedAt: started.Time, EndedAt: ended.Time,
	}
	switch state {
	case statePending:
		in.State = queue.StateReady
		if runAt.After(s.now) {
			in.State = queue.StateScheduled
		}
		in.RunAt = runAt
	case stateActive:
		in.State = queue.StateActive
	case stateDone:
		in.State = queue.StateDone
	case stateDead:
		in.State = queue.StateDead
	default:
		in.State = queue.StateCanceled
	}
	s.info, s.leaseUntil = in, leaseUntil.Time
	return s, nil
}

// Status reports where a job is; see queue.JobQueue. A job whose lease
// has run out is brought up to date first (a retry or a dead letter).
func (q *Queue) Status(ctx context.Context, id queue.JobID) (queue.JobInfo, error) {
	if err := q.checkOpen(); err != nil {
		return queue.JobInfo{}, err
	}
	s, err := q.status(q.ctx(ctx), id)
	return s.info, err
}

func (q *Queue) status(ctx context.Context, id queue.JobID) (scanned, error) {
	qn, name, err := queue.ParseID(id)
	if err != nil {
		return scanned{}, err
	}
	for i := 0; ; i++ {
		s, err := scanJob(qn, q.db.QueryRowContext(ctx, q.sql(`SELECT `+jobCols+` FROM {p}jobs WHERE queue = $1 AND name = $2 AND `+live), qn, name))
		if errors.Is(err, sql.ErrNoRows) {
			return s, queue.ErrNotFound
		}
		if err != nil {
			return s, dbErr(ctx, "status", err)
		}
		if s.info.State != queue.StateActive || s.leaseUntil.After(s.now) || i > 0 {
			return s, nil
		}
		if _, err := q.fail(ctx, qn, name, s.token, s.info.Attempt, false, "lease expired", true); err != nil {
			return s, err
		}
	}
}

// Wait blocks until the job has ended; see queue.JobQueue. It marks the
// job as awaited, so that whatever ends it notifies <prefix>ended, and
// looks at the job again at each notification, when its lease runs out,
// and every PollInterval.
func (q *Queue) Wait(ctx context.Context, id queue.JobID) (queue.JobInfo, error) {
	if err := q.checkOpen(); err != nil {
		return queue.JobInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return queue.JobInfo{}, err
	}
	qn, name, err := queue.ParseID(id)
	if err != nil {
		return queue.JobInfo{}, err
	}
	id = queue.FormatID(qn, name)
	ctx = q.ctx(ctx)
	l := q.listener()
	if l == nil {
		return queue.JobInfo{}, queue.ErrClosed
	}
	w := l.addEnded(id)
	defer l.removeEnded(id, w)
	l.awaitUp(ctx)
	if _, err := q.db.ExecContext(ctx, q.sql(`UPDATE {p}jobs SET awaited = true WHERE queue = $1 AND name = $2 AND state IN (0, 1) AND NOT awaited`), qn, name); err != nil {
		return queue.JobInfo{}, dbErr(ctx, "wait", err)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s, err := q.status(ctx, id)
		if err != nil {
			return queue.JobInfo{}, err
		}
		if s.info.State.Final() {
			return s.info, nil
		}
		sleep := q.poll
		if s.info.State == queue.StateActive {
			sleep = min(sleep, s.leaseUntil.Sub(s.now)+time.Millisecond)
		}
		timer.Reset(max(sleep, time.Millisecond))
		select {
		case <-w.ch:
		case <-timer.C:
		case <-ctx.Done():
			return queue.JobInfo{}, ctx.Err()
		case <-q.closedCh:
			return queue.JobInfo{}, queue.ErrClosed
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

const cancelSQL = `WITH e AS (
	UPDATE {p}jobs SET state = 4, lease_until = NULL, ended_at = clock_timestamp(),
		expires_at = clock_timestamp() + retention_ms * interval '1 millisecond'
	WHERE queue = $1 AND name = $2 AND state IN (0, 1)
	RETURNING queue, name, awaited, unique_key),
u AS (DELETE FROM {p}uniq x USING e WHERE x.queue = e.queue AND x.key = e.unique_key AND x.name = e.name),
t AS (INSERT INTO {p}totals AS t (queue, shard, canceled) SELECT e.queue, $3, 1 FROM e
	ON CONFLICT (queue, shard) DO UPDATE SET canceled = t.canceled + 1)
SELECT ` + notifyEnded + ` + ` + notifyLimited + ` FROM e`

// Cancel stops a job; see queue.JobQueue. A canceled active job ends at
// once: Wait returns, and its slot under a concurrency limit is free.
func (q *Queue) Cancel(ctx context.Context, id queue.JobID) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	qn, name, err := queue.ParseID(id)
	if err != nil {
		return err
	}
	ctx = q.ctx(ctx)
	var n int64
	err = q.db.QueryRowContext(ctx, q.sql(channels(cancelSQL, 4, 5)), qn, name, rand.IntN(totalShards), q.endedChan, q.readyChan).Scan(&n)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return dbErr(ctx, "cancel", err)
	}
	var one int
	err = q.db.QueryRowContext(ctx, q.sql(`SELECT 1 FROM {p}jobs WHERE queue = $1 AND name = $2 AND `+live), qn, name).Scan(&one)
	switch {
	case err == nil:
		return queue.ErrEnded
	case errors.Is(err, sql.ErrNoRows):
		return queue.ErrNotFound
	default:
		return dbErr(ctx, "cancel", err)
	}
}
