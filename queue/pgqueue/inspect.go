package pgqueue

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/scaleout/scaleout/queue"
)

// Dead lists up to limit dead jobs of qn, most recent first, after
// skipping offset of them; see queue.DeadLetters. It costs offset+limit
// index entries.
func (q *Queue) Dead(ctx context.Context, qn string, offset, limit int) ([]queue.JobInfo, error) {
	if err := q.checkOpen(); err != nil {
		return nil, err
	}
	if err := queue.CheckQueue(qn); err != nil {
		return nil, err
	}
	if offset < 0 || limit < 0 {
		return nil, fmt.Errorf("%w: pgqueue: negative offset or limit", queue.ErrInvalidConfig)
	}
	ctx = q.ctx(ctx)
	rows, err := q.db.QueryContext(ctx, q.sql(`SELECT `+jobCols+` FROM {p}jobs WHERE queue = $1 AND state = 3 AND `+live+`
		ORDER BY ended_at DESC, name DESC OFFSET $2 LIMIT $3`), qn, offset, limit)
	if err != nil {
		return nil, dbErr(ctx, "dead", err)
	}
	list, err := scanAll(qn, rows)
	if err != nil {
		return nil, dbErr(ctx, "dead", err)
	}
	out := make([]queue.JobInfo, len(list))
	for i, s := range list {
		out[i] = s.info
	}
	return out, nil
}

func scanAll(qn string, rows *sql.Rows) ([]scanned, error) {
	defer rows.Close()
	var list []scanned
	for rows.Next() {
		s, err := scanJob(qn, rows)
		if err != nil {
			return nil, err
		}
		list = append(list, s)
	}
	return list, rows.Err()
}

const requeueSQL = `WITH e AS (
	UPDATE {p}jobs SET state = 0, attempt = 0, run_at = clock_timestamp(), ended_at = NULL, expires_at = NULL
	WHERE queue = $1 AND name = $2 AND state = 3 AND ` + live + ` RETURNING queue)
SELECT count(pg_notify($3, e.queue)) FROM e`

// Requeue makes a dead job ready again with fresh attempts; see
// queue.DeadLetters. A job that is not dead is ErrNotFound.
func (q *Queue) Requeue(ctx context.Context, id queue.JobID) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	qn, name, err := queue.ParseID(id)
	if err != nil {
		return err
	}
	ctx = q.ctx(ctx)
	var n int64
	if err := q.db.QueryRowContext(ctx, q.sql(requeueSQL), qn, name, q.readyChan).Scan(&n); err != nil {
		return dbErr(ctx, "requeue", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s is not a dead letter", queue.ErrNotFound, id)
	}
	return nil
}

// SetLimits sets the Limits of a queue for every process; see
// queue.Limiter. A limited queue's leases take a lock on its row in
// <prefix>queues, so they run one at a time.
func (q *Queue) SetLimits(ctx context.Context, qn string, l queue.Limits) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	if err := queue.CheckQueue(qn); err != nil {
		return err
	}
	if l.Concurrency < 0 || l.Rate < 0 || l.Burst < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) {
		return fmt.Errorf("%w: pgqueue: negative or undefined limits", queue.ErrInvalidConfig)
	}
	burst := l.Burst
	if burst == 0 {
		burst = max(1, int(math.Ceil(l.Rate)))
	}
	ctx = q.ctx(ctx)
	_, err := q.db.ExecContext(ctx, q.sql(`WITH u AS (INSERT INTO {p}queues AS x (queue, concurrency, rate, burst, tokens, tokens_at)
		VALUES ($1, $2::integer, $3::float8, $4::integer, $4::integer, clock_timestamp())
		ON CONFLICT (queue) DO UPDATE SET concurrency = excluded.concurrency, rate = excluded.rate,
			burst = excluded.burst, tokens = excluded.tokens, tokens_at = excluded.tokens_at RETURNING 1)
		SELECT pg_notify($5, $1) FROM u`), qn, l.Concurrency, l.Rate, burst, q.readyChan)
	if err != nil {
		return dbErr(ctx, "set limits", err)
	}
	return nil
}

