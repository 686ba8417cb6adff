package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver: pgqueue's LISTEN/NOTIFY wake-ups

	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
)

// pgStore is the -pg mode: the queue in PostgreSQL, next to a table of
// report requests, each written in one transaction with its job.
type pgStore struct {
	db     *sql.DB
	q      *pgqueue.Queue
	prefix string
}

func openPG(ctx context.Context, dsn string) (*pgStore, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL: %w", err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:]) // never fails
	s := &pgStore{db: db, prefix: "example_jobs_" + hex.EncodeToString(rnd[:]) + "_"}
	if s.q, err = pgqueue.New(db, pgqueue.Config{Prefix: s.prefix}); err == nil {
		err = s.q.Migrate(ctx) // at deploy, in a real service
	}
	if err == nil {
		_, err = db.ExecContext(ctx, `CREATE TABLE `+s.prefix+`requests (job text PRIMARY KEY, customer text NOT NULL, month text NOT NULL)`)
	}
	if err != nil {
		_ = s.drop(ctx)
		return nil, err
	}
	return s, nil
}

// saveAndEnqueue writes the request and enqueues its job in one
// transaction: both are stored, or neither.
func (s *pgStore) saveAndEnqueue(ctx context.Context, req ReportRequest, opts queue.Job) (queue.JobID, error) {
	job, err := reportType.Job(req, opts)
	if err != nil {
		return "", err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	id, err := s.q.EnqueueTx(ctx, tx, job)
	if err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+s.prefix+`requests (job, customer, month) VALUES ($1, $2, $3)`,
		string(id), req.Customer, req.Month); err != nil {
		return "", err
	}
	return id, tx.Commit()
}

// rows counts the requests written.
func (s *pgStore) rows(ctx context.Context) int {
	var n int
	_ = s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+s.prefix+`requests`).Scan(&n)
	return n
}

// drop removes the example's tables and functions, and closes the pool.
func (s *pgStore) drop(ctx context.Context) error {
	defer s.db.Close()
	p := s.prefix
	for _, stmt := range []string{
		"DROP TABLE IF EXISTS " + p + "requests, " + p + "jobs, " + p + "queues, " + p + "uniq, " + p + "totals",
		"DROP SEQUENCE IF EXISTS " + p + "tokens",
		"DROP FUNCTION IF EXISTS " + p + "lease, " + p + "enqueue",
	} {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("dropping the example's tables: %w", err)
		}
	}
	return nil
}
