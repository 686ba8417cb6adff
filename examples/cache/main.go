// Command cache puts a cache in front of a slow database, in the two
// patterns of package cache, and prints the database load and hit ratio
// of each:
//
//  1. reads: a Zipf-distributed workload (a few products are hot, most
//     are cold) of product pages, each assembled from two queries (the
//     product's row, and the count and average of its reviews), run three
//     ways: straight to the database; through cache/querycache, which
//     caches each query's result under a hash of the query, its arguments
//     and the versions of the tables it reads; and through cache/objects,
//     which caches whole pages, rebuilt by background workers;
//  2. writes: some prices change through Versions.Exec, which bumps the
//     products table's version after the UPDATE, so the query cache
//     answers the new price at once; the pages are invalidated with
//     Objects.Invalidate, so readers keep getting the old page (stale)
//     until a worker's rebuild lands, then the new one.
//
// With no flags it runs anywhere: the database is slowdb (slowdb.go), an
// in-process database/sql driver whose every statement sleeps -delay and
// is counted, and the cache is a cache.Memory. -redis addr keeps the
// caches in Redis instead; -pg dsn uses PostgreSQL as the database, in a
// schema of its own dropped at exit:
//
//	go run ./examples/cache
//	go run ./examples/cache -redis 127.0.0.1:6379 -pg postgres://user:pass@127.0.0.1:5432/db
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/objects"
	"github.com/scaleout/scaleout/cache/querycache"
	"github.com/scaleout/scaleout/cache/rediscache"
)

// config is what the flags set.
type config struct {
	Products int           // products in the database
	Reads    int           // page reads of each run
	Workers  int           // goroutines reading
	Zipf     float64       // Zipf exponent s (> 1) of the product popularity
	Delay    time.Duration // slowdb's time per statement
	Updates  int           // prices changed in part 2 (the hottest products)
	Redis    string        // Redis address; "" keeps the caches in memory
	PG       string        // PostgreSQL DSN; "" uses slowdb
}

func defaultConfig() config {
	return config{Products: 1000, Reads: 20000, Workers: 8, Zipf: 1.1, Delay: time.Millisecond, Updates: 3}
}

// quiet drops go-redis's own log lines (its dial retries): run reports
// an unreachable Redis itself.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func main() {
	cfg := defaultConfig()
	flag.IntVar(&cfg.Products, "products", cfg.Products, "products in the database")
	flag.IntVar(&cfg.Reads, "reads", cfg.Reads, "page reads in each run")
	flag.IntVar(&cfg.Workers, "workers", cfg.Workers, "goroutines reading")
	flag.Float64Var(&cfg.Zipf, "zipf", cfg.Zipf, "Zipf exponent of product popularity (> 1)")
	flag.DurationVar(&cfg.Delay, "delay", cfg.Delay, "time each slowdb statement takes")
	flag.IntVar(&cfg.Updates, "updates", cfg.Updates, "prices to change (of the hottest products)")
	flag.StringVar(&cfg.Redis, "redis", "", "Redis address for the caches (default: in memory)")
	flag.StringVar(&cfg.PG, "pg", "", "PostgreSQL DSN for the database (default: slowdb in memory)")
	flag.Parse()
	redis.SetLogger(quiet{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := run(ctx, os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "cache:", err)
		os.Exit(1)
	}
}

// ProductPage is what a reader wants: one product with its reviews.
type ProductPage struct {
	ID      int64
	Name    string
	Price   int64 // cents
	Reviews int64
	Stars   float64 // average, 0 without reviews
}

// product and reviewStats are the results of the two queries.
type product struct {
	Name  string
	Price int64
}

type reviewStats struct {
	Count int64
	Avg   float64
}

// db is the database, counting the statements sent to it.
type db struct {
	sql     *sql.DB
	queries atomic.Int64
}

func (d *db) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	d.queries.Add(1)
	return d.sql.QueryContext(ctx, query, args...)
}

func (d *db) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	d.queries.Add(1)
	return d.sql.ExecContext(ctx, query, args...)
}

