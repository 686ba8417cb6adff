package pgqueue_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
	"github.com/scaleout/scaleout/queue/queuetest"
)

// testPrefix returns a fresh table prefix, so that concurrent test runs
// on the shared server never see each other's jobs; t.Cleanup drops its
// tables.
func testPrefix(t testing.TB, db *sql.DB) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := "t" + hex.EncodeToString(b[:]) + "_"
	t.Cleanup(func() { dropSchema(db, p) })
	return p
}

func dropSchema(db *sql.DB, p string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []string{
		"DROP TABLE IF EXISTS " + p + "jobs, " + p + "queues, " + p + "uniq, " + p + "totals CASCADE",
		"DROP SEQUENCE IF EXISTS " + p + "tokens",
		"DROP FUNCTION IF EXISTS " + p + "lease(text, bigint)",
		"DROP FUNCTION IF EXISTS " + p + "enqueue(text, text, text, bytea, bytea, smallint, timestamptz, integer, bigint, bigint, text, bigint, text)",
	} {
		_, _ = db.ExecContext(ctx, s)
	}
}

// newQueue returns a Queue on db with the kit's backoff, on the tables
// of prefix, which migrate creates.
func newQueue(t testing.TB, db pgqueue.DB, prefix string, cfg pgqueue.Config, migrate bool) *pgqueue.Queue {
	t.Helper()
	cfg.Prefix = prefix
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return 20 * time.Millisecond }
	}
	q, err := pgqueue.New(db, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	if migrate {
		require.NoError(t, q.Migrate(context.Background()))
	}
	return q
}

func TestConformance(t *testing.T) {
	db := testenv.PostgresDB(t, testenv.PGPrimaryDSN(t))
	prefix := testPrefix(t, db)
	newQueue(t, db, prefix, pgqueue.Config{}, true)
	queuetest.Run(t, func(t *testing.T) queue.JobQueue {
		return newQueue(t, db, prefix, pgqueue.Config{}, false)
	})
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func status(t testing.TB, q *pgqueue.Queue, id queue.JobID) queue.JobInfo {
	t.Helper()
	in, err := q.Status(context.Background(), id)
	require.NoError(t, err)
	return in
}
