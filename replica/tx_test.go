package replica_test

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/replica/replicatest"
)

func TestBeginTxReturnsTheNodesTx(t *testing.T) {
	bubble(t, replica.Config{}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		ctx, d := t.Context(), r.DB()
		var tx *sql.Tx // the concrete type, for functions that take one
		tx, err := d.BeginTx(ctx, nil)
		require.NoError(t, err)
		on, err := inTx(tx, "Ada")
		require.NoError(t, err)
		require.Equal(t, "p", on, "a read-write transaction runs on the primary, reads included")
		require.NoError(t, tx.Commit())
		require.ErrorIs(t, tx.Commit(), sql.ErrTxDone)

		ro, err := d.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		require.NoError(t, err)
		var name string
		require.NoError(t, ro.QueryRowContext(ctx, "SELECT 1").Scan(&name))
		require.NotEqual(t, "p", name, "a read-only transaction runs on a replica")
		require.NoError(t, ro.Rollback())
	})
}

// A *sql.Tx does not say when it commits: a read-write BeginTx through a
// Track context keeps that context's reads on the primary, even once
// every replica has caught up, and a Mark taken later covers the window
// from when it is taken. Read-only transactions and untracked contexts
// are not pinned.
func TestBeginTxPinsATrackedContext(t *testing.T) {
	bubble(t, replica.Config{ReadYourWrites: 3 * time.Second}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		d := r.DB()
		ro := replica.Track(t.Context())
		tx, err := d.BeginTx(ro, &sql.TxOptions{ReadOnly: true})
		require.NoError(t, err)
		require.NoError(t, tx.Rollback())
		require.NotEqual(t, "p", node(t, ro, d, "SELECT 1"), "a read-only transaction pins nothing")

		untracked := t.Context()
		tx, err = d.BeginTx(untracked, nil)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		require.NotEqual(t, "p", node(t, untracked, d, "SELECT 1"))

		ctx := replica.Track(t.Context())
		tx, err = d.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, "UPDATE t SET v = 1")
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		wait(10 * time.Second) // far past the window and many probe rounds
		require.Equal(t, "p", node(t, ctx, d, "SELECT v FROM t"), "the commit was not seen: the context stays on the primary")

		taken := time.Now()
		mark, ok := replica.MarkOf(ctx)
		require.True(t, ok)
		require.Equal(t, taken.Add(3*time.Second), mark.Until, "the window runs from when the mark is taken")
		next := replica.TrackFrom(t.Context(), mark)
		require.Equal(t, "p", node(t, next, d, "SELECT v FROM t"))
		wait(3100 * time.Millisecond)
		require.NotEqual(t, "p", node(t, next, d, "SELECT v FROM t"), "the next request is pinned only for the window")
		require.Equal(t, "p", node(t, ctx, d, "SELECT v FROM t"))

		c, err := d.Conn(next)
		require.NoError(t, err)
		require.NoError(t, c.Close())
		require.Equal(t, "p", node(t, next, d, "SELECT v FROM t"), "a Conn pins as a transaction does")
	})
}

func TestBeginTxWithoutWindowPinsNothing(t *testing.T) {
	bubble(t, replica.Config{ReadYourWrites: -1}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		d, ctx := r.DB(), replica.Track(t.Context())
		tx, err := d.BeginTx(ctx, nil)
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		require.NotEqual(t, "p", node(t, ctx, d, "SELECT 1"), "ReadYourWrites < 0 disables the window, for transactions too")
		mark, _ := replica.MarkOf(ctx)
		require.Equal(t, replica.Mark{}, mark)
	})
}

// BeginTxFunc records the commit at the primary's position, so the
// tracked reads go to a replica that applied it rather than staying on
// the primary.
func TestBeginTxFuncRecordsTheCommit(t *testing.T) {
	bubble(t, replica.Config{}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		d := r.DB()
		topo.Pause("r1")
		topo.Pause("r2")
		ctx := replica.Track(t.Context())
		err := d.BeginTxFunc(ctx, nil, func(tx *sql.Tx) error {
			on, err := inTx(tx, "Ada")
			require.Equal(t, "p", on)
			require.NotEqual(t, "p", node(t, ctx, d, "SELECT v FROM t"), "before the commit nothing is recorded")
			return err
		})
		require.NoError(t, err)
		wait(interval)
		require.Equal(t, "p", node(t, ctx, d, "SELECT v FROM t"),
			"after the commit no replica has the write: the tracked read goes to the primary")
		mark, _ := replica.MarkOf(ctx)
		require.Positive(t, mark.Position, "the commit recorded the primary's position")
		require.True(t, mark.Until.IsZero(), "a known position opens no window")

		topo.Resume("r2")
		wait(interval)
		require.Equal(t, "r2", node(t, ctx, d, "SELECT v FROM t"), "once a replica applied the commit it serves the tracked reads")
	})
}

func TestBeginTxFuncRollsBack(t *testing.T) {
	bubble(t, replica.Config{}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		d, ctx := r.DB(), replica.Track(t.Context())
		primary, err := r.Writer(ctx)
		require.NoError(t, err)
		inUse := primary.Stats().InUse // the probe's own connection
		boom := errors.New("boom")
		err = d.BeginTxFunc(ctx, nil, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "UPDATE t SET v = 1")
			require.NoError(t, err)
			return boom
		})
		require.ErrorIs(t, err, boom)
		require.Equal(t, inUse, primary.Stats().InUse, "the connection went back to the pool")
		mark, _ := replica.MarkOf(ctx)
		require.Equal(t, replica.Mark{}, mark, "a rolled-back transaction records nothing")
		require.NotEqual(t, "p", node(t, ctx, d, "SELECT 1"))

		require.ErrorIs(t, d.BeginTxFunc(ctx, nil, func(tx *sql.Tx) error {
			require.NoError(t, tx.Rollback())
			return boom
		}), boom, "fn's own Rollback is not an error of BeginTxFunc's")

		require.PanicsWithValue(t, "fn panicked", func() {
			_ = d.BeginTxFunc(ctx, nil, func(*sql.Tx) error { panic("fn panicked") })
		})
		require.Equal(t, inUse, primary.Stats().InUse, "a panic in fn releases the connection")
	})
}

func TestBeginTxFuncReadOnly(t *testing.T) {
	bubble(t, replica.Config{}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		d, ctx := r.DB(), replica.Track(t.Context())
		var on string
		require.NoError(t, d.BeginTxFunc(ctx, &sql.TxOptions{ReadOnly: true}, func(tx *sql.Tx) error {
			return tx.QueryRowContext(ctx, "SELECT 1").Scan(&on)
		}))
		require.NotEqual(t, "p", on, "a read-only transaction runs on a replica")
		mark, _ := replica.MarkOf(ctx)
		require.Equal(t, replica.Mark{}, mark, "and records no write")
	})
}