// loadPage reads a page straight from the database: two queries.
func loadPage(ctx context.Context, d *db, id int64) (ProductPage, error) {
	rows, err := d.QueryContext(ctx, sqlProduct, id)
	if err != nil {
		return ProductPage{}, err
	}
	p, err := scanOne(rows, scanProduct)
	if err != nil {
		return ProductPage{}, fmt.Errorf("product %d: %w", id, err)
	}
	rows, err = d.QueryContext(ctx, sqlReviews, id)
	if err != nil {
		return ProductPage{}, err
	}
	r, err := scanOne(rows, scanReviews)
	if err != nil {
		return ProductPage{}, fmt.Errorf("reviews of %d: %w", id, err)
	}
	return page(id, p, r), nil
}

func page(id int64, p product, r reviewStats) ProductPage {
	return ProductPage{ID: id, Name: p.Name, Price: p.Price, Reviews: r.Count, Stars: r.Avg}
}

func scanOne[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) (T, error) {
	defer rows.Close()
	var zero T
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return zero, err
		}
		return zero, sql.ErrNoRows
	}
	v, err := scan(rows)
	if err != nil {
		return zero, err
	}
	return v, rows.Close()
}

func scanProduct(rows *sql.Rows) (product, error) {
	var p product
	err := rows.Scan(&p.Name, &p.Price)
	return p, err
}

func scanReviews(rows *sql.Rows) (reviewStats, error) {
	var r reviewStats
	err := rows.Scan(&r.Count, &r.Avg)
	return r, err
}

// modeResult is one run of the read workload.
type modeResult struct {
	Name    string
	Queries int64  // statements sent to the database
	Hits    uint64 // from the caches' Stats; 0 for direct
	Misses  uint64
	Elapsed time.Duration
}

// HitRatio is Hits / (Hits + Misses).
func (m modeResult) HitRatio() float64 {
	if m.Hits+m.Misses == 0 {
		return 0
	}
	return float64(m.Hits) / float64(m.Hits+m.Misses)
}

// result is what run observed, for its test.
type result struct {
	Modes         []modeResult // direct, querycache, objects
	Updated       []int64      // the products whose price changed
	OldPrices     []int64      // before the change
	NewPrices     []int64      // written by the UPDATEs
	QueryAfter    []int64      // prices the query cache answered right after the writes
	ObjectsFirst  []int64      // prices the objects answered right after Invalidate
	ObjectsFinal  []int64      // prices the objects answered once all were new
	DBQueries     int64        // statements sent to the database, all counters together
	DriverQueries int64        // statements slowdb ran; -1 on PostgreSQL
}

