package bench

// pgqueue and River side by side on the same PostgreSQL (the services'
// primary, SCALEOUT_PG_PRIMARY_DSN): scaleout's queue/pgqueue under
// queue.Worker, and github.com/riverqueue/river v0.51.2 on riverpgxv5.
// Each iteration is one whole measurement; run them once each, a few
// times, and read the custom metrics:
//
//	cd bench && eval "$(../scripts/services.sh env)"
//	go test -run '^$' -bench 'PGQueue' -benchtime 1x -count 3 .
//
// Configurations, "default" and "tuned" for both:
//   - pgqueue default: sql.Open("pgx", dsn) as it comes (database/sql
//     keeps 2 idle connections), pgqueue.Config{}, queue.Worker with
//     Concurrency N and its defaults (30 s lease, heartbeats).
//   - pgqueue tuned: the same with SetMaxIdleConns(64).
//   - river default: pgxpool.New(dsn) as it comes (MaxConns max(4,
//     NumCPU)), river.Config{Queues: {default: {MaxWorkers: N}}}
//     (FetchCooldown 100 ms, FetchPollInterval 1 s).
//   - river tuned: pool MaxConns 64, FetchCooldown 1 ms,
//     FetchPollInterval 50 ms.
//
// BenchmarkPGQueueEnqueue/<impl>/{serial,g16}: 2,000 jobs from one
// goroutine, 8,000 from 16; jobs/s. BenchmarkPGQueueDrain/<impl>/c<N>:
// 10,000 jobs enqueued in batches, then N workers drain them; jobs/s.
// BenchmarkPGQueueLatency/<impl>: a producer enqueues a job every 5 ms
// for 2 s to 10 idle workers; enqueue-to-handler-start p50-ms, p99-ms.

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/scaleout/scaleout/bench/impls"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
)

const (
	pgBenchPrefix = "bench_pgq_"
	riverSchema   = "bench_river"
	pgEnqSerial   = 2000
	pgEnqParallel = 8000
	pgDrainJobs   = 10000
)

var pgImpls = []string{"pgqueue-default", "pgqueue-tuned", "river-default", "river-tuned"}

type pgBenchEnv struct {
	dsn  string
	db   *sql.DB // for cleaning up
	once sync.Once
	err  error
}

var pgEnv pgBenchEnv

func pgBench(b *testing.B) *pgBenchEnv {
	b.Helper()
	dsn := os.Getenv("SCALEOUT_PG_PRIMARY_DSN")
	if dsn == "" {
		b.Skip(`SCALEOUT_PG_PRIMARY_DSN unset: run eval "$(../scripts/services.sh env)" first`)
	}
	pgEnv.once.Do(func() {
		pgEnv.dsn = dsn
		pgEnv.db, pgEnv.err = sql.Open("pgx", dsn)
		if pgEnv.err != nil {
			return
		}
		ctx := context.Background()
		q, err := pgqueue.New(pgEnv.db, pgqueue.Config{Prefix: pgBenchPrefix})
		if err != nil {
			pgEnv.err = err
			return
		}
		if pgEnv.err = q.Migrate(ctx); pgEnv.err != nil {
			return
		}
		_ = q.Close()
		if _, pgEnv.err = pgEnv.db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+riverSchema); pgEnv.err != nil {
			return
		}
		pool, err := pgxpool.New(ctx, dsn)
		if err != nil {
			pgEnv.err = err
			return
		}
		defer pool.Close()
		m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: riverSchema})
		if err != nil {
			pgEnv.err = err
			return
		}
		_, pgEnv.err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	})
	if pgEnv.err != nil {
		b.Fatal(pgEnv.err)
	}
	pgEnv.clean(b)
	b.Cleanup(func() { pgEnv.clean(b) })
	return &pgEnv
}

