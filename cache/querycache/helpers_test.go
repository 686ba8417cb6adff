package querycache_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/querycache"
	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/internal/testenv"
)

// store is one kind of cache the tests run on.
type store struct {
	name string
	new  func(t testing.TB) cache.ObjectCache
}

func newMemory(t testing.TB) *cache.Memory {
	m, err := cache.NewMemory(cache.MemoryConfig{})
	require.NoError(t, err)
	return m
}

var stores = []store{
	{"memory", func(t testing.TB) cache.ObjectCache { return newMemory(t) }},
	{"redis", func(t testing.TB) cache.ObjectCache {
		c, err := rediscache.New(testenv.RedisClient(t), rediscache.Config{Prefix: testenv.Prefix(t)})
		require.NoError(t, err)
		return c
	}},
	// plain hides Memory's Add, CompareAndSwap, GetMulti and SetMulti:
	// versions are created with Set, read and bumped key by key.
	{"plain", func(t testing.TB) cache.ObjectCache { return plain{newMemory(t)} }},
}

type plain struct{ c cache.ObjectCache }

func (p plain) Get(ctx context.Context, k string) ([]byte, error) { return p.c.Get(ctx, k) }
func (p plain) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	return p.c.Set(ctx, k, v, ttl)
}
func (p plain) Delete(ctx context.Context, keys ...string) error { return p.c.Delete(ctx, keys...) }

// failing wraps a Memory; its reads and writes fail while the flags say so.
type failing struct {
	*cache.Memory
	failReads, failWrites atomic.Bool
}

var errDown = errors.New("cache is down")

func (f *failing) Get(ctx context.Context, k string) ([]byte, error) {
	if f.failReads.Load() {
		return nil, errDown
	}
	return f.Memory.Get(ctx, k)
}

func (f *failing) GetMulti(ctx context.Context, keys []string) (map[string][]byte, error) {
	if f.failReads.Load() {
		return nil, errDown
	}
	return f.Memory.GetMulti(ctx, keys)
}

func (f *failing) Set(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if f.failWrites.Load() {
		return errDown
	}
	return f.Memory.Set(ctx, k, v, ttl)
}

func (f *failing) SetMulti(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	if f.failWrites.Load() {
		return errDown
	}
	return f.Memory.SetMulti(ctx, items, ttl)
}

func (f *failing) Add(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if f.failWrites.Load() {
		return errDown
	}
	return f.Memory.Add(ctx, k, v, ttl)
}

func (f *failing) CompareAndSwap(ctx context.Context, k string, old, v []byte, ttl time.Duration) error {
	if f.failWrites.Load() {
		return errDown
	}
	return f.Memory.CompareAndSwap(ctx, k, old, v, ttl)
}

func (f *failing) Delete(ctx context.Context, keys ...string) error {
	if f.failWrites.Load() {
		return errDown
	}
	return f.Memory.Delete(ctx, keys...)
}

// counting counts the queries that reach the database.
type counting struct {
	q querycache.Querier
	n atomic.Int64
}

func (c *counting) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	c.n.Add(1)
	return c.q.QueryContext(ctx, query, args...)
}

func randHex(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// openPG opens the shared PostgreSQL primary.
func openPG(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", testenv.PGPrimaryDSN(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.PingContext(t.Context()))
	return db
}

// newTable creates a table (id int primary key, v text) with a name of its
// own, dropped at the end of the test.
func newTable(t testing.TB, db *sql.DB) string {
	t.Helper()
	name := "qc_test_" + randHex(t)
	_, err := db.ExecContext(t.Context(), "create table "+name+" (id int primary key, v text not null)")
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, "drop table if exists "+name)
	})
	return name
}

// scanStrings reads the first column of every row.
func scanStrings(rows *sql.Rows) ([]string, error) {
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// fakeDriver answers every query with one row of one column, "hello",
// and counts the queries: enough for benchmarks without a server.
type fakeDriver struct{ queries atomic.Int64 }

var fake = &fakeDriver{}

func init() { sql.Register("querycache-fake", fake) }

func (d *fakeDriver) Open(string) (driver.Conn, error) { return fakeConn{d}, nil }

type fakeConn struct{ d *fakeDriver }

func (fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("fake: no prepare") }
func (fakeConn) Close() error                        { return nil }
func (fakeConn) Begin() (driver.Tx, error)           { return nil, errors.New("fake: no transactions") }
func (c fakeConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	c.d.queries.Add(1)
	return &fakeRows{}, nil
}

type fakeRows struct{ done bool }

func (*fakeRows) Columns() []string { return []string{"v"} }
func (*fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = "hello"
	return nil
}
