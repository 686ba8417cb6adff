// Command jobs shows the two uses of a job queue (package queue) in a web
// service:
//
//   - asynchronism: "tell the user the job is in progress at once, and
//     again when it is done". POST /reports enqueues a typed report job
//     and answers 202 Accepted at once, with a status URL (Location and
//     the JSON body) /jobs/<id>; GET /jobs/<id> answers the job's state,
//     attempts and, once done, its result; GET /jobs/<id>?wait=10s is a
//     long poll that blocks on the queue's Wait until the job ends (or
//     10 s pass). A queue.Worker runs the reports, several at once.
//   - precomputation: "pre-render pages on a schedule". A queue.Scheduler
//     enqueues a prerender job every -every (1m); the worker that takes
//     it renders the front page, which GET / then serves as is. Every
//     process may run the same Scheduler: each slot is enqueued once.
//
// After starting the server on -addr, the program plays the client: it
// posts -reports report requests, prints each 202 and its status URL and
// the state right after, long-polls each status URL, prints the results
// and how long they took, shows that an unknown job is a 404, reads the
// front page, and exits (shutting down the server, the Worker and the
// Scheduler). With -serve it keeps serving until interrupted instead:
//
//	go run ./examples/jobs
//	go run ./examples/jobs -serve -addr 127.0.0.1:8080 -every 10s
//	curl -i -d '{"customer":"acme"}' localhost:8080/reports
//	curl 'localhost:8080/jobs/reports~<id>?wait=10s'
//
// The queue is a queue.Memory, in this process; -redis addr puts it in
// Redis (queue/redisqueue), under a random key prefix deleted at exit, so
// any number of processes could serve, work and schedule together. -pg
// dsn puts it in PostgreSQL (queue/pgqueue), in tables of a random prefix
// dropped at exit, and shows the transactional enqueue: POST /reports
// writes the request to a table and enqueues its job in one transaction
// (pgqueue's EnqueueTx), so a request row never lacks its job, nor a job
// its row:
//
//	go run ./examples/jobs -pg "$SCALEOUT_PG_PRIMARY_DSN"
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// config is what the flags set.
type config struct {
	Addr        string        // where to listen
	Redis       string        // Redis address; "" keeps the queue in memory
	PG          string        // PostgreSQL DSN; puts the queue in PostgreSQL
	Every       string        // the prerender schedule: a duration or a schedule spec
	Reports     int           // report requests the client posts
	Work        time.Duration // a report's time, ±50 %
	Concurrency int           // jobs the Worker runs at once
	Wait        time.Duration // the client's ?wait=
	Renders     int           // scheduled renders the client waits for before exiting
	Serve       bool          // keep serving after the client is done

	// For tests: a Redis client to use instead of dialing Redis (not
	// closed by run) and the key prefix (default a random one).
	client redis.UniversalClient
	prefix string
}

func defaultConfig() config {
	return config{
		Addr: "127.0.0.1:0", Every: "1m", Reports: 3, Work: 800 * time.Millisecond,
		Concurrency: 4, Wait: 10 * time.Second,
	}
}

// quiet drops go-redis's own log lines (its dial retries): run reports
// an unreachable Redis itself.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func main() {
	cfg := defaultConfig()
	flag.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on")
	flag.StringVar(&cfg.Redis, "redis", "", "Redis address for the queue (default: in memory)")
	flag.StringVar(&cfg.PG, "pg", "", "PostgreSQL DSN for the queue, with transactional enqueue (default: in memory)")
	flag.StringVar(&cfg.Every, "every", cfg.Every, `how often to pre-render the front page: a duration ("1m") or a schedule ("@hourly", "*/5 * * * *")`)
	flag.IntVar(&cfg.Reports, "reports", cfg.Reports, "report requests the client posts")
	flag.DurationVar(&cfg.Work, "work", cfg.Work, "time a report takes (±50%)")
	flag.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "reports the worker runs at once")
	flag.DurationVar(&cfg.Wait, "wait", cfg.Wait, "the client's long-poll wait (?wait=)")
	flag.IntVar(&cfg.Renders, "renders", 0, "before exiting, wait until the scheduler has rendered the front page this many times")
	flag.BoolVar(&cfg.Serve, "serve", false, "keep serving after the client is done, until interrupted")
	flag.Parse()
	redis.SetLogger(quiet{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "jobs:", err)
		os.Exit(1)
	}
}