func (e *pgBenchEnv) clean(b *testing.B) {
	for _, s := range []string{
		"TRUNCATE " + pgBenchPrefix + "jobs, " + pgBenchPrefix + "totals, " + pgBenchPrefix + "uniq, " + pgBenchPrefix + "queues",
		"TRUNCATE " + riverSchema + ".river_job",
	} {
		if _, err := e.db.ExecContext(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
}

// An adapter runs one implementation.
type pgAdapter struct {
	enqueue func(ctx context.Context, t int64) error
	fill    func(ctx context.Context, n int) error
	// run starts workers at concurrency conc calling hit with each job's
	// payload; stop stops them.
	run   func(conc int, hit func(int64)) (stop func(), err error)
	close func()
}

type riverArgs struct {
	T int64 `json:"t"`
}

func (riverArgs) Kind() string { return "bench" }

type riverWorker struct {
	river.WorkerDefaults[riverArgs]
	hit func(int64)
}

func (w *riverWorker) Work(_ context.Context, j *river.Job[riverArgs]) error {
	w.hit(j.Args.T)
	return nil
}

func stamp(t int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t)) }

func (e *pgBenchEnv) adapter(impl string) (*pgAdapter, error) {
	ctx := context.Background()
	switch impl {
	case "pgqueue-default", "pgqueue-tuned":
		db, err := sql.Open("pgx", e.dsn)
		if err != nil {
			return nil, err
		}
		if impl == "pgqueue-tuned" {
			db.SetMaxIdleConns(64)
		}
		q, err := pgqueue.New(db, pgqueue.Config{Prefix: pgBenchPrefix})
		if err != nil {
			return nil, err
		}
		return &pgAdapter{
			enqueue: func(ctx context.Context, t int64) error {
				_, err := q.Enqueue(ctx, queue.Job{Queue: "bench", Type: "bench", Payload: stamp(t)})
				return err
			},
			fill: func(ctx context.Context, n int) error {
				for i := 0; i < n; i += 1000 {
					jobs := make([]queue.Job, min(1000, n-i))
					for k := range jobs {
						jobs[k] = queue.Job{Queue: "bench", Type: "bench", Payload: stamp(0)}
					}
					if _, err := q.EnqueueBatch(ctx, jobs); err != nil {
						return err
					}
				}
				return nil
			},
			run: func(conc int, hit func(int64)) (func(), error) {
				w, err := queue.NewWorker(q, queue.WorkerConfig{Concurrency: conc, Queues: map[string]int{"bench": 1}})
				if err != nil {
					return nil, err
				}
				if err := w.HandleFunc("bench", func(_ context.Context, d *queue.Delivery) error {
					hit(int64(binary.BigEndian.Uint64(d.Job.Payload)))
					return nil
				}); err != nil {
					return nil, err
				}
				ctx, cancel := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { _ = w.Run(ctx); close(done) }()
				return func() { cancel(); <-done }, nil
			},
			close: func() { _ = q.Close(); _ = db.Close() },
		}, nil
	case "river-default", "river-tuned":
		cfg, err := pgxpool.ParseConfig(e.dsn)
		if err != nil {
			return nil, err
		}
		tuned := impl == "river-tuned"
		if tuned {
			cfg.MaxConns = 64
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, err
		}
		var hitFn atomic.Pointer[func(int64)]
		workers := river.NewWorkers()
		river.AddWorker(workers, &riverWorker{hit: func(t int64) { (*hitFn.Load())(t) }})
		newClient := func(conc int) (*river.Client[pgxTx], error) {
			rc := &river.Config{Schema: riverSchema, Workers: workers, Logger: quietLogger()}
			if conc > 0 {
				rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: conc}}
			}
			if tuned {
				rc.FetchCooldown, rc.FetchPollInterval = time.Millisecond, 50*time.Millisecond
			}
			return river.NewClient(riverpgxv5.New(pool), rc)
		}
		inserter, err := newClient(0)
		if err != nil {
			pool.Close()
			return nil, err
		}
		return &pgAdapter{
			enqueue: func(ctx context.Context, t int64) error {
				_, err := inserter.Insert(ctx, riverArgs{T: t}, nil)
				return err
			},
			fill: func(ctx context.Context, n int) error {
				for i := 0; i < n; i += 1000 {
					params := make([]river.InsertManyParams, min(1000, n-i))
					for k := range params {
						params[k] = river.InsertManyParams{Args: riverArgs{}}
					}
					if _, err := inserter.InsertMany(ctx, params); err != nil {
						return err
					}
				}
				return nil
			},
			run: func(conc int, hit func(int64)) (func(), error) {
				hitFn.Store(&hit)
				c, err := newClient(conc)
				if err != nil {
					return nil, err
				}
				if err := c.Start(ctx); err != nil {
					return nil, err
				}
				return func() { _ = c.Stop(ctx) }, nil
			},
			close: pool.Close,
		}, nil
	}
	return nil, fmt.Errorf("unknown implementation %q", impl)
}