// Queues lists the queues that hold jobs or were paused or limited; see
// queue.Inspector. It skips through the primary key, one probe per queue.
func (q *Queue) Queues(ctx context.Context) ([]string, error) {
	if err := q.checkOpen(); err != nil {
		return nil, err
	}
	ctx = q.ctx(ctx)
	rows, err := q.db.QueryContext(ctx, q.sql(`WITH RECURSIVE t(qn) AS (
		SELECT min(queue) FROM {p}jobs
		UNION ALL SELECT (SELECT min(queue) FROM {p}jobs WHERE queue > t.qn) FROM t WHERE t.qn IS NOT NULL)
		SELECT qn FROM t WHERE qn IS NOT NULL UNION SELECT queue FROM {p}queues ORDER BY 1`))
	if err != nil {
		return nil, dbErr(ctx, "queues", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, dbErr(ctx, "queues", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, "queues", err)
	}
	return out, nil
}

const countsSQL = `SELECT
	count(*) FILTER (WHERE state = 0 AND run_at <= clock_timestamp()),
	count(*) FILTER (WHERE state = 0 AND run_at > clock_timestamp()),
	count(*) FILTER (WHERE state = 1),
	count(*) FILTER (WHERE state = 3 AND ` + live + `),
	extract(epoch FROM clock_timestamp() - min(run_at) FILTER (WHERE state = 0 AND run_at <= clock_timestamp())),
	(SELECT coalesce(sum(done), 0) FROM {p}totals WHERE queue = $1),
	(SELECT coalesce(sum(canceled), 0) FROM {p}totals WHERE queue = $1),
	coalesce((SELECT paused FROM {p}queues WHERE queue = $1), false)
FROM {p}jobs WHERE queue = $1 AND state IN (0, 1, 3)`

// Counts reports a queue's jobs by state; see queue.Inspector. It turns
// the queue's expired leases into retries first, then counts its pending
// and dead jobs in their partial indexes: it costs a read of the index
// entries of the queue's pending and dead jobs (not of its ended ones).
func (q *Queue) Counts(ctx context.Context, qn string) (queue.QueueCounts, error) {
	if err := q.checkOpen(); err != nil {
		return queue.QueueCounts{}, err
	}
	if err := queue.CheckQueue(qn); err != nil {
		return queue.QueueCounts{}, err
	}
	ctx = q.ctx(ctx)
	for {
		n, err := q.sweep(ctx, []string{qn})
		if err != nil {
			return queue.QueueCounts{}, err
		}
		if n < 100 {
			break
		}
	}
	c := queue.QueueCounts{Queue: qn}
	var oldest sql.NullFloat64
	err := q.db.QueryRowContext(ctx, q.sql(countsSQL), qn).Scan(&c.Ready, &c.Scheduled, &c.Active, &c.Dead,
		&oldest, &c.DoneTotal, &c.CanceledTotal, &c.Paused)
	if err != nil {
		return queue.QueueCounts{}, dbErr(ctx, "counts", err)
	}
	if oldest.Valid {
		c.OldestReady = max(time.Duration(oldest.Float64*float64(time.Second)), 0)
	}
	return c, nil
}

// List returns one page of a queue's jobs in state; see queue.Inspector.
// A page is one index range scan from the cursor, which holds the last
// job's sort key: it costs the page's size.
func (q *Queue) List(ctx context.Context, qn string, state queue.State, cursor string, limit int) (queue.Page, error) {
	if err := q.checkOpen(); err != nil {
		return queue.Page{}, err
	}
	limit, err := queue.CheckList(qn, state, limit)
	if err != nil {
		return queue.Page{}, err
	}
	cur, err := parseCursor(qn, state, cursor)
	if err != nil {
		return queue.Page{}, err
	}
	ctx = q.ctx(ctx)
	var where, order string
	args := []any{qn, limit + 1}
	switch state {
	case queue.StateReady:
		where, order = `state = 0 AND run_at <= clock_timestamp()`, `priority DESC, run_at, name`
		if cursor != "" {
			where += ` AND (priority < $3 OR (priority = $3 AND (run_at, name) > ($4, $5)))`
			args = append(args, cur.prio, cur.at, cur.name)
		}
	case queue.StateScheduled:
		where, order = `state = 0 AND run_at > clock_timestamp()`, `run_at, name`
		if cursor != "" {
			where += ` AND (run_at, name) > ($3, $4)`
			args = append(args, cur.at, cur.name)
		}
	case queue.StateActive:
		where, order = `state = 1`, `lease_until, name`
		if cursor != "" {
			where += ` AND (lease_until, name) > ($3, $4)`
			args = append(args, cur.at, cur.name)
		}
	default:
		where, order = `state = 3 AND `+live, `ended_at DESC, name DESC`
		if cursor != "" {
			where += ` AND (ended_at, name) < ($3, $4)`
			args = append(args, cur.at, cur.name)
		}
	}
	rows, err := q.db.QueryContext(ctx, q.sql(`SELECT `+jobCols+` FROM {p}jobs WHERE queue = $1 AND `+where+` ORDER BY `+order+` LIMIT $2`), args...)
	if err != nil {
		return queue.Page{}, dbErr(ctx, "list", err)
	}
	list, err := scanAll(qn, rows)
	if err != nil {
		return queue.Page{}, dbErr(ctx, "list", err)
	}
	var p queue.Page
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		_, name, _ := queue.ParseID(last.info.ID)
		switch state {
		case queue.StateReady:
			p.Next = fmt.Sprintf("r.%d.%d.%s", last.info.Priority, last.info.RunAt.UnixMicro(), name)
		case queue.StateScheduled:
			p.Next = fmt.Sprintf("s.%d.%s", last.info.RunAt.UnixMicro(), name)
		case queue.StateActive:
			p.Next = fmt.Sprintf("a.%d.%s", last.leaseUntil.UnixMicro(), name)
		default:
			p.Next = fmt.Sprintf("d.%d.%s", last.info.EndedAt.UnixMicro(), name)
		}
	}
	p.Jobs = make([]queue.JobInfo, len(list))
	for i, s := range list {
		p.Jobs[i] = s.info
		// A job listed as ready or scheduled is in the state it was
		// selected for, though the clock moved since.
		p.Jobs[i].State = state
	}
	return p, nil
}