// result is what run observed, for its test.
type result struct {
	URL      string      // the server's base URL
	Reports  []reportRun // the client's reports, in order
	NotFound int         // status code of GET /jobs/ for an unknown job
	Renders  int64       // front pages rendered by the scheduled job
	Pages    []string    // X-Rendered-By of the front pages the client read, distinct, in order
	Page     string      // the last front page read
	Keys     int         // Redis keys deleted at exit
	Rows     int         // report requests written to PostgreSQL with their jobs (-pg)
}

// reportRun is one report request as the client saw it.
type reportRun struct {
	Request    ReportRequest
	Code       int    // of the POST
	Location   string // its Location header
	StatusURL  string // its body's status_url
	First      status // GET status URL right after the 202
	Final      status // GET status URL?wait=
	Report     Report // Final's result
	AcceptedIn time.Duration
	DoneIn     time.Duration // from the POST to the end of the long poll
}

func run(ctx context.Context, out io.Writer, cfg config) (res result, err error) {
	out = &lockedWriter{w: out} // the log and the client's printing share it
	spec := cfg.Every
	if d, derr := time.ParseDuration(spec); derr == nil {
		spec = "@every " + d.String()
	}
	if _, err := queue.ParseSchedule(spec); err != nil {
		return res, err
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// The queue.
	var q queue.JobQueue
	var pg *pgStore
	where := "in memory (queue.Memory)"
	if cfg.PG != "" {
		var err error
		pg, err = openPG(ctx, cfg.PG)
		if err != nil {
			return res, err
		}
		// Deferred first, so it runs last: the tables go once everything
		// else has stopped.
		defer func() {
			res.Rows = pg.rows(context.WithoutCancel(ctx))
			if derr := pg.drop(context.WithoutCancel(ctx)); derr != nil {
				err = errors.Join(err, derr)
				return
			}
			fmt.Fprintf(out, "dropped the example's tables (%s*) from PostgreSQL\n", pg.prefix)
		}()
		defer pg.q.Close()
		q = pg.q
		where = "in PostgreSQL (queue/pgqueue) in tables " + pg.prefix + "*, enqueued in the request's transaction"
	} else if cfg.Redis == "" && cfg.client == nil {
		m, err := queue.NewMemory(queue.MemoryConfig{})
		if err != nil {
			return res, err
		}
		defer m.Close()
		q = m
	} else {
		rdb := cfg.client
		if rdb == nil {
			c := redis.NewClient(&redis.Options{Addr: cfg.Redis, ContextTimeoutEnabled: true})
			defer c.Close()
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := c.Ping(pctx).Err()
			cancel()
			if err != nil {
				return res, fmt.Errorf("cannot reach Redis at %s: %w", cfg.Redis, err)
			}
			rdb = c
		}
		prefix := cfg.prefix
		if prefix == "" {
			var rnd [8]byte
			_, _ = rand.Read(rnd[:]) // never fails
			prefix = "scaleout-example-jobs:" + hex.EncodeToString(rnd[:]) + ":"
		}
		rq, err := redisqueue.New(rdb, redisqueue.Config{Prefix: prefix})
		if err != nil {
			return res, err
		}
		// Deferred first, so it runs last: after the Worker, the Scheduler
		// and the server have stopped and the queue is closed.
		defer func() {
			n, derr := deleteKeys(context.WithoutCancel(ctx), rdb, prefix)
			res.Keys = n
			if derr != nil {
				err = errors.Join(err, fmt.Errorf("deleting keys %s*: %w", prefix, derr))
				return
			}
			fmt.Fprintf(out, "deleted the example's %d keys (%s*) from Redis\n", n, prefix)
		}()
		defer rq.Close()
		q = rq
		where = "in Redis (queue/redisqueue) under " + prefix + "*"
	}

	a := &app{q: q, pg: pg, work: cfg.Work, maxWait: time.Minute, log: log}

	// The Worker: reports and prerender jobs, the reports first.
	worker, err := queue.NewWorker(q, queue.WorkerConfig{
		Queues:          map[string]int{reportQueue: 2, pageQueue: 1},
		Concurrency:     cfg.Concurrency,
		ShutdownTimeout: 5 * time.Second,
		Logger:          log,
	})
	if err != nil {
		return res, err
	}
	if err := reportType.HandleResult(worker, a.handleReport); err != nil {
		return res, err
	}
	if err := pageType.Handle(worker, a.handlePage); err != nil {
		return res, err
	}

	// The Scheduler: the front page, on spec.
	sched, err := queue.NewScheduler(q, queue.SchedulerConfig{Logger: log})
	if err != nil {
		return res, err
	}
	tmpl, err := pageType.Job(PageRequest{Page: "front"}, queue.Job{
		Queue: pageQueue, MaxAttempts: 2, Timeout: 30 * time.Second, Retention: 10 * time.Minute,
	})
	if err != nil {
		return res, err
	}
	if err := sched.Add("front-page", spec, tmpl); err != nil {
		return res, err
	}
	// A page right away, so / never waits for the first slot.
	if err := a.render("startup"); err != nil {
		return res, err
	}

	// Run the Worker and the Scheduler until run returns.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	var bgErr error
	var bgMu sync.Mutex
	for _, r := range []func(context.Context) error{worker.Run, sched.Run} {
		wg.Go(func() {
			if err := r(bg); err != nil && !errors.Is(err, context.Canceled) {
				bgMu.Lock()
				bgErr = errors.Join(bgErr, err)
				bgMu.Unlock()
			}
		})
	}
	defer func() {
		stopBG()
		wg.Wait()
		err = errors.Join(err, bgErr)
	}()

	// The server. Its requests' contexts end at shutdown, so that long
	// polls answer at once instead of holding the shutdown up.
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return res, err
	}
	reqCtx, endRequests := context.WithCancel(context.WithoutCancel(ctx))
	srv := &http.Server{
		Handler:           a.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer func() {
		endRequests()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		serr := srv.Shutdown(sctx)
		if e := <-served; !errors.Is(e, http.ErrServerClosed) {
			serr = errors.Join(serr, e)
		}
		err = errors.Join(err, serr)
	}()
	res.URL = "http://" + l.Addr().String()
	fmt.Fprintf(out, "serving on %s; the queue is %s; front page pre-rendered %s\n\n", res.URL, where, spec)

	if err := client(ctx, out, cfg, &res); err != nil {
		return res, err
	}
	res.Renders = a.renders.Load()
	if cfg.Serve {
		fmt.Fprintf(out, "\nserving until interrupted (try: curl -i -d '{\"customer\":\"acme\"}' %s/reports)\n", res.URL)
		<-ctx.Done()
	}
	fmt.Fprintln(out, "\nshutting down: the server, then the Worker and the Scheduler")
	return res, nil
}

// client plays the user: posts reports, long-polls their status URLs,
// checks a 404 and reads the front page.
func client(ctx context.Context, out io.Writer, cfg config, res *result) error {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: cfg.Wait + 30*time.Second}
	do := func(method, path string, body []byte) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, res.URL+path, bytes.NewReader(body))
		if err != nil {
			return nil, nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	getStatus := func(path string) (status, error) {
		resp, b, err := do(http.MethodGet, path, nil)
		if err != nil {
			return status{}, err
		}
		if resp.StatusCode != http.StatusOK {
			return status{}, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
		}
		var s status
		return s, json.Unmarshal(b, &s)
	}

	customers := []string{"acme", "globex", "initech", "umbrella", "hooli", "stark"}
	month := time.Now().UTC().Format("2006-01")
	posted := make([]time.Time, cfg.Reports)
	for i := range cfg.Reports {
		r := reportRun{Request: ReportRequest{Customer: customers[i%len(customers)], Month: month}}
		if i >= len(customers) {
			r.Request.Customer += strconv.Itoa(i / len(customers))
		}
		body, _ := json.Marshal(r.Request) // never fails
		posted[i] = time.Now()
		resp, b, err := do(http.MethodPost, "/reports", body)
		if err != nil {
			return err
		}
		r.AcceptedIn = time.Since(posted[i])
		r.Code, r.Location = resp.StatusCode, resp.Header.Get("Location")
		var acc accepted
		if r.Code != http.StatusAccepted || json.Unmarshal(b, &acc) != nil {
			return fmt.Errorf("POST /reports: %s: %s", resp.Status, strings.TrimSpace(string(b)))
		}
		r.StatusURL = acc.StatusURL
		fmt.Fprintf(out, "POST /reports %s\n  → %s in %v: %q, Location: %s\n", body, resp.Status, r.AcceptedIn.Round(10*time.Microsecond), acc.Message, r.Location)
		if r.First, err = getStatus(r.StatusURL); err != nil {
			return err
		}
		fmt.Fprintf(out, "  GET %s → %s (attempts %d)\n", r.StatusURL, r.First.State, r.First.Attempts)
		res.Reports = append(res.Reports, r)
	}

	wait := "?wait=" + cfg.Wait.String()
	fmt.Fprintf(out, "\nlong-polling each status URL with %s:\n", wait)
	for i := range res.Reports {
		r := &res.Reports[i]
		s, err := getStatus(r.StatusURL + wait)
		if err != nil {
			return err
		}
		r.DoneIn = time.Since(posted[i])
		r.Final = s
		if s.State != queue.StateDone {
			return fmt.Errorf("%s after %v: state %s (%s), want done", r.StatusURL, r.DoneIn, s.State, s.Error)
		}
		if err := json.Unmarshal(s.Result, &r.Report); err != nil {
			return fmt.Errorf("%s: result %s: %w", r.StatusURL, s.Result, err)
		}
		fmt.Fprintf(out, "  %-9s %s after %v (attempts %d, handler %dms): %d orders, $%.2f\n",
			r.Request.Customer+":", s.State, r.DoneIn.Round(time.Millisecond), s.Attempts, r.Report.TookMS, r.Report.Orders, r.Report.Revenue)
	}

	// A job ID nobody was given.
	unknown := "/jobs/" + reportQueue + "/0000000000000000"
	resp, _, err := do(http.MethodGet, unknown, nil)
	if err != nil {
		return err
	}
	res.NotFound = resp.StatusCode
	fmt.Fprintf(out, "\nGET %s → %s\n", unknown, resp.Status)

	// The front page; with cfg.Renders, until the scheduled job has
	// rendered it that many times.
	readPage := func() (int, error) {
		resp, b, err := do(http.MethodGet, "/", nil)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET /: %s", resp.Status)
		}
		by := resp.Header.Get("X-Rendered-By")
		if len(res.Pages) == 0 || res.Pages[len(res.Pages)-1] != by {
			res.Pages = append(res.Pages, by)
		}
		res.Page = string(b)
		n := 0
		for _, p := range res.Pages {
			if p != "startup" {
				n++
			}
		}
		return n, nil
	}
	n, err := readPage()
	if err != nil {
		return err
	}
	if n < cfg.Renders {
		fmt.Fprintf(out, "waiting for %d scheduled renders of the front page\n", cfg.Renders)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for n < cfg.Renders {
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %d renders of the front page (saw %q): %w", cfg.Renders, res.Pages, ctx.Err())
			case <-t.C:
			}
			if n, err = readPage(); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(out, "GET / → front pages seen, by renderer: %s\n", strings.Join(res.Pages, ", "))
	return nil
}

// deleteKeys removes every key under prefix and returns how many.
func deleteKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var keys []string
	it := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	if err := it.Err(); err != nil {
		return 0, err
	}
	for _, k := range keys {
		// One key at a time: on a Cluster the keys live in many slots.
		if err := rdb.Unlink(ctx, k).Err(); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// lockedWriter serializes writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
