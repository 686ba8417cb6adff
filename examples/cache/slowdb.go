package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// slowdb is a tiny in-process database/sql driver, registered as
// "slowdb": a products table (id, name, price) and a reviews table
// (product_id, stars) held in maps, where every statement sleeps for the
// database's delay and is counted. It understands only the statements of
// this example (the constants below, whitespace aside) and answers
// anything else with an error; it has no transactions.
//
// The data source name names a database made by newSlowDB.

// The statements the example runs, valid on PostgreSQL as well.
const (
	sqlProduct  = `SELECT name, price FROM products WHERE id = $1`
	sqlReviews  = `SELECT count(*), coalesce(avg(stars)::float8, 0) FROM reviews WHERE product_id = $1`
	sqlSetPrice = `UPDATE products SET price = $1 WHERE id = $2`
)

func init() { sql.Register("slowdb", slowDriver{}) }

var (
	slowMu  sync.Mutex
	slowDBs = map[string]*slowDB{}
	slowSeq atomic.Uint64
)

// slowDB is one database.
type slowDB struct {
	delay   time.Duration
	queries atomic.Int64 // statements run, failed ones included

	mu       sync.RWMutex
	products map[int64]productRow
	reviews  map[int64][]int64 // product id -> stars
}

type productRow struct {
	name  string
	price int64 // cents
}

// newSlowDB makes a database of n products, with their reviews (see
// seedProduct), whose statements each take delay, and returns it with its
// data source name for sql.Open("slowdb", dsn). Forget it with
// dropSlowDB.
func newSlowDB(n int, delay time.Duration) (*slowDB, string) {
	d := &slowDB{delay: delay, products: map[int64]productRow{}, reviews: map[int64][]int64{}}
	for id := int64(1); id <= int64(n); id++ {
		name, price, stars := seedProduct(id)
		d.products[id] = productRow{name: name, price: price}
		d.reviews[id] = stars
	}
	dsn := fmt.Sprintf("slowdb-%d", slowSeq.Add(1))
	slowMu.Lock()
	slowDBs[dsn] = d
	slowMu.Unlock()
	return d, dsn
}

func dropSlowDB(dsn string) {
	slowMu.Lock()
	delete(slowDBs, dsn)
	slowMu.Unlock()
}

// seedProduct is the initial content of product id, the same in slowdb
// and in the PostgreSQL tables (see pgSeed).
func seedProduct(id int64) (name string, price int64, stars []int64) {
	name = fmt.Sprintf("product-%d", id)
	price = 1000 + (id*37)%9000
	for j := range id % 7 {
		stars = append(stars, 1+(id+j)%5)
	}
	return name, price, stars
}

// normalize folds runs of white space into one space, so that the
// statements may be written over several lines.
func normalize(q string) string { return strings.Join(strings.Fields(q), " ") }

type slowDriver struct{}

func (slowDriver) Open(dsn string) (driver.Conn, error) {
	slowMu.Lock()
	d := slowDBs[dsn]
	slowMu.Unlock()
	if d == nil {
		return nil, fmt.Errorf("slowdb: no database %q", dsn)
	}
	return &slowConn{db: d}, nil
}

// slowConn is a connection: it runs statements directly (QueryerContext,
// ExecerContext), and through Prepare for callers that prepare.
type slowConn struct{ db *slowDB }

var (
	_ driver.QueryerContext = (*slowConn)(nil)
	_ driver.ExecerContext  = (*slowConn)(nil)
)

func (c *slowConn) Prepare(query string) (driver.Stmt, error) {
	switch normalize(query) {
	case normalize(sqlProduct), normalize(sqlReviews), normalize(sqlSetPrice):
		return &slowStmt{c: c, query: query}, nil
	}
	return nil, fmt.Errorf("slowdb: unsupported statement %q", query)
}

func (c *slowConn) Close() error { return nil }

func (c *slowConn) Begin() (driver.Tx, error) {
	return nil, errors.New("slowdb: transactions are not supported")
}

func (c *slowConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.db.work(ctx); err != nil {
		return nil, err
	}
	q := normalize(query)
	switch q {
	case normalize(sqlProduct):
		id, err := intArgs(q, args, 1)
		if err != nil {
			return nil, err
		}
		c.db.mu.RLock()
		p, ok := c.db.products[id[0]]
		c.db.mu.RUnlock()
		r := &slowRows{cols: []string{"name", "price"}}
		if ok {
			r.rows = [][]driver.Value{{p.name, p.price}}
		}
		return r, nil
	case normalize(sqlReviews):
		id, err := intArgs(q, args, 1)
		if err != nil {
			return nil, err
		}
		c.db.mu.RLock()
		stars := c.db.reviews[id[0]]
		var sum int64
		for _, s := range stars {
			sum += s
		}
		n := int64(len(stars))
		c.db.mu.RUnlock()
		avg := 0.0
		if n > 0 {
			avg = float64(sum) / float64(n)
		}
		return &slowRows{cols: []string{"count", "coalesce"}, rows: [][]driver.Value{{n, avg}}}, nil
	case normalize(sqlSetPrice):
		return nil, fmt.Errorf("slowdb: %q is a statement without rows: use Exec", query)
	}
	return nil, fmt.Errorf("slowdb: unsupported query %q", query)
}

func (c *slowConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := c.db.work(ctx); err != nil {
		return nil, err
	}
	q := normalize(query)
	if q != normalize(sqlSetPrice) {
		return nil, fmt.Errorf("slowdb: unsupported statement %q", query)
	}
	v, err := intArgs(q, args, 2)
	if err != nil {
		return nil, err
	}
	price, id := v[0], v[1]
	c.db.mu.Lock()
	defer c.db.mu.Unlock()
	p, ok := c.db.products[id]
	if !ok {
		return driver.RowsAffected(0), nil
	}
	p.price = price
	c.db.products[id] = p
	return driver.RowsAffected(1), nil
}

// work counts a statement and takes the database's delay.
func (d *slowDB) work(ctx context.Context) error {
	d.queries.Add(1)
	t := time.NewTimer(d.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// intArgs returns the n integer arguments of a statement.
func intArgs(q string, args []driver.NamedValue, n int) ([]int64, error) {
	if len(args) != n {
		return nil, fmt.Errorf("slowdb: %q takes %d arguments, got %d", q, n, len(args))
	}
	out := make([]int64, n)
	for i, a := range args {
		v, ok := a.Value.(int64)
		if !ok {
			return nil, fmt.Errorf("slowdb: argument $%d of %q is a %T, want an integer", i+1, q, a.Value)
		}
		out[i] = v
	}
	return out, nil
}

type slowStmt struct {
	c     *slowConn
	query string
}

func (s *slowStmt) Close() error  { return nil }
func (s *slowStmt) NumInput() int { return -1 }

func (s *slowStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.c.ExecContext(context.Background(), s.query, named(args))
}

func (s *slowStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.c.QueryContext(context.Background(), s.query, named(args))
}

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

type slowRows struct {
	cols []string
	rows [][]driver.Value
}

func (r *slowRows) Columns() []string { return r.cols }
func (r *slowRows) Close() error      { return nil }

func (r *slowRows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	copy(dest, r.rows[0])
	r.rows = r.rows[1:]
	return nil
}
