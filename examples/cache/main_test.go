// Real-time tests in this file: TestRun and TestRunRedisPG (the example
// end to end, the second on a real Redis and PostgreSQL; they count
// queries and assert no duration).
package main

import (
	"bytes"
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scaleout/scaleout/internal/testenv"
)

// smallConfig is the in-memory example with a small workload.
func smallConfig() config {
	return config{Products: 200, Reads: 1000, Workers: 8, Zipf: 1.1, Delay: 3 * time.Millisecond, Updates: 3}
}

// TestRun runs the example in memory: the caches take most of the load
// off the database, the query cache answers the new prices at once after
// Versions.Exec, the objects answer the last good (old) pages right after
// Invalidate and the new ones once rebuilt, every statement counted went
// to slowdb, and no goroutine outlives it.
func TestRun(t *testing.T) {
	defer testenv.CheckGoroutines(t)()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := run(ctx, &out, smallConfig())
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Modes) != 3 {
		t.Fatalf("%d modes, want 3", len(res.Modes))
	}
	direct, qc, obj := res.Modes[0], res.Modes[1], res.Modes[2]
	if direct.Queries != 2*1000 {
		t.Errorf("direct: %d queries, want 2 per read (2000)", direct.Queries)
	}
	for _, m := range []modeResult{qc, obj} {
		if m.Queries*5 > direct.Queries {
			t.Errorf("%s: %d queries, want under a fifth of direct's %d", m.Name, m.Queries, direct.Queries)
		}
		if m.HitRatio() < 0.8 {
			t.Errorf("%s: hit ratio %.3f, want ≥ 0.8 on a Zipf workload", m.Name, m.HitRatio())
		}
	}
	// Each distinct product costs both cached modes the same two queries.
	if qc.Queries != obj.Queries || qc.Queries != 2*int64(obj.Misses) {
		t.Errorf("querycache %d queries, objects %d queries and %d misses: want 2 queries per distinct product in both", qc.Queries, obj.Queries, obj.Misses)
	}

	if !slices.Equal(res.Updated, []int64{1, 2, 3}) {
		t.Fatalf("updated %v, want products 1..3", res.Updated)
	}
	for i, id := range res.Updated {
		if res.NewPrices[i] == res.OldPrices[i] {
			t.Errorf("product %d: price unchanged", id)
		}
	}
	if !slices.Equal(res.QueryAfter, res.NewPrices) {
		t.Errorf("query cache right after the writes: %v, want the new prices %v", res.QueryAfter, res.NewPrices)
	}
	// A rebuild takes two statements of 3ms: a read right after
	// Invalidate gets the last good page.
	if !slices.Equal(res.ObjectsFirst, res.OldPrices) {
		t.Errorf("objects right after Invalidate: %v, want the stale old prices %v", res.ObjectsFirst, res.OldPrices)
	}
	if !slices.Equal(res.ObjectsFinal, res.NewPrices) {
		t.Errorf("objects after the rebuild: %v, want the new prices %v", res.ObjectsFinal, res.NewPrices)
	}
	if res.DriverQueries != res.DBQueries {
		t.Errorf("slowdb ran %d statements, the example counted %d", res.DriverQueries, res.DBQueries)
	}
	for _, want := range []string{"direct", "querycache, right after:", "objects, right after:", "objects, after the rebuild:", " new", " old"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}

}

// TestSlowDB: the driver answers its statements, counts them, and
// refuses anything else clearly.
func TestSlowDB(t *testing.T) {
	d, dsn := newSlowDB(10, 0)
	defer dropSlowDB(dsn)
	conn, err := sql.Open("slowdb", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := t.Context()

	var name string
	var price int64
	if err := conn.QueryRowContext(ctx, sqlProduct, 7).Scan(&name, &price); err != nil {
		t.Fatal(err)
	}
	wantName, wantPrice, stars := seedProduct(7)
	if name != wantName || price != wantPrice {
		t.Errorf("product 7 = %q %d, want %q %d", name, price, wantName, wantPrice)
	}
	var n int64
	var avg float64
	if err := conn.QueryRowContext(ctx, sqlReviews, 7).Scan(&n, &avg); err != nil {
		t.Fatal(err)
	}
	if len(stars) != 0 || n != 0 || avg != 0 {
		t.Errorf("reviews of 7 = %d, %v; want none (7 %% 7 = 0)", n, avg)
	}
	if err := conn.QueryRowContext(ctx, sqlReviews, 6).Scan(&n, &avg); err != nil {
		t.Fatal(err)
	}
	if n != 6 || avg != 17.0/6 { // stars 2, 3, 4, 5, 1, 2
		t.Errorf("reviews of 6 = %d, %v; want 6, %v", n, avg, 17.0/6)
	}
	res, err := conn.ExecContext(ctx, sqlSetPrice, 4242, 7)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := res.RowsAffected(); k != 1 {
		t.Errorf("update: %d rows affected, want 1", k)
	}
	if err := conn.QueryRowContext(ctx, sqlProduct, 7).Scan(&name, &price); err != nil || price != 4242 {
		t.Errorf("after the update: price %d, err %v; want 4242", price, err)
	}
	if err := conn.QueryRowContext(ctx, sqlProduct, 99).Scan(&name, &price); err != sql.ErrNoRows {
		t.Errorf("missing product: err = %v, want sql.ErrNoRows", err)
	}
	if got := d.queries.Load(); got != 6 {
		t.Errorf("%d statements counted, want 6", got)
	}

	for _, bad := range []func() error{
		func() error { _, err := conn.ExecContext(ctx, "DELETE FROM products"); return err },
		func() error { _, err := conn.QueryContext(ctx, "SELECT * FROM products"); return err },
		func() error { _, err := conn.QueryContext(ctx, sqlProduct, "seven"); return err },
		func() error { _, err := conn.BeginTx(ctx, nil); return err },
	} {
		if err := bad(); err == nil || !strings.Contains(err.Error(), "slowdb:") {
			t.Errorf("err = %v, want a slowdb error", err)
		}
	}
}

// TestRunRedisPG runs the example on the test Redis and PostgreSQL (it is
// skipped without them): the same properties, except that on a fast
// database a rebuild may land before the first read after Invalidate.
func TestRunRedisPG(t *testing.T) {
	cfg := smallConfig()
	cfg.Redis = testenv.RedisAddr(t)
	cfg.PG = testenv.PGPrimaryDSN(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	direct, qc, obj := res.Modes[0], res.Modes[1], res.Modes[2]
	if direct.Queries != 2000 || qc.Queries*5 > direct.Queries || obj.Queries*5 > direct.Queries {
		t.Errorf("queries: direct %d, querycache %d, objects %d; want 2000 and under a fifth of it", direct.Queries, qc.Queries, obj.Queries)
	}
	if !slices.Equal(res.QueryAfter, res.NewPrices) || !slices.Equal(res.ObjectsFinal, res.NewPrices) {
		t.Errorf("after the writes: query cache %v, objects %v; want %v", res.QueryAfter, res.ObjectsFinal, res.NewPrices)
	}
	if res.DriverQueries != -1 {
		t.Errorf("DriverQueries = %d on PostgreSQL, want -1", res.DriverQueries)
	}
}