// run does it all, printing to w.
func run(ctx context.Context, w io.Writer, cfg config) (res result, err error) {
	if cfg.Products < 1 || cfg.Reads < 1 || cfg.Workers < 1 || cfg.Zipf <= 1 || cfg.Updates < 0 || cfg.Updates > cfg.Products {
		return res, errors.New("want products, reads, workers ≥ 1, zipf > 1 and 0 ≤ updates ≤ products")
	}
	runID := randomHex()

	// The database.
	var conn *sql.DB
	var slow *slowDB
	dbName := fmt.Sprintf("slowdb in memory, %v a statement", cfg.Delay)
	if cfg.PG == "" {
		var dsn string
		slow, dsn = newSlowDB(cfg.Products, cfg.Delay)
		defer dropSlowDB(dsn)
		sdb, err := sql.Open("slowdb", dsn)
		if err != nil {
			return res, err
		}
		defer sdb.Close()
		conn = sdb
	} else {
		sdb, drop, err := openPG(ctx, cfg.PG, "scaleout_cache_example_"+runID, cfg.Products)
		if err != nil {
			return res, err
		}
		defer func() { err = errors.Join(err, drop()) }()
		defer sdb.Close()
		conn = sdb
		dbName = "PostgreSQL"
	}
	// Each user of the database counts its own statements.
	direct, viaQueries, viaObjects, writer := &db{sql: conn}, &db{sql: conn}, &db{sql: conn}, &db{sql: conn}
	conn.SetMaxOpenConns(cfg.Workers + objects.DefaultWorkers + 2)
	conn.SetMaxIdleConns(cfg.Workers + objects.DefaultWorkers + 2)

	// The caches: newStore returns a fresh one for each use.
	cacheName := "cache.Memory"
	newStore := func(string) (cache.ObjectCache, error) { return cache.NewMemory(cache.MemoryConfig{}) }
	if cfg.Redis != "" {
		client := redis.NewClient(&redis.Options{Addr: cfg.Redis, MaxRetries: -1, DialTimeout: 2 * time.Second, ContextTimeoutEnabled: true})
		defer client.Close()
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		perr := client.Ping(pctx).Err()
		cancel()
		if perr != nil {
			return res, fmt.Errorf("-redis %s does not answer: %w", cfg.Redis, perr)
		}
		prefix := "scaleout:example:cache:" + runID + ":"
		defer func() { err = errors.Join(err, deleteKeys(context.WithoutCancel(ctx), client, prefix)) }()
		newStore = func(name string) (cache.ObjectCache, error) {
			return rediscache.New(client, rediscache.Config{Prefix: prefix + name + ":"})
		}
		cacheName = "Redis at " + cfg.Redis
	}

	fmt.Fprintf(w, "%d page reads of %d products (Zipf s=%g) by %d goroutines; database: %s; cache: %s\n",
		cfg.Reads, cfg.Products, cfg.Zipf, cfg.Workers, dbName, cacheName)
	ids := workload(cfg)

	// Pattern 1: the query cache.
	qstore, err := newStore("queries")
	if err != nil {
		return res, err
	}
	versions, err := querycache.NewVersions(qstore, querycache.VersionsConfig{TTL: time.Hour})
	if err != nil {
		return res, err
	}
	const entryTTL = 10 * time.Minute
	products, err := querycache.New[product](qstore, versions, querycache.Config[product]{TTL: entryTTL})
	if err != nil {
		return res, err
	}
	defer products.Close()
	reviews, err := querycache.New[reviewStats](qstore, versions, querycache.Config[reviewStats]{TTL: entryTTL})
	if err != nil {
		return res, err
	}
	defer reviews.Close()
	queryPage := func(ctx context.Context, id int64) (ProductPage, error) {
		p, err := products.QueryRow(ctx, viaQueries, []string{"products"}, scanProduct, sqlProduct, id)
		if err != nil {
			return ProductPage{}, fmt.Errorf("product %d: %w", id, err)
		}
		r, err := reviews.QueryRow(ctx, viaQueries, []string{"reviews"}, scanReviews, sqlReviews, id)
		if err != nil {
			return ProductPage{}, fmt.Errorf("reviews of %d: %w", id, err)
		}
		return page(id, p, r), nil
	}

	// Pattern 2: whole objects, rebuilt by a pool of background workers.
	ostore, err := newStore("objects")
	if err != nil {
		return res, err
	}
	pages, err := objects.New(ostore, func(ctx context.Context, key string) (ProductPage, error) {
		id, err := strconv.ParseInt(strings.TrimPrefix(key, "page:"), 10, 64)
		if err != nil {
			return ProductPage{}, err
		}
		return loadPage(ctx, viaObjects, id)
	}, objects.Config[ProductPage]{TTL: entryTTL, StaleFor: entryTTL})
	if err != nil {
		return res, err
	}
	defer pages.Close()
	objectPage := func(ctx context.Context, id int64) (ProductPage, error) {
		return pages.Get(ctx, pageKey(id))
	}

	// 1. Reads.
	fmt.Fprintf(w, "1. reads       %10s %10s %9s\n", "db queries", "hit ratio", "time")
	for _, m := range []struct {
		name  string
		db    *db
		read  func(context.Context, int64) (ProductPage, error)
		stats func() cache.Stats
	}{
		{"direct", direct, func(ctx context.Context, id int64) (ProductPage, error) { return loadPage(ctx, direct, id) }, nil},
		{"querycache", viaQueries, queryPage, func() cache.Stats {
			a, b := products.Stats(), reviews.Stats()
			return cache.Stats{Hits: a.Hits + b.Hits, Misses: a.Misses + b.Misses}
		}},
		{"objects", viaObjects, objectPage, func() cache.Stats { return pages.Stats().Stats }},
	} {
		before := m.db.queries.Load()
		start := time.Now()
		if err := readAll(ctx, ids, m.read); err != nil {
			return res, fmt.Errorf("%s: %w", m.name, err)
		}
		mr := modeResult{Name: m.name, Queries: m.db.queries.Load() - before, Elapsed: time.Since(start)}
		ratio := "-"
		if m.stats != nil {
			st := m.stats()
			mr.Hits, mr.Misses = st.Hits, st.Misses
			ratio = fmt.Sprintf("%.1f%%", 100*mr.HitRatio())
		}
		res.Modes = append(res.Modes, mr)
		fmt.Fprintf(w, "   %-11s %10d %10s %9s\n", m.name, mr.Queries, ratio, mr.Elapsed.Round(time.Millisecond))
	}

	// 2. Writes: the hottest products get a new price.
	fmt.Fprintf(w, "2. writes: UPDATE the price of products 1..%d with Versions.Exec (bumps the products table after it)\n", cfg.Updates)
	var keys []string
	for id := int64(1); id <= int64(cfg.Updates); id++ {
		old, err := queryPage(ctx, id)
		if err != nil {
			return res, err
		}
		newPrice := old.Price + 100
		if _, err := versions.Exec(ctx, writer, []string{"products"}, sqlSetPrice, newPrice, id); err != nil {
			return res, fmt.Errorf("update %d: %w", id, err)
		}
		res.Updated = append(res.Updated, id)
		res.OldPrices = append(res.OldPrices, old.Price)
		res.NewPrices = append(res.NewPrices, newPrice)
		keys = append(keys, pageKey(id))
	}
	// The pages hold the prices too: tell their cache.
	refreshes := pages.Stats().Refreshes
	if err := pages.Invalidate(ctx, keys...); err != nil {
		return res, fmt.Errorf("invalidate: %w", err)
	}

	start := time.Now()
	for _, id := range res.Updated {
		p, err := objectPage(ctx, id)
		if err != nil {
			return res, err
		}
		res.ObjectsFirst = append(res.ObjectsFirst, p.Price)
	}
	fmt.Fprintf(w, "   objects, right after:         %s  (the last good pages, while workers rebuild them)\n", prices(res.ObjectsFirst, res.NewPrices))
	before := viaQueries.queries.Load()
	for _, id := range res.Updated {
		p, err := queryPage(ctx, id)
		if err != nil {
			return res, err
		}
		res.QueryAfter = append(res.QueryAfter, p.Price)
	}
	fmt.Fprintf(w, "   querycache, right after:      %s  (%d db queries: the products' entries were keyed by the old version)\n",
		prices(res.QueryAfter, res.NewPrices), viaQueries.queries.Load()-before)

	deadline := time.Now().Add(10 * time.Second)
	for {
		res.ObjectsFinal = res.ObjectsFinal[:0]
		done := true
		for _, id := range res.Updated {
			p, err := objectPage(ctx, id)
			if err != nil {
				return res, err
			}
			res.ObjectsFinal = append(res.ObjectsFinal, p.Price)
			done = done && p.Price == res.NewPrices[len(res.ObjectsFinal)-1]
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("objects still answer %s 10s after Invalidate", prices(res.ObjectsFinal, res.NewPrices))
		}
		time.Sleep(200 * time.Microsecond)
	}
	fmt.Fprintf(w, "   objects, after the rebuild:   %s  (all new %v after Invalidate)\n",
		prices(res.ObjectsFinal, res.NewPrices), time.Since(start).Round(100*time.Microsecond))
	st := pages.Stats()
	fmt.Fprintf(w, "   objects rebuilds: %d by the pool's workers, %d started by readers of stale pages, %d skipped (lease taken)\n",
		st.Rebuilds, st.Refreshes-refreshes, st.RebuildsSkipped)

	_ = pages.Close() // no rebuild still running
	for _, c := range []*db{direct, viaQueries, viaObjects, writer} {
		res.DBQueries += c.queries.Load()
	}
	res.DriverQueries = -1
	if slow != nil {
		res.DriverQueries = slow.queries.Load()
	}
	return res, nil
}