type cursor struct {
	prio int
	at   time.Time
	name string
}

func parseCursor(qn string, state queue.State, s string) (cursor, error) {
	var c cursor
	if s == "" {
		return c, nil
	}
	bad := fmt.Errorf("%w: malformed cursor %q", queue.ErrInvalidConfig, s)
	letter := map[queue.State]string{queue.StateReady: "r", queue.StateScheduled: "s", queue.StateActive: "a", queue.StateDead: "d"}[state]
	n := 3
	if state == queue.StateReady {
		n = 4
	}
	parts := strings.SplitN(s, ".", n)
	if len(parts) != n || parts[0] != letter {
		return c, bad
	}
	if state == queue.StateReady {
		p, err := strconv.Atoi(parts[1])
		if err != nil || p < 0 || p > 9 {
			return c, bad
		}
		c.prio = p
		parts = parts[1:]
	}
	us, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return c, bad
	}
	c.at, c.name = time.UnixMicro(us), parts[2]
	if _, _, err := queue.ParseID(queue.FormatID(qn, c.name)); err != nil {
		return c, bad
	}
	return c, nil
}

// Pause stops every process from leasing the queue's jobs; see
// queue.Inspector.
func (q *Queue) Pause(ctx context.Context, qn string) error {
	return q.setPaused(ctx, qn, true)
}

