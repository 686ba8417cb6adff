package failover_test

// Real-time tests in this file: TestFenceTx (row locks of a real
// PostgreSQL: an older transaction waits for a newer one).

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/internal/testenv"
)

func openPG(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", testenv.PGPrimaryDSN(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, db.PingContext(ctx))
	require.NoError(t, failover.CreateFenceTable(ctx, db))
	return db
}

// TestFenceTx: a leader's write, in a transaction that FenceTx opens,
// commits only while no newer token has fenced the resource.
func TestFenceTx(t *testing.T) {
	db := openPG(t)
	ctx := t.Context()
	var b [6]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	resource := testenv.Prefix(t) + "billing"
	table := "scaleout_fence_test_" + suffix
	_, err := db.ExecContext(ctx, `CREATE TABLE `+table+` (id int PRIMARY KEY, writer bigint NOT NULL)`)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = db.ExecContext(context.Background(), `DROP TABLE IF EXISTS `+table)
		_, _ = db.ExecContext(context.Background(), `DELETE FROM scaleout_fence WHERE resource = $1`, resource)
	})

	write := func(token uint64) error {
		tx, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback() }()
		if err := failover.FenceTx(ctx, tx, resource, token); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (id, writer) VALUES (1, $1)
ON CONFLICT (id) DO UPDATE SET writer = EXCLUDED.writer`, int64(token)); err != nil {
			return err
		}
		return tx.Commit()
	}
	writer := func() uint64 {
		var w int64
		require.NoError(t, db.QueryRowContext(ctx, `SELECT writer FROM `+table+` WHERE id = 1`).Scan(&w))
		return uint64(w)
	}

	require.NoError(t, write(3))
	require.NoError(t, write(3), "the same leader writes again")
	require.NoError(t, write(7))
	require.ErrorIs(t, write(3), failover.ErrStaleToken)
	require.Equal(t, uint64(7), writer())

	// An old leader's transaction that is open when a newer one fences
	// waits for it and then fails.
	old, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = old.Rollback() }()
	newer, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = newer.Rollback() }()
	require.NoError(t, failover.FenceTx(ctx, newer, resource, 9))
	done := make(chan error, 1)
	go func() { done <- failover.FenceTx(ctx, old, resource, 8) }()
	select {
	case err := <-done:
		t.Fatalf("the older transaction did not wait for the newer: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, newer.Commit())
	select {
	case err := <-done:
		require.ErrorIs(t, err, failover.ErrStaleToken)
	case <-time.After(10 * time.Second):
		t.Fatal("the older transaction still waits")
	}

	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	err = failover.FenceTx(ctx, tx, resource, 1<<63)
	require.Error(t, err)
	require.False(t, errors.Is(err, failover.ErrStaleToken))
	_ = tx.Rollback()
}
