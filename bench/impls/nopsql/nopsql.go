// Package nopsql is an in-memory database/sql driver for benchmarks: every
// query answers one row of one int64 column (1), every Exec one row
// affected, with no I/O and as few allocations as the driver interfaces
// allow, so that a benchmark over it measures database/sql's own cost
// plus whatever sits in front of the *sql.DB (a routing layer).
//
// It implements the context interfaces database/sql prefers
// (QueryerContext, ExecerContext, NamedValueChecker), so statements run
// without a prepare step; each connection reuses one Rows value, as
// database/sql closes a connection's rows before handing it out again.
package nopsql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
)

// Open returns a pool over a nopsql Connector, keeping up to maxIdle idle
// connections so that parallel benchmarks do not open and close
// connections as they go.
func Open(maxIdle int) *sql.DB {
	db := sql.OpenDB(Connector{})
	db.SetMaxIdleConns(maxIdle)
	return db
}

// Connector is a driver.Connector of nopsql connections.
type Connector struct{}

// Connect implements driver.Connector.
func (Connector) Connect(context.Context) (driver.Conn, error) { return new(Conn), nil }

// Driver implements driver.Connector.
func (Connector) Driver() driver.Driver { return Driver{} }

// Driver is the nopsql driver.Driver; the name is ignored.
type Driver struct{}

// Open implements driver.Driver.
func (Driver) Open(string) (driver.Conn, error) { return new(Conn), nil }

// Conn is one nopsql connection.
type Conn struct {
	rows Rows
	stmt Stmt
}

var (
	_ driver.Conn               = (*Conn)(nil)
	_ driver.QueryerContext     = (*Conn)(nil)
	_ driver.ExecerContext      = (*Conn)(nil)
	_ driver.ConnPrepareContext = (*Conn)(nil)
	_ driver.ConnBeginTx        = (*Conn)(nil)
	_ driver.NamedValueChecker  = (*Conn)(nil)
	_ driver.Pinger             = (*Conn)(nil)
)

// Prepare implements driver.Conn.
func (c *Conn) Prepare(string) (driver.Stmt, error) { c.stmt.c = c; return &c.stmt, nil }

// PrepareContext implements driver.ConnPrepareContext.
func (c *Conn) PrepareContext(context.Context, string) (driver.Stmt, error) {
	c.stmt.c = c
	return &c.stmt, nil
}

// Close implements driver.Conn.
func (c *Conn) Close() error { return nil }

// Begin implements driver.Conn.
func (c *Conn) Begin() (driver.Tx, error) { return tx{}, nil }

// BeginTx implements driver.ConnBeginTx.
func (c *Conn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) { return tx{}, nil }

// QueryContext implements driver.QueryerContext: one row, one column.
func (c *Conn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	c.rows.done = false
	return &c.rows, nil
}

// ExecContext implements driver.ExecerContext: one row affected.
func (c *Conn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(1), nil
}

// CheckNamedValue implements driver.NamedValueChecker: every argument is
// taken as it is, with no conversion.
func (c *Conn) CheckNamedValue(*driver.NamedValue) error { return nil }

// Ping implements driver.Pinger.
func (c *Conn) Ping(context.Context) error { return nil }

type tx struct{}

func (tx) Commit() error   { return nil }
func (tx) Rollback() error { return nil }

// Stmt is a prepared nopsql statement; it answers like Conn.
type Stmt struct{ c *Conn }

// Close implements driver.Stmt.
func (s *Stmt) Close() error { return nil }

// NumInput implements driver.Stmt: any number of arguments.
func (s *Stmt) NumInput() int { return -1 }

// Exec implements driver.Stmt.
func (s *Stmt) Exec([]driver.Value) (driver.Result, error) { return driver.RowsAffected(1), nil }

// Query implements driver.Stmt.
func (s *Stmt) Query([]driver.Value) (driver.Rows, error) {
	return s.c.QueryContext(context.Background(), "", nil)
}

// ExecContext implements driver.StmtExecContext.
func (s *Stmt) ExecContext(context.Context, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(1), nil
}

// QueryContext implements driver.StmtQueryContext.
func (s *Stmt) QueryContext(ctx context.Context, _ []driver.NamedValue) (driver.Rows, error) {
	return s.c.QueryContext(ctx, "", nil)
}

// CheckNamedValue implements driver.NamedValueChecker.
func (s *Stmt) CheckNamedValue(*driver.NamedValue) error { return nil }

// Rows is the one-row, one-column answer of every query.
type Rows struct{ done bool }

var columns = []string{"v"}

// Columns implements driver.Rows.
func (r *Rows) Columns() []string { return columns }

// Close implements driver.Rows.
func (r *Rows) Close() error { r.done = true; return nil }

// Next implements driver.Rows: the row (1), then io.EOF.
func (r *Rows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	if len(dest) != 1 {
		return errors.New("nopsql: one column")
	}
	r.done = true
	dest[0] = int64(1) // small integers box without allocating
	return nil
}
