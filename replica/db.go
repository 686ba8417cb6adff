package replica

import (
	"context"
	"database/sql"
	"database/sql/driver"
)

// DB is a drop-in for *sql.DB in code that runs statements: it has
// *sql.DB's Exec, Query, QueryRow, Prepare, Begin, Ping, their Context
// variants, Conn and Close, with the same signatures and result types
// (BeginTx returns a *sql.Tx), so a service swaps its *sql.DB for r.DB()
// in one line, and sqlc's DBTX, GORM's ConnPool and similar interfaces
// accept it. It routes each call:
// Exec, read-write transactions, Conn and statements that write go to the
// primary; Query and QueryRow of a read-only statement, and read-only
// transactions, go to a replica fit for the context's reads. Writes
// through a Track context are recorded for read-your-writes.
//
// A read that fails on a broken connection before returning rows is
// retried once, on another fit node; writes are never retried (they may
// have been applied).
type DB struct{ r *Router }

// DB returns the Router as a drop-in for *sql.DB.
func (r *Router) DB() *DB { return &DB{r: r} }

// Router returns the Router behind d.
func (d *DB) Router() *Router { return d.r }

// ExecContext runs query on the primary.
func (d *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	m, err := d.r.writer(ctx)
	if err != nil {
		return nil, err
	}
	res, err := m.DB.ExecContext(ctx, query, args...)
	if err != nil {
		d.r.suspect(err)
		return nil, err
	}
	d.r.wrote(ctx, m, true)
	return res, nil
}

// QueryContext runs query on a fit replica when it is read-only (see the
// package doc), else on the primary.
func (d *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if !d.r.classes.readOnly(query) {
		m, err := d.r.writer(ctx)
		if err != nil {
			return nil, err
		}
		rows, err := m.DB.QueryContext(ctx, query, args...)
		if err != nil {
			d.r.suspect(err)
			return nil, err
		}
		// The statement commits as its rows are sent: its position is not
		// known yet, so the read-your-writes window covers it.
		d.r.wrote(ctx, m, false)
		return rows, nil
	}
	return read(ctx, d.r, func(db *sql.DB) (*sql.Rows, error) { return db.QueryContext(ctx, query, args...) })
}

// read runs q on a node chosen for a read, and once more on another when
// the first failed on a broken connection.
func read[T any](ctx context.Context, r *Router, q func(*sql.DB) (T, error)) (T, error) {
	var zero T
	for attempt := 0; ; attempt++ {
		m, c, err := r.reader(ctx)
		if err != nil {
			return zero, err
		}
		res, err := q(m.DB)
		c.Done(err)
		if err == nil {
			return res, nil
		}
		r.suspect(err)
		if attempt == 1 || !brokenConn(err) || ctx.Err() != nil {
			return zero, err
		}
	}
}

// QueryRowContext is QueryContext for at most one row; its errors show at
// Scan, as *sql.DB's do. A read whose query failed on a broken connection
// is retried once on another node, as QueryContext's is; an error met
// while scanning the row is not.
func (d *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if !d.r.classes.readOnly(query) {
		m, err := d.r.writer(ctx)
		if err != nil {
			return errRow(ctx, err)
		}
		row := m.DB.QueryRowContext(ctx, query, args...)
		d.r.suspect(row.Err())
		d.r.wrote(ctx, m, false)
		return row
	}
	row, err := read(ctx, d.r, func(db *sql.DB) (*sql.Row, error) {
		row := db.QueryRowContext(ctx, query, args...)
		return row, row.Err()
	})
	if err != nil {
		return errRow(ctx, err)
	}
	return row
}

// PrepareContext prepares query on the node it would run on now: the
// primary for a statement that writes, a fit replica for a read. A
// *sql.Stmt stays bound to that node's pool, so prepare read statements
// per request rather than once per process; or skip PrepareContext, as
// pgx already caches prepared statements per connection.
func (d *DB) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if !d.r.classes.readOnly(query) {
		m, err := d.r.writer(ctx)
		if err != nil {
			return nil, err
		}
		stmt, err := m.DB.PrepareContext(ctx, query)
		d.r.suspect(err)
		return stmt, err
	}
	return read(ctx, d.r, func(db *sql.DB) (*sql.Stmt, error) { return db.PrepareContext(ctx, query) })
}

// errRow returns a *sql.Row whose Scan fails with err. *sql.Row cannot be
// built outside database/sql, so it comes from a pool whose connector
// fails with err; that pool is closed at once, the error staying in the
// row.
func errRow(ctx context.Context, err error) *sql.Row {
	db := sql.OpenDB(failingConnector{err})
	defer func() { _ = db.Close() }()
	return db.QueryRowContext(context.WithoutCancel(ctx), "")
}

type failingConnector struct{ err error }

func (c failingConnector) Connect(context.Context) (driver.Conn, error) { return nil, c.err }
func (c failingConnector) Driver() driver.Driver                        { return failingDriver(c) }

type failingDriver struct{ err error }

func (d failingDriver) Open(string) (driver.Conn, error) { return nil, d.err }

// PingContext checks that the primary answers; without a primary it
// returns ErrNoPrimary.
func (d *DB) PingContext(ctx context.Context) error {
	m, err := d.r.writer(ctx)
	if err != nil {
		return err
	}
	err = m.DB.PingContext(ctx)
	d.r.suspect(err)
	return err
}

// Close stops the Router's probes; it closes none of the nodes' pools.
func (d *DB) Close() error { return d.r.Close() }

// wrote records a write on m in ctx's tracker: at the primary's current
// position when known is set and the Probe can tell it, else in the
// window.
func (r *Router) wrote(ctx context.Context, m *member, known bool) {
	t := trackerFrom(ctx)
	if t == nil {
		return
	}
	if pp, ok := r.cfg.Probe.(PositionProbe); ok && known {
		if pos, err := pp.WritePosition(ctx, m.DB); err == nil && pos > 0 {
			t.wrote(pos, 0)
			return
		}
	}
	t.wrote(0, r.cfg.ReadYourWrites)
}
