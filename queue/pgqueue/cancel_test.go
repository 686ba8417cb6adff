package pgqueue_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
)

// countingConnector counts the connections database/sql opens.
type countingConnector struct {
	driver.Connector
	opened atomic.Int64
}

func (c *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c.opened.Add(1)
	return c.Connector.Connect(ctx)
}

// Real-time test: TestCanceledDequeuesKeepConnections (the point is real
// statements on a real server cut by real deadlines).

// TestCanceledDequeuesKeepConnections: Dequeues whose contexts end at
// every point of the call, while jobs are ready, cost no connection: a
// statement canceled midway makes the pgx driver close its connection
// (and the server's backend runs on until it notices), so a worker whose
// Dequeues end often would open one for each, and past max_connections
// every client of the server is refused ("too many clients"). pgqueue
// lets each statement finish on a context of its own. No job stays
// leased, and none has an attempt counted.
func TestCanceledDequeuesKeepConnections(t *testing.T) {
	cfg, err := pgx.ParseConfig(testenv.PGPrimaryDSN(t))
	require.NoError(t, err)
	conn := &countingConnector{Connector: stdlib.GetConnector(*cfg)}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { _ = db.Close() })
	q := newQueue(t, db, testPrefix(t, db), pgqueue.Config{}, true)
	ctx := t.Context()
	const ready, tries = 10, 300
	for range ready {
		_, err := q.Enqueue(ctx, queue.Job{Queue: "c", Type: "t"})
		require.NoError(t, err)
	}
	// How long a Dequeue takes here, to walk the deadlines over it.
	var times []time.Duration
	for range 7 {
		start := time.Now()
		d, err := q.Dequeue(ctxFor(t, 5*time.Second), []string{"c"}, time.Minute)
		require.NoError(t, err)
		times = append(times, time.Since(start))
		require.NoError(t, d.Release(ctx))
	}
	slices.Sort(times)
	took := times[len(times)/2]
	opened := conn.opened.Load()
	canceled := 0
	for i := range tries {
		dctx, cancel := context.WithTimeout(ctx, took*time.Duration(i%60)/40)
		d, err := q.Dequeue(dctx, []string{"c"}, time.Minute)
		cancel()
		if err != nil {
			require.True(t, errors.Is(err, context.DeadlineExceeded), "try %d: %v", i, err)
			canceled++
			continue
		}
		require.Equal(t, 1, d.Attempt, "a canceled Dequeue counted an attempt")
		require.NoError(t, d.Release(ctx))
	}
	more := conn.opened.Load() - opened
	t.Logf("%d of %d Dequeues ended by their deadline (0 to 1.5 × %v); connections opened meanwhile: %d; open at the end: %d",
		canceled, tries, took, more, db.Stats().OpenConnections)
	require.Positive(t, canceled, "no Dequeue ended by its deadline: the test tests nothing")
	require.LessOrEqual(t, more, int64(3), "canceled Dequeues opened %d connections", more)
	for range ready {
		d, err := q.Dequeue(ctxFor(t, 5*time.Second), []string{"c"}, time.Minute)
		require.NoError(t, err, "a job stayed leased to a canceled Dequeue")
		require.Equal(t, 1, d.Attempt)
		require.NoError(t, d.Ack(ctx, nil))
	}
}