func pageKey(id int64) string { return "page:" + strconv.FormatInt(id, 10) }

// prices formats prices as dollars, each marked new or old against want.
func prices(got, want []int64) string {
	s := make([]string, len(got))
	for i, p := range got {
		tag := "new"
		if p != want[i] {
			tag = "old"
		}
		s[i] = fmt.Sprintf("$%d.%02d %s", p/100, p%100, tag)
	}
	return strings.Join(s, ", ")
}

// workload returns the product ids each goroutine reads: Zipf-distributed,
// id 1 the most popular, the same at every call.
func workload(cfg config) [][]int64 {
	ids := make([][]int64, cfg.Workers)
	for g := range ids {
		r := mrand.New(mrand.NewPCG(42, uint64(g)))
		z := mrand.NewZipf(r, cfg.Zipf, 1, uint64(cfg.Products-1))
		n := cfg.Reads / cfg.Workers
		if g < cfg.Reads%cfg.Workers {
			n++
		}
		for range n {
			ids[g] = append(ids[g], int64(z.Uint64())+1)
		}
	}
	return ids
}

// readAll reads every page of ids, one goroutine per slice, and returns
// the first error.
func readAll(ctx context.Context, ids [][]int64, read func(context.Context, int64) (ProductPage, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, mine := range ids {
		wg.Go(func() {
			for _, id := range mine {
				p, err := read(ctx, id)
				if err == nil && p.ID != id {
					err = fmt.Errorf("asked for product %d, got %d", id, p.ID)
				}
				if err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

func randomHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// openPG creates and fills the two tables in a new schema of the database
// at dsn, and returns a *sql.DB whose connections use that schema, with
// the function that drops it.
func openPG(ctx context.Context, dsn, schema string, n int) (*sql.DB, func() error, error) {
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = admin.PingContext(pctx)
	cancel()
	if err != nil {
		admin.Close()
		return nil, nil, fmt.Errorf("-pg: %w", err)
	}
	drop := func() error {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := admin.ExecContext(dctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		return errors.Join(err, admin.Close())
	}
	for _, stmt := range []string{
		"CREATE SCHEMA " + schema,
		"CREATE TABLE " + schema + ".products (id bigint PRIMARY KEY, name text NOT NULL, price bigint NOT NULL)",
		"CREATE TABLE " + schema + ".reviews (product_id bigint NOT NULL REFERENCES " + schema + ".products (id), stars bigint NOT NULL)",
		"CREATE INDEX ON " + schema + ".reviews (product_id)",
		// The same rows as seedProduct.
		"INSERT INTO " + schema + ".products SELECT i, 'product-' || i, 1000 + (i * 37) % 9000 FROM generate_series(1, " + strconv.Itoa(n) + ") i",
		"INSERT INTO " + schema + ".reviews SELECT i, 1 + (i + j) % 5 FROM generate_series(1, " + strconv.Itoa(n) + ") i, generate_series(0, 6) j WHERE j < i % 7",
	} {
		if _, err := admin.ExecContext(ctx, stmt); err != nil {
			return nil, nil, errors.Join(fmt.Errorf("-pg: %s: %w", stmt, err), drop())
		}
	}
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, nil, errors.Join(err, drop())
	}
	cc.RuntimeParams["search_path"] = schema
	return stdlib.OpenDB(*cc), drop, nil
}

// deleteKeys removes the keys under prefix from Redis.
func deleteKeys(ctx context.Context, client *redis.Client, prefix string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := client.Del(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return client.Del(ctx, batch...).Err()
	}
	return nil
}
