package querycache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/cache"
)

// Defaults of Config.
const (
	// DefaultPrefix starts the key of every cached result.
	DefaultPrefix = "qc:"
	// DefaultTTL is how long a result is kept when Config.TTL is zero.
	DefaultTTL = 5 * time.Minute
)

// ErrClosed is the answer of Query and QueryRow after Close. It is
// cache.ErrClosed.
var ErrClosed = cache.ErrClosed

// Config configures New. The zero value is valid; a negative TTL is an
// error wrapping cache.ErrInvalidConfig.
type Config[T any] struct {
	// TTL is how long a result is kept: the bound on staleness from
	// writes that do not Bump, and on the life of entries under old
	// versions (see the package documentation). Default DefaultTTL. Use
	// another Cache for results that need another TTL.
	TTL time.Duration
	// Prefix starts the key of every entry: Prefix + 64 hex digits.
	// Default DefaultPrefix.
	Prefix string
	// Namespace is hashed into every key. The scan function is not part
	// of a key, so one query text must always be scanned the same way
	// into a T: give Caches that scan the same query differently
	// different namespaces. The key includes T's type name already.
	Namespace string
	// Loader configures the cache.Loader that reads and fills entries:
	// codec, negative caching (QueryRow's no-row answer), stale-on-error,
	// local tier, timeouts.
	Loader cache.LoaderConfig[T]
}

// A Querier runs a query: *sql.DB, *sql.Tx and *sql.Conn are Queriers.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Cache caches the results of SQL queries, scanned into a T, under a key
// that hashes the query, its arguments and the versions of the tables it
// reads. It is safe for concurrent use.
type Cache[T any] struct {
	loader   *cache.Loader[T]
	ttl      time.Duration
	versions *Versions
	prefix   string
	header   string
	closed   atomic.Bool
}