// Resume ends a Pause and wakes the blocked Dequeues; see queue.Inspector.
func (q *Queue) Resume(ctx context.Context, qn string) error {
	return q.setPaused(ctx, qn, false)
}

func (q *Queue) setPaused(ctx context.Context, qn string, paused bool) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	if err := queue.CheckQueue(qn); err != nil {
		return err
	}
	ctx = q.ctx(ctx)
	_, err := q.db.ExecContext(ctx, q.sql(`WITH u AS (INSERT INTO {p}queues AS x (queue, paused) VALUES ($1, $2)
		ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused RETURNING 1)
		SELECT pg_notify($3, $1) FROM u WHERE NOT $2`), qn, paused, q.readyChan)
	if err != nil {
		return dbErr(ctx, "pause", err)
	}
	return nil
}

const requeueBatchSQL = `WITH b0 AS (
	SELECT queue, name, ended_at FROM {p}jobs WHERE queue = $1 AND state = 3 AND ` + live + `
	ORDER BY ended_at, name LIMIT 100 FOR UPDATE SKIP LOCKED),
b AS (SELECT queue, name, row_number() OVER (ORDER BY ended_at, name) AS rn FROM b0),
e AS (UPDATE {p}jobs j SET state = 0, attempt = 0, ended_at = NULL, expires_at = NULL,
		run_at = (SELECT clock_timestamp()) - (1000 - b.rn) * interval '1 microsecond'
	FROM b WHERE j.queue = b.queue AND j.name = b.name AND j.state = 3 RETURNING j.queue)
SELECT count(*), (SELECT count(pg_notify($2, $1)) FROM e LIMIT 1) FROM e`

// RequeueAll requeues every dead letter of the queue, oldest death first,
// in batches of 100; see queue.Inspector.
func (q *Queue) RequeueAll(ctx context.Context, qn string) (int, error) {
	return q.allDead(ctx, qn, requeueBatchSQL, "requeue all")
}

const deleteBatchSQL = `WITH e AS (DELETE FROM {p}jobs WHERE ctid = ANY(ARRAY(
	SELECT ctid FROM {p}jobs WHERE queue = $1 AND state = 3 AND ` + live + ` LIMIT 100 FOR UPDATE SKIP LOCKED))
	AND state = 3 RETURNING 1)
SELECT count(*), $2::text IS NULL FROM e`

// DeleteAllDead deletes every dead letter of the queue in batches of 100;
// see queue.Inspector.
func (q *Queue) DeleteAllDead(ctx context.Context, qn string) (int, error) {
	return q.allDead(ctx, qn, deleteBatchSQL, "delete all dead")
}

func (q *Queue) allDead(ctx context.Context, qn, stmt, what string) (int, error) {
	if err := q.checkOpen(); err != nil {
		return 0, err
	}
	if err := queue.CheckQueue(qn); err != nil {
		return 0, err
	}
	ctx = q.ctx(ctx)
	total := 0
	for {
		var n int
		var ignored any
		if err := q.db.QueryRowContext(ctx, q.sql(stmt), qn, q.readyChan).Scan(&n, &ignored); err != nil {
			return total, dbErr(ctx, what, err)
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
}

// DeleteDead deletes a dead letter; see queue.Inspector.
func (q *Queue) DeleteDead(ctx context.Context, id queue.JobID) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	qn, name, err := queue.ParseID(id)
	if err != nil {
		return err
	}
	ctx = q.ctx(ctx)
	res, err := q.db.ExecContext(ctx, q.sql(`DELETE FROM {p}jobs WHERE queue = $1 AND name = $2 AND state = 3 AND `+live), qn, name)
	if err != nil {
		return dbErr(ctx, "delete dead", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s is not a dead letter", queue.ErrNotFound, id)
	}
	return nil
}
