package replica

import (
	"context"
	"database/sql"
)

// The methods of *sql.DB without a context, each its Context variant with
// context.Background(), routed the same way; and Conn. Together with
// db.go they make *DB a drop-in for code written against *sql.DB's
// statement methods: swap the *sql.DB for r.DB() (and a parameter's type
// for an interface both satisfy). What *DB has not are the pool knobs
// (SetMaxOpenConns, Stats, Driver…): each node's pool is the caller's, to
// tune on the *sql.DB given in its Node.

// Exec is ExecContext with context.Background().
func (d *DB) Exec(query string, args ...any) (sql.Result, error) {
	return d.ExecContext(context.Background(), query, args...)
}

// Query is QueryContext with context.Background().
func (d *DB) Query(query string, args ...any) (*sql.Rows, error) {
	return d.QueryContext(context.Background(), query, args...)
}

// QueryRow is QueryRowContext with context.Background().
func (d *DB) QueryRow(query string, args ...any) *sql.Row {
	return d.QueryRowContext(context.Background(), query, args...)
}

// Prepare is PrepareContext with context.Background().
func (d *DB) Prepare(query string) (*sql.Stmt, error) {
	return d.PrepareContext(context.Background(), query)
}

// Ping is PingContext with context.Background().
func (d *DB) Ping() error { return d.PingContext(context.Background()) }

// Conn returns a connection of ctx's primary (see Writer), for what must
// run on one session: advisory locks, SET, temporary tables. Its
// statements are not routed. The Router cannot see what is written
// through it, so in a Track context Conn sends the context's reads to the
// primary from then on, as BeginTx does.
func (d *DB) Conn(ctx context.Context) (*sql.Conn, error) {
	m, err := d.r.writer(ctx)
	if err != nil {
		return nil, err
	}
	c, err := m.DB.Conn(ctx)
	if err != nil {
		d.r.suspect(err)
		return nil, err
	}
	trackerFrom(ctx).pin(d.r.cfg.ReadYourWrites)
	return c, nil
}