// New returns a Cache that keeps its entries in c and reads table
// versions from v. c may be v's store or another one; v's must be shared
// by every process that writes the tables. A nil c or v, or a bad
// cfg.Loader, is an error wrapping cache.ErrInvalidConfig.
func New[T any](c cache.ObjectCache, v *Versions, cfg Config[T]) (*Cache[T], error) {
	if v == nil {
		return nil, fmt.Errorf("querycache: nil versions: %w", cache.ErrInvalidConfig)
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("querycache: negative TTL %v: %w", cfg.TTL, cache.ErrInvalidConfig)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	l, err := cache.NewLoader(c, cfg.Loader)
	if err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	return &Cache[T]{
		loader:   l,
		ttl:      cfg.TTL,
		versions: v,
		prefix:   cfg.Prefix,
		header:   "scaleout/querycache/v1\x00" + cfg.Namespace + "\x00" + typeName(reflect.TypeFor[T]()),
	}, nil
}

// Query answers query with scan's result over its rows: from the cache
// when an entry for the query, its args and the current versions of
// tables is there, else from db, storing the result for Config.TTL. scan
// reads the rows it is given (rows.Next, rows.Scan); Query closes them and
// checks rows.Err.
//
// tables must list every table the query reads: a write to a table not
// listed does not invalidate the entry. An argument that cannot be
// encoded canonically is an *ArgError, and no query runs. When the
// versions cannot be read (the cache is down) Query answers from db
// without caching. After Close, Query returns ErrClosed.
func (c *Cache[T]) Query(ctx context.Context, db Querier, tables []string, scan func(*sql.Rows) (T, error), query string, args ...any) (T, error) {
	return c.get(ctx, tagQuery, db, tables, scan, query, args)
}

// QueryRow is Query for one row: scan is called once, on the first row,
// after rows.Next. When the query returns no row, QueryRow fails with
// ErrNoRows (errors.Is matches sql.ErrNoRows and cache.ErrNotFound), which
// is cached for Config.Loader.NegativeTTL when that is set. Its entries
// never mix with Query's for the same query text.
func (c *Cache[T]) QueryRow(ctx context.Context, db Querier, tables []string, scan func(*sql.Rows) (T, error), query string, args ...any) (T, error) {
	v, err := c.get(ctx, tagQueryRow, db, tables, scan, query, args)
	if err != nil && errors.Is(err, cache.ErrNotFound) {
		return v, ErrNoRows
	}
	return v, err
}

// Key returns the key under which Query would look for query with args
// over tables now. It reads (and may create) the tables' versions, so it
// changes after every Bump of one of them.
func (c *Cache[T]) Key(ctx context.Context, tables []string, query string, args ...any) (string, error) {
	return c.key(ctx, tagQuery, tables, query, args)
}

// Stats returns the counters of the Cache's Loader.
func (c *Cache[T]) Stats() cache.Stats { return c.loader.Stats() }

// Close ends the Loader's invalidation subscription and waits for its
// background refreshes (see cache.Loader.Close); after it Query and
// QueryRow return ErrClosed. Close is idempotent and closes neither the
// cache nor the Versions, which Key keeps reading.
func (c *Cache[T]) Close() error {
	c.closed.Store(true)
	return c.loader.Close()
}

func (c *Cache[T]) key(ctx context.Context, mode byte, tables []string, query string, args []any) (string, error) {
	tables, err := normTables(tables)
	if err != nil {
		return "", err
	}
	vers, err := c.versions.Get(ctx, tables...)
	if err != nil {
		return "", err
	}
	return hashKey(c.prefix, c.header, mode, query, args, tables, vers)
}

func (c *Cache[T]) get(ctx context.Context, mode byte, db Querier, tables []string, scan func(*sql.Rows) (T, error), query string, args []any) (T, error) {
	var zero T
	if db == nil || scan == nil {
		return zero, fmt.Errorf("querycache: nil querier or scan function: %w", cache.ErrInvalidConfig)
	}
	if c.closed.Load() {
		return zero, ErrClosed // also on the fail-open path, which skips the Loader
	}
	tables, err := normTables(tables)
	if err != nil {
		return zero, err
	}
	load := func(ctx context.Context) (T, error) {
		return runQuery(ctx, mode, db, scan, query, args)
	}
	// The versions are read before the query runs: a result read before
	// a write's Bump is stored under the versions from before it.
	vers, verr := c.versions.Get(ctx, tables...)
	if verr != nil {
		// Without versions nothing may be cached: fail open to the
		// database, after checking the arguments all the same.
		if _, err := hashKey(c.prefix, c.header, mode, query, args, tables, make([]Version, len(tables))); err != nil {
			return zero, err
		}
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		return load(ctx)
	}
	key, err := hashKey(c.prefix, c.header, mode, query, args, tables, vers)
	if err != nil {
		return zero, err
	}
	return c.loader.Get(ctx, key, c.ttl, load)
}

// runQuery runs the query and scans its rows: all of them through scan
// for Query, the first one for QueryRow (no row is cache.ErrNotFound).
func runQuery[T any](ctx context.Context, mode byte, db Querier, scan func(*sql.Rows) (T, error), query string, args []any) (v T, err error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return v, err
	}
	defer func() {
		if cerr := rows.Close(); err == nil && cerr != nil {
			var zero T
			v, err = zero, cerr
		}
	}()
	if mode == tagQueryRow {
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return v, err
			}
			return v, cache.ErrNotFound
		}
	}
	v, err = scan(rows)
	if err != nil {
		return v, err
	}
	if err := rows.Err(); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// normTables returns tables sorted and without duplicates, copying them
// only when they are not so already.
func normTables(tables []string) ([]string, error) {
	if len(tables) == 0 {
		return nil, ErrNoTables
	}
	if err := checkTables(tables); err != nil {
		return nil, err
	}
	for i := 1; i < len(tables); i++ {
		if tables[i-1] >= tables[i] {
			s := slices.Clone(tables)
			slices.Sort(s)
			return slices.Compact(s), nil
		}
	}
	return tables, nil
}
