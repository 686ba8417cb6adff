package replica_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/replica/replicatest"
)

// sqlDB is the method set of *sql.DB that *replica.DB has, with *sql.DB's
// own signatures: code written against it takes either.
type sqlDB interface {
	Exec(query string, args ...any) (sql.Result, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	Query(query string, args ...any) (*sql.Rows, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRow(query string, args ...any) *sql.Row
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	Prepare(query string) (*sql.Stmt, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	Begin() (*sql.Tx, error)
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
	Ping() error
	PingContext(ctx context.Context) error
	Conn(ctx context.Context) (*sql.Conn, error)
	Close() error
}

// dbtx is the interface sqlc generates (emit_interface off, the default
// database/sql driver): New(db DBTX) *Queries.
type dbtx interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
	PrepareContext(context.Context, string) (*sql.Stmt, error)
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

var (
	_ sqlDB = (*sql.DB)(nil)
	_ sqlDB = (*replica.DB)(nil)
	_ dbtx  = (*replica.DB)(nil)
	_ dbtx  = (*sql.Tx)(nil) // sqlc's WithTx(tx), inside BeginTxFunc
)

// renameUser is code written against *sql.DB: it takes the interface
// above, and a *sql.Tx from its BeginTx.
func renameUser(db sqlDB, name string) (ranOn string, err error) {
	tx, err := db.Begin()
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback() }()
	if ranOn, err = inTx(tx, name); err != nil {
		return "", err
	}
	return ranOn, tx.Commit()
}

func inTx(tx *sql.Tx, name string) (string, error) {
	if _, err := tx.Exec("UPDATE users SET name = $1", name); err != nil {
		return "", err
	}
	var node string
	return node, tx.QueryRow("SELECT name FROM users").Scan(&node)
}

// TestDropInForSQLDB runs the same code over a bare *sql.DB and over
// *replica.DB: each call without a context routes as its Context variant.
func TestDropInForSQLDB(t *testing.T) {
	bubble(t, replica.Config{}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		d := r.DB()
		on, err := renameUser(topo.DB("p"), "Ada")
		require.NoError(t, err)
		require.Equal(t, "p", on)
		on, err = renameUser(d, "Ada")
		require.NoError(t, err)
		require.Equal(t, "p", on, "Begin is a read-write transaction on the primary")

		var name string
		require.NoError(t, d.QueryRow("SELECT name FROM users").Scan(&name))
		require.NotEqual(t, "p", name, "QueryRow of a read goes to a replica")
		require.NoError(t, d.QueryRow("INSERT INTO users VALUES (1) RETURNING name").Scan(&name))
		require.Equal(t, "p", name, "QueryRow of a write goes to the primary")

		rows, err := d.Query("SELECT name FROM users")
		require.NoError(t, err)
		require.True(t, rows.Next())
		require.NoError(t, rows.Scan(&name))
		require.NoError(t, rows.Close())
		require.NotEqual(t, "p", name, "Query of a read goes to a replica")

		_, err = d.Exec("DELETE FROM sessions")
		require.NoError(t, err)
		require.Contains(t, topo.Served("p"), "DELETE FROM sessions", "Exec runs on the primary")

		s, err := d.Prepare("SELECT name FROM users")
		require.NoError(t, err)
		require.NoError(t, s.QueryRow().Scan(&name))
		require.NoError(t, s.Close())
		require.NotEqual(t, "p", name, "Prepare of a read binds to a replica")

		require.NoError(t, d.Ping())

		c, err := d.Conn(t.Context())
		require.NoError(t, err)
		require.NoError(t, c.QueryRowContext(t.Context(), "SELECT pg_advisory_lock(1)").Scan(&name))
		require.NoError(t, c.Close())
		require.Equal(t, "p", name, "Conn is a connection of the primary")
	})
}

func TestDropInWithoutPrimary(t *testing.T) {
	bubble(t, replica.Config{}, func(t *testing.T, topo *replicatest.Topology, r *replica.Router) {
		topo.SetDown("p", true)
		wait(replica.DefaultFailAfter * interval)
		d := r.DB()
		_, err := d.Begin()
		require.ErrorIs(t, err, replica.ErrNoPrimary)
		_, err = d.Conn(t.Context())
		require.ErrorIs(t, err, replica.ErrNoPrimary)
		_, err = d.Exec("UPDATE t SET v = 1")
		require.ErrorIs(t, err, replica.ErrNoPrimary)
		require.ErrorIs(t, d.Ping(), replica.ErrNoPrimary)
		var name string
		require.NoError(t, d.QueryRow("SELECT 1").Scan(&name), "reads carry on on the replicas")
		require.NotEqual(t, "p", name)
	})
}

func TestDropInAfterClose(t *testing.T) {
	topo := replicatest.New(t, "p", "r1")
	r, err := replica.New(replica.Config{}, topo.Nodes()...)
	require.NoError(t, err)
	d := r.DB()
	require.NoError(t, d.Close())
	require.NoError(t, d.Close(), "Close is idempotent")
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"Begin":          func() error { _, err := d.Begin(); return err },
		"BeginTx (read)": func() error { _, err := d.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}); return err },
		"BeginTxFunc":    func() error { return d.BeginTxFunc(ctx, nil, func(*sql.Tx) error { return nil }) },
		"Conn":           func() error { _, err := d.Conn(ctx); return err },
		"Query":          func() error { _, err := d.Query("SELECT 1"); return err },
		"Exec":           func() error { _, err := d.Exec("UPDATE t SET v = 1"); return err },
		"Prepare":        func() error { _, err := d.Prepare("SELECT 1"); return err },
		"Ping":           d.Ping,
	} {
		require.ErrorIs(t, call(), replica.ErrClosed, name)
	}
	require.NoError(t, topo.DB("p").Ping(), "Close leaves the pools open")
}