func BenchmarkPGQueueEnqueue(b *testing.B) {
	env := pgBench(b)
	for _, impl := range pgImpls {
		for _, g := range []int{1, 16} {
			name := "serial"
			n := pgEnqSerial
			if g > 1 {
				name, n = fmt.Sprintf("g%d", g), pgEnqParallel
			}
			b.Run(impl+"/"+name, func(b *testing.B) {
				a, err := env.adapter(impl)
				if err != nil {
					b.Fatal(err)
				}
				defer a.close()
				var sum float64
				for range b.N {
					env.clean(b)
					start := time.Now()
					var wg sync.WaitGroup
					var failed atomic.Pointer[error]
					for w := range g {
						wg.Go(func() {
							for i := w; i < n; i += g {
								if err := a.enqueue(context.Background(), 0); err != nil {
									failed.Store(&err)
									return
								}
							}
						})
					}
					wg.Wait()
					if p := failed.Load(); p != nil {
						b.Fatal(*p)
					}
					sum += float64(n) / time.Since(start).Seconds()
				}
				b.ReportMetric(sum/float64(b.N), "jobs/s")
			})
		}
	}
}

func BenchmarkPGQueueDrain(b *testing.B) {
	env := pgBench(b)
	for _, impl := range pgImpls {
		for _, conc := range []int{10, 50} {
			b.Run(fmt.Sprintf("%s/c%d", impl, conc), func(b *testing.B) {
				a, err := env.adapter(impl)
				if err != nil {
					b.Fatal(err)
				}
				defer a.close()
				var sum float64
				for range b.N {
					env.clean(b)
					if err := a.fill(context.Background(), pgDrainJobs); err != nil {
						b.Fatal(err)
					}
					var n atomic.Int64
					done := make(chan struct{})
					start := time.Now()
					stop, err := a.run(conc, func(int64) {
						if n.Add(1) == pgDrainJobs {
							close(done)
						}
					})
					if err != nil {
						b.Fatal(err)
					}
					select {
					case <-done:
					case <-time.After(5 * time.Minute):
						b.Fatalf("drained %d of %d", n.Load(), pgDrainJobs)
					}
					sum += pgDrainJobs / time.Since(start).Seconds()
					stop()
				}
				b.ReportMetric(sum/float64(b.N), "jobs/s")
			})
		}
	}
}

func BenchmarkPGQueueLatency(b *testing.B) {
	env := pgBench(b)
	for _, impl := range pgImpls {
		b.Run(impl, func(b *testing.B) {
			a, err := env.adapter(impl)
			if err != nil {
				b.Fatal(err)
			}
			defer a.close()
			var p50, p99 float64
			for range b.N {
				env.clean(b)
				var mu sync.Mutex
				var lat []time.Duration
				stop, err := a.run(10, func(t int64) {
					d := time.Since(time.Unix(0, t))
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				})
				if err != nil {
					b.Fatal(err)
				}
				time.Sleep(500 * time.Millisecond) // the workers are idle and waiting
				sent := 0
				for end := time.Now().Add(2 * time.Second); time.Now().Before(end); sent++ {
					if err := a.enqueue(context.Background(), time.Now().UnixNano()); err != nil {
						b.Fatal(err)
					}
					time.Sleep(5 * time.Millisecond)
				}
				deadline := time.Now().Add(10 * time.Second)
				for {
					mu.Lock()
					got := len(lat)
					mu.Unlock()
					if got >= sent {
						break
					}
					if time.Now().After(deadline) {
						b.Fatal(errors.New("jobs not started"))
					}
					time.Sleep(10 * time.Millisecond)
				}
				stop()
				slices.Sort(lat)
				p50 += float64(impls.Percentile(lat, 50)) / 1e6
				p99 += float64(impls.Percentile(lat, 99)) / 1e6
			}
			b.ReportMetric(p50/float64(b.N), "p50-ms")
			b.ReportMetric(p99/float64(b.N), "p99-ms")
		})
	}
}

type pgxTx = pgx.Tx

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
