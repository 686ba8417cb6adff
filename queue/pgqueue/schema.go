package pgqueue

import (
	"context"
	"fmt"
	"strings"
)

// Job states as stored: a pending job is ready once its run_at has passed
// and scheduled before, so that a delay ending needs no write.
const (
	statePending  = 0
	stateActive   = 1
	stateDone     = 2
	stateDead     = 3
	stateCanceled = 4
)

// totalShards spreads the done and canceled counters over rows, so that
// concurrent acks do not queue on one row lock.
const totalShards = 32

// schema is the DDL Migrate runs, with {p} for the table prefix. Every
// statement is idempotent, so Migrate may run again (at every deploy, from
// several processes: a lock serializes them).
const schema = `
CREATE SEQUENCE IF NOT EXISTS {p}tokens;

CREATE TABLE IF NOT EXISTS {p}jobs (
	queue        text        NOT NULL,
	name         text        NOT NULL,
	type         text        NOT NULL,
	payload      bytea       NOT NULL,
	headers      bytea,
	priority     smallint    NOT NULL,
	state        smallint    NOT NULL,
	run_at       timestamptz NOT NULL,
	attempt      integer     NOT NULL DEFAULT 0,
	max_attempts integer     NOT NULL,
	token        bigint      NOT NULL DEFAULT 0,
	lease_until  timestamptz,
	last_err     text,
	result       bytea,
	enqueued_at  timestamptz NOT NULL,
	started_at   timestamptz,
	ended_at     timestamptz,
	expires_at   timestamptz,
	retention_ms bigint      NOT NULL,
	timeout_ms   bigint      NOT NULL,
	unique_key   text,
	awaited      boolean     NOT NULL DEFAULT false,
	PRIMARY KEY (queue, name)
) WITH (fillfactor = 80);

CREATE INDEX IF NOT EXISTS {p}jobs_ready ON {p}jobs (queue, priority DESC, run_at, name) WHERE state = 0;
CREATE INDEX IF NOT EXISTS {p}jobs_sched ON {p}jobs (queue, run_at, name) WHERE state = 0;
CREATE INDEX IF NOT EXISTS {p}jobs_active ON {p}jobs (queue, lease_until, name) WHERE state = 1;
CREATE INDEX IF NOT EXISTS {p}jobs_dead ON {p}jobs (queue, ended_at DESC, name DESC) WHERE state = 3;
CREATE INDEX IF NOT EXISTS {p}jobs_expires ON {p}jobs (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS {p}queues (
	queue       text        PRIMARY KEY,
	paused      boolean     NOT NULL DEFAULT false,
	concurrency integer     NOT NULL DEFAULT 0,
	rate        float8      NOT NULL DEFAULT 0,
	burst       integer     NOT NULL DEFAULT 0,
	tokens      float8      NOT NULL DEFAULT 0,
	tokens_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS {p}uniq (
	queue text        NOT NULL,
	key   text        NOT NULL,
	name  text        NOT NULL,
	until timestamptz NOT NULL,
	PRIMARY KEY (queue, key)
);

CREATE TABLE IF NOT EXISTS {p}totals (
	queue    text    NOT NULL,
	shard    integer NOT NULL,
	done     bigint  NOT NULL DEFAULT 0,
	canceled bigint  NOT NULL DEFAULT 0,
	PRIMARY KEY (queue, shard)
);

-- {p}lease leases the best ready job of one queue, or returns no row; when
-- the queue's rate limit holds it back, one row with only wait_ms set.
-- Without limits or a pause it is one statement, whose snapshot sees the
-- queue's pause and its jobs together: a job enqueued after Pause
-- returned is never leased by it. With limits, the queue's row is locked
-- first, which serializes the leases of a limited queue.
CREATE OR REPLACE FUNCTION {p}lease(p_queue text, p_lease_ms bigint)
RETURNS TABLE (o_name text, o_type text, o_payload bytea, o_headers bytea, o_priority smallint,
	o_attempt integer, o_max_attempts integer, o_token bigint, o_timeout_ms bigint,
	o_retention_ms bigint, o_wait_ms bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
	qr {p}queues%ROWTYPE;
	n integer;
	tok float8;
	ts timestamptz;
BEGIN
	RETURN QUERY
	UPDATE {p}jobs j SET state = 1, attempt = j.attempt + 1, token = nextval('{p}tokens'),
		lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond',
		started_at = clock_timestamp()
	FROM (SELECT c.queue, c.name FROM {p}jobs c
		WHERE c.queue = p_queue AND c.state = 0 AND c.run_at <= clock_timestamp()
		AND NOT EXISTS (SELECT 1 FROM {p}queues q WHERE q.queue = p_queue
			AND (q.paused OR q.concurrency > 0 OR q.rate > 0))
		ORDER BY c.priority DESC, c.run_at, c.name
		LIMIT 1 FOR UPDATE SKIP LOCKED) c
	WHERE j.queue = c.queue AND j.name = c.name
	RETURNING j.name, j.type, j.payload, j.headers, j.priority, j.attempt, j.max_attempts,
		j.token, j.timeout_ms, j.retention_ms, NULL::bigint;
	IF FOUND THEN
		RETURN;
	END IF;
	SELECT * INTO qr FROM {p}queues q WHERE q.queue = p_queue;
	IF NOT FOUND OR qr.paused OR (qr.concurrency = 0 AND qr.rate = 0) THEN
		RETURN;
	END IF;
	SELECT * INTO qr FROM {p}queues q WHERE q.queue = p_queue FOR UPDATE;
	IF qr.paused THEN
		RETURN;
	END IF;
	ts := clock_timestamp();
	IF qr.concurrency > 0 THEN
		SELECT count(*) INTO n FROM {p}jobs j WHERE j.queue = p_queue AND j.state = 1 AND j.lease_until > ts;
		IF n >= qr.concurrency THEN
			RETURN;
		END IF;
	END IF;
	IF qr.rate > 0 THEN
		tok := least(qr.burst::float8, qr.tokens + qr.rate * extract(epoch FROM ts - qr.tokens_at));
		IF tok < 1 THEN
			RETURN QUERY SELECT NULL::text, NULL::text, NULL::bytea, NULL::bytea, NULL::smallint,
				NULL::integer, NULL::integer, NULL::bigint, NULL::bigint, NULL::bigint,
				ceil((1 - tok) / qr.rate * 1000)::bigint;
			RETURN;
		END IF;
	END IF;
	RETURN QUERY
	UPDATE {p}jobs j SET state = 1, attempt = j.attempt + 1, token = nextval('{p}tokens'),
		lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond',
		started_at = clock_timestamp()
	FROM (SELECT c.queue, c.name FROM {p}jobs c
		WHERE c.queue = p_queue AND c.state = 0 AND c.run_at <= ts
		ORDER BY c.priority DESC, c.run_at, c.name
		LIMIT 1 FOR UPDATE SKIP LOCKED) c
	WHERE j.queue = c.queue AND j.name = c.name
	RETURNING j.name, j.type, j.payload, j.headers, j.priority, j.attempt, j.max_attempts,
		j.token, j.timeout_ms, j.retention_ms, NULL::bigint;
	IF FOUND AND qr.rate > 0 THEN
		UPDATE {p}queues SET tokens = tok - 1, tokens_at = ts WHERE queue = p_queue;
	END IF;
END
$fn$;

-- {p}enqueue stores one job with a caller-chosen ID or a unique key.
-- outcome: 0 enqueued, 1 the same job exists under the ID (a retry),
-- 2 another job holds the ID, 3 the unique key is held (o_name is the
-- holder's).
CREATE OR REPLACE FUNCTION {p}enqueue(p_queue text, p_name text, p_type text, p_payload bytea,
	p_headers bytea, p_priority smallint, p_run_at timestamptz, p_max_attempts integer,
	p_retention_ms bigint, p_timeout_ms bigint, p_unique_key text, p_unique_for_ms bigint,
	p_ready_channel text)
RETURNS TABLE (o_outcome integer, o_name text)
LANGUAGE plpgsql AS $fn$
DECLARE
	ex record;
	holder text;
	ts timestamptz := clock_timestamp();
	at timestamptz := greatest(p_run_at, ts);
BEGIN
	SELECT j.type, j.payload INTO ex FROM {p}jobs j
		WHERE j.queue = p_queue AND j.name = p_name AND (j.expires_at IS NULL OR j.expires_at > ts);
	IF FOUND THEN
		IF ex.type = p_type AND ex.payload = p_payload THEN
			RETURN QUERY SELECT 1, p_name;
		ELSE
			RETURN QUERY SELECT 2, p_name;
		END IF;
		RETURN;
	END IF;
	IF p_unique_key IS NOT NULL THEN
		INSERT INTO {p}uniq AS u (queue, key, name, until)
			VALUES (p_queue, p_unique_key, p_name, ts + p_unique_for_ms * interval '1 millisecond')
			ON CONFLICT (queue, key) DO UPDATE SET name = excluded.name, until = excluded.until
			WHERE u.until <= clock_timestamp()
			RETURNING NULL INTO holder;
		IF NOT FOUND THEN
			SELECT u.name INTO holder FROM {p}uniq u WHERE u.queue = p_queue AND u.key = p_unique_key;
			RETURN QUERY SELECT 3, holder;
			RETURN;
		END IF;
	END IF;
	INSERT INTO {p}jobs AS j (queue, name, type, payload, headers, priority, state, run_at,
		max_attempts, enqueued_at, retention_ms, timeout_ms, unique_key)
	VALUES (p_queue, p_name, p_type, p_payload, p_headers, p_priority, 0, at,
		p_max_attempts, ts, p_retention_ms, p_timeout_ms, p_unique_key)
	ON CONFLICT (queue, name) DO UPDATE SET type = excluded.type, payload = excluded.payload,
		headers = excluded.headers, priority = excluded.priority, state = 0, run_at = excluded.run_at,
		attempt = 0, max_attempts = excluded.max_attempts, lease_until = NULL, last_err = NULL,
		result = NULL, enqueued_at = excluded.enqueued_at, started_at = NULL, ended_at = NULL,
		expires_at = NULL, retention_ms = excluded.retention_ms, timeout_ms = excluded.timeout_ms,
		unique_key = excluded.unique_key, awaited = false
	WHERE j.expires_at IS NOT NULL AND j.expires_at <= clock_timestamp();
	IF NOT FOUND THEN
		-- A concurrent Enqueue of the same ID committed first: answer as
		-- if this one came second, and give back the key it took.
		IF p_unique_key IS NOT NULL THEN
			DELETE FROM {p}uniq u WHERE u.queue = p_queue AND u.key = p_unique_key AND u.name = p_name;
		END IF;
		SELECT j.type, j.payload INTO ex FROM {p}jobs j WHERE j.queue = p_queue AND j.name = p_name;
		IF ex.type = p_type AND ex.payload = p_payload THEN
			RETURN QUERY SELECT 1, p_name;
		ELSE
			RETURN QUERY SELECT 2, p_name;
		END IF;
		RETURN;
	END IF;
	IF at <= ts THEN
		PERFORM pg_notify(p_ready_channel, p_queue);
	END IF;
	RETURN QUERY SELECT 0, p_name;
END
$fn$;
`

// Migrate creates the Queue's tables, indexes and functions, or brings
// them up to date; it changes nothing that exists and holds no job. Call
// it once before using the Queue (at deploy, or at start-up: concurrent
// calls wait for each other); New never touches the schema. It needs the
// privileges to create tables and functions in the search path's first
// schema.
func (q *Queue) Migrate(ctx context.Context) error {
	if err := q.checkOpen(); err != nil {
		return err
	}
	ctx = q.ctx(ctx)
	conn, err := q.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("pgqueue: migrate: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("pgqueue: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	// One migration at a time: CREATE … IF NOT EXISTS races with itself.
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", q.prefix+"migrate"); err != nil {
		return fmt.Errorf("pgqueue: migrate: %w", err)
	}
	if _, err := tx.ExecContext(ctx, q.sql(schema)); err != nil {
		return fmt.Errorf("pgqueue: migrate: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("pgqueue: migrate: %w", err)
	}
	return nil
}

// sql replaces {p} in a statement by the table prefix.
func (q *Queue) sql(s string) string { return strings.ReplaceAll(s, "{p}", q.prefix) }
