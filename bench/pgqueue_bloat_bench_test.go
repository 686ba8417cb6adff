package bench

// BenchmarkPGQueueBloat/<impl>: the jobs table after a million jobs went
// through it, for pgqueue and River tuned (see pgqueue_river_bench_test.go
// for the configurations), on a PostgreSQL whose autovacuum runs at its
// defaults. Rounds of 10,000 jobs are enqueued in batches and drained by
// 50 workers; both keep done jobs for their default retention (24 h), so
// the table ends holding every job, and what it measures is what those
// rows cost and how much dead space vacuum left behind:
//
//	cd bench && eval "$(../scripts/services.sh env)"
//	go test -run '^$' -bench 'PGQueueBloat' -benchtime 1x .
//
// SCALEOUT_BLOAT_JOBS sets the number of jobs (default 1,000,000).
// Metrics: total-MB (heap, indexes and TOAST), bytes/job (total over the
// rows the table holds), index-MB, dead-% (dead row versions over all,
// from pg_stat_user_tables once the run ended), vacuums (autovacuum runs
// on the table during the run).

import (
	"context"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

const bloatRound = 10000

func BenchmarkPGQueueBloat(b *testing.B) {
	env := pgBench(b)
	total := 1000000
	if n, err := strconv.Atoi(os.Getenv("SCALEOUT_BLOAT_JOBS")); err == nil && n > 0 {
		total = n
	}
	tables := map[string]string{"pgqueue-tuned": pgBenchPrefix + "jobs", "river-tuned": riverSchema + ".river_job"}
	for _, impl := range []string{"pgqueue-tuned", "river-tuned"} {
		b.Run(impl, func(b *testing.B) {
			a, err := env.adapter(impl)
			if err != nil {
				b.Fatal(err)
			}
			defer a.close()
			ctx := context.Background()
			for range b.N {
				env.clean(b)
				vacuums0 := bloatStat(b, env, tables[impl], "autovacuum_count")
				for done := 0; done < total; done += bloatRound {
					if err := a.fill(ctx, bloatRound); err != nil {
						b.Fatal(err)
					}
					var n atomic.Int64
					drained := make(chan struct{})
					stop, err := a.run(50, func(int64) {
						if n.Add(1) == bloatRound {
							close(drained)
						}
					})
					if err != nil {
						b.Fatal(err)
					}
					select {
					case <-drained:
					case <-time.After(5 * time.Minute):
						b.Fatalf("round at %d: drained %d of %d", done, n.Load(), bloatRound)
					}
					stop()
				}
				// The statistics of the last transactions reach
				// pg_stat_user_tables within a moment.
				time.Sleep(2 * time.Second)
				t := tables[impl]
				var totalBytes, indexBytes, rows int64
				if err := env.db.QueryRowContext(ctx, "SELECT pg_total_relation_size($1::regclass), pg_indexes_size($1::regclass), (SELECT count(*) FROM "+t+")", t).
					Scan(&totalBytes, &indexBytes, &rows); err != nil {
					b.Fatal(err)
				}
				live, dead := bloatStat(b, env, t, "n_live_tup"), bloatStat(b, env, t, "n_dead_tup")
				b.ReportMetric(float64(totalBytes)/(1<<20), "total-MB")
				b.ReportMetric(float64(indexBytes)/(1<<20), "index-MB")
				b.ReportMetric(float64(totalBytes)/float64(max(rows, 1)), "bytes/job")
				b.ReportMetric(100*float64(dead)/float64(max(live+dead, 1)), "dead-%")
				b.ReportMetric(float64(bloatStat(b, env, t, "autovacuum_count")-vacuums0), "vacuums")
			}
		})
	}
}

// bloatStat reads a column of pg_stat_user_tables for table.
func bloatStat(b *testing.B, env *pgBenchEnv, table, column string) int64 {
	b.Helper()
	var v int64
	if err := env.db.QueryRowContext(context.Background(),
		"SELECT "+column+" FROM pg_stat_user_tables WHERE relid = $1::regclass", table).Scan(&v); err != nil {
		b.Fatal(err)
	}
	return v
}
