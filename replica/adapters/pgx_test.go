package adapters_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/replica"
)

// A service that holds a pgxpool.Pool per database gives each to the
// Router through pgx's database/sql adapter, stdlib.OpenDBFromPool: the
// connections stay the pgxpool's (the *sql.DB keeps none idle), and code
// written against *sql.DB, sqlc's included, runs on r.DB(). Code that
// calls the pgxpool directly (pgx's own Query, CopyFrom, Batch) is not
// routed: give it r.Writer or r.Reader's choice by name, or keep it on
// the primary's pool.
func Example_pgxPool() {
	ctx := context.Background()
	primaryPool, err := pgxpool.New(ctx, os.Getenv("SCALEOUT_PG_PRIMARY_DSN"))
	if err != nil {
		return
	}
	defer primaryPool.Close()
	standbyPool, err := pgxpool.New(ctx, os.Getenv("SCALEOUT_PG_REPLICA_DSN"))
	if err != nil {
		return
	}
	defer standbyPool.Close()

	r, err := replica.New(replica.Config{Probe: new(replica.PostgreSQL), MaxLag: 5 * time.Second},
		replica.Node{Name: "pg-a", DB: stdlib.OpenDBFromPool(primaryPool)},
		replica.Node{Name: "pg-b", DB: stdlib.OpenDBFromPool(standbyPool)})
	if err != nil {
		return
	}
	defer r.Close()
	db := r.DB()

	// A transaction whose commit the request's next reads must see: run
	// it with BeginTxFunc, which records the commit's WAL position.
	req := replica.Track(ctx)
	_ = db.BeginTxFunc(req, nil, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(req, "UPDATE accounts SET balance = balance - 10 WHERE id = 1")
		return err
	})
	var balance int
	_ = db.QueryRowContext(req, "SELECT balance FROM accounts WHERE id = 1").Scan(&balance)
}

func TestPgxPool(t *testing.T) {
	ctx := t.Context()
	pool := func(dsn string) *sql.DB {
		p, err := pgxpool.New(ctx, dsn)
		require.NoError(t, err)
		t.Cleanup(p.Close)
		db := stdlib.OpenDBFromPool(p)
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	r, err := replica.New(replica.Config{Probe: new(replica.PostgreSQL), ProbeInterval: 100 * time.Millisecond},
		replica.Node{Name: "b", DB: pool(testenv.PGReplicaDSN(t))},
		replica.Node{Name: "a", DB: pool(testenv.PGPrimaryDSN(t))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	db := r.DB()
	require.NoError(t, db.PingContext(ctx))

	accounts := table(t, "scaleout_pgx")
	_, err = db.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %q (id int PRIMARY KEY, balance int NOT NULL)", accounts))
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, fmt.Sprintf("INSERT INTO %q VALUES (1, 1000)", accounts))
	require.NoError(t, err)

	var standby bool
	for range 10 {
		require.NoError(t, db.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&standby))
		require.True(t, standby, "reads land on the standby's pgxpool")
	}
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	require.NoError(t, tx.QueryRowContext(ctx, "SELECT pg_is_in_recovery()").Scan(&standby))
	require.False(t, standby, "a read-write transaction runs on the primary's pgxpool")
	require.NoError(t, tx.Rollback())

	// BeginTxFunc records each commit's WAL position: the tracked read
	// right after sees it, from whichever node serves it, and the mark
	// carries a position, not a window.
	for i := range 30 {
		req := replica.Track(ctx)
		require.NoError(t, db.BeginTxFunc(req, nil, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(req, fmt.Sprintf("UPDATE %q SET balance = $1 WHERE id = 1", accounts), i)
			return err
		}))
		var balance int
		require.NoError(t, db.QueryRowContext(req, fmt.Sprintf("SELECT balance FROM %q WHERE id = 1", accounts)).Scan(&balance))
		require.Equal(t, i, balance, "request %d reads its committed transaction", i)
		mark, _ := replica.MarkOf(req)
		require.Positive(t, mark.Position, "the commit's WAL position")
		require.True(t, mark.Until.IsZero(), "a known position opens no window")
	}
}
