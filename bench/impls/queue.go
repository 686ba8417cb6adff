package impls

// Queue benchmarks: scaleout's queue package (queue.Worker on
// queue/redisqueue, and queue.Memory) side by side with hibiken/asynq
// v0.26.0 on the same Redis, in the same process run. Shared by
// queue_bench_test.go and cmd/compare.
//
// Unlike the other sections these are not per-op benchmarks but
// measurements of a fixed amount of work (drain a backlog, enqueue a
// number of jobs, run a producer at a steady rate), each returning its
// figure; cmd/compare repeats them, interleaved across implementations,
// and reports medians.
//
// Keys: ours live under a fresh prefix per QueueEnv
// ("scaleoutbench:queue:<random>:"), and every measurement uses a queue
// of its own. asynq's keys cannot be prefixed: they are "asynq:*" in DB 0
// (a distinct DB is not possible on a Cluster either), so NewQueueEnv and
// Close delete every "asynq:*" key, with SCAN and DEL on that pattern
// only, and every asynq measurement uses a queue of its own.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// Queue benchmark parameters.
const (
	QueueDrainJobs      = 20_000 // backlog drained by the throughput measurement
	QueueEnqueueSerial  = 3_000  // jobs enqueued one by one from one goroutine
	QueueEnqueueWorkers = 16     // goroutines of the parallel enqueue
	QueueEnqueueParJobs = 8_000  // jobs enqueued by them, in all
	QueueBatchSize      = 100    // jobs per EnqueueBatch call
	QueueBatchJobs      = 20_000 // jobs enqueued in batches
	QueueLatencyRate    = 200    // jobs/s of the latency producer
	QueueLatencyConc    = 10     // worker concurrency of the latency measurement
	QueueMemoryJobs     = 300_000
	QueuePayloadSize    = 16 // bytes of every payload (the latency one carries a timestamp in its first 8)
	QueueMemPerJobN     = 100_000
	QueueTunedPoolSize  = 64 // PoolSize of the tuned configurations, ours and asynq's alike
	queueJobType        = "noop"
	asynqTightInterval  = 10 * time.Millisecond
	queueDrainTimeout   = 2 * time.Minute
	asynqPrefixPattern  = "asynq:*"
	queueWorkerLease    = 30 * time.Second
	queueMemoryLease    = time.Minute
	queueMemoryWorkConc = 10
)

// Drain concurrencies.
var QueueDrainConcurrency = []int{10, 50}

// Configurations, each side at its defaults and both tuned alike.
const (
	QueueOursDefault  = "ours, defaults"
	QueueAsynqDefault = "asynq, defaults"
	QueueOursTuned    = "ours, tuned"
	QueueAsynqTuned   = "asynq, tuned"
)

// QueueImpls lists the configurations in report order.
var QueueImpls = []string{QueueOursDefault, QueueAsynqDefault, QueueOursTuned, QueueAsynqTuned}

// QueueIsOurs reports whether impl is one of our configurations.
func QueueIsOurs(impl string) bool { return impl == QueueOursDefault || impl == QueueOursTuned }

// QueueConfigs describes each configuration, for the report.
var QueueConfigs = map[string]string{
	QueueOursDefault: "redisqueue.New(redis.NewClient(&redis.Options{Addr, ContextTimeoutEnabled: true}), " +
		"Config{Prefix: \"scaleoutbench:queue:<random>:\"}): the least a user writes (New refuses a client without " +
		"ContextTimeoutEnabled), every other go-redis option default (PoolSize 10 per GOMAXPROCS: 20 here); " +
		"queue.NewWorker(q, WorkerConfig{Concurrency: 10 or 50, Queues: {<own queue>: 1}}), other fields default " +
		"(Lease 30s, heartbeat every 10s). The producer and the worker share the one client, as a process would.",
	QueueAsynqDefault: "asynq.NewServer(asynq.RedisClientOpt{Addr}, Config{Concurrency: 10 or 50, Queues: {<own queue>: 1}, " +
		"LogLevel: asynq.ErrorLevel}) and asynq.NewClient(asynq.RedisClientOpt{Addr}): each its own go-redis client " +
		"with asynq's defaults (PoolSize 10 per CPU), TaskCheckInterval 1s, DelayedTaskCheckInterval 5s, " +
		"HealthCheckInterval 15s, ShutdownTimeout 8s, no StrictPriority.",
	QueueOursTuned: fmt.Sprintf("as the defaults, with PoolSize %d on the client; ours has no poll interval to "+
		"tune (an idle Dequeue blocks on a wake list).", QueueTunedPoolSize),
	QueueAsynqTuned: fmt.Sprintf("as the defaults, with PoolSize %d in RedisClientOpt (server and client alike) "+
		"and TaskCheckInterval %v.", QueueTunedPoolSize, asynqTightInterval),
}

// QueueJobsConfig describes the jobs and handlers, for the report.
const QueueJobsConfig = "asynq tasks: asynq.NewTask(\"noop\", payload) enqueued with asynq.Queue(<own queue>) and " +
	"default options (MaxRetry 25, Timeout 30m, no Retention: a task is deleted when done). Ours: " +
	"queue.Job{Queue: <own queue>, Type: \"noop\", Payload} with default options (MaxAttempts 20, Retention 24h: done " +
	"jobs stay until the bench deletes its prefix). Handlers return nil."

// QueueEnv holds the Redis clients of the queue measurements. Close
// deletes every key they wrote.
type QueueEnv struct {
	Addr   string
	Prefix string

	admin              *redis.Client // cleanup
	oursDef, oursTuned *redis.Client // the clients of our two configurations
	seq                atomic.Int64
}

// NewQueueEnv connects to $SCALEOUT_REDIS_ADDR; it returns nil, nil when
// the variable is unset, and an error when the server does not answer.
// It deletes leftover asynq keys first.
func NewQueueEnv() (*QueueEnv, error) {
	addr := os.Getenv(RedisAddrEnv)
	if addr == "" {
		return nil, nil
	}
	var buf [6]byte
	_, _ = rand.Read(buf[:])
	e := &QueueEnv{Addr: addr, Prefix: "scaleoutbench:queue:" + hex.EncodeToString(buf[:]) + ":"}
	e.admin = newQueueClient(addr)
	e.oursDef = redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	e.oursTuned = redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, PoolSize: QueueTunedPoolSize})
	if err := e.admin.Ping(ctxBg).Err(); err != nil {
		_ = e.closeClients()
		return nil, fmt.Errorf("redis at %s ($%s): %w", addr, RedisAddrEnv, err)
	}
	if err := deletePattern(ctxBg, e.admin, asynqPrefixPattern); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

func newQueueClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, PoolSize: QueueTunedPoolSize, ContextTimeoutEnabled: true})
}

func (e *QueueEnv) closeClients() error {
	return errors.Join(e.admin.Close(), e.oursDef.Close(), e.oursTuned.Close())
}

// Close deletes our prefix and every asynq key and closes the clients.
func (e *QueueEnv) Close() error {
	errs := []error{
		deletePattern(ctxBg, e.admin, e.Prefix+"*"),
		deletePattern(ctxBg, e.admin, asynqPrefixPattern),
	}
	errs = append(errs, e.closeClients())
	return errors.Join(errs...)
}

// deletePattern deletes the keys matching pattern, with SCAN and DEL.
func deletePattern(ctx context.Context, rdb *redis.Client, pattern string) error {
	var errs []error
	for range 3 { // a second pass catches keys written while scanning (an asynq server shutting down)
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		for len(keys) > 0 {
			n := min(len(keys), 1000)
			errs = append(errs, rdb.Del(ctx, keys[:n]...).Err())
			keys = keys[n:]
		}
	}
	return errors.Join(errs...)
}

// queueName returns a fresh queue name for one measurement.
func (e *QueueEnv) queueName(tag string) string {
	return fmt.Sprintf("qb-%s-%d", tag, e.seq.Add(1))
}

func queuePayload() []byte { return make([]byte, QueuePayloadSize) }

// newOurs returns a Queue of our configuration impl.
func (e *QueueEnv) newOurs(impl string) (*redisqueue.Queue, error) {
	c := e.oursDef
	if impl == QueueOursTuned {
		c = e.oursTuned
	}
	return redisqueue.New(c, redisqueue.Config{Prefix: e.Prefix})
}

// asynqOpt is the connection of asynq's configuration impl.
func (e *QueueEnv) asynqOpt(impl string) asynq.RedisClientOpt {
	opt := asynq.RedisClientOpt{Addr: e.Addr}
	if impl == QueueAsynqTuned {
		opt.PoolSize = QueueTunedPoolSize
	}
	return opt
}

// asynqServer returns an asynq server of configuration impl on qname.
func (e *QueueEnv) asynqServer(impl, qname string, conc int) *asynq.Server {
	cfg := asynq.Config{
		Concurrency: conc,
		Queues:      map[string]int{qname: 1},
		LogLevel:    asynq.ErrorLevel,
	}
	if impl == QueueAsynqTuned {
		cfg.TaskCheckInterval = asynqTightInterval
	}
	return asynq.NewServer(e.asynqOpt(impl), cfg)
}

// deleteAsynqQueue removes what asynq keeps of qname (its "asynq:{qname}:*"
// keys and its entry in "asynq:queues").
func (e *QueueEnv) deleteAsynqQueue(qname string) error {
	return errors.Join(
		deletePattern(ctxBg, e.admin, "asynq:{"+qname+"}:*"),
		e.admin.SRem(ctxBg, "asynq:queues", qname).Err(),
	)
}

// deleteOursQueue removes the keys of one of our queues.
func (e *QueueEnv) deleteOursQueue(qname string) error {
	return deletePattern(ctxBg, e.admin, e.Prefix+"{"+qname+"}:*")
}

// parallel runs f(i) for i in [0, n) from workers goroutines and returns
// the first error.
func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// fillOurs enqueues n jobs on qname in batches.
func fillOurs(q *redisqueue.Queue, qname string, n int) error {
	p := queuePayload()
	for n > 0 {
		b := min(n, 500)
		jobs := make([]queue.Job, b)
		for i := range jobs {
			jobs[i] = queue.Job{Queue: qname, Type: queueJobType, Payload: p}
		}
		if _, err := q.EnqueueBatch(ctxBg, jobs); err != nil {
			return err
		}
		n -= b
	}
	return nil
}

// fillAsynq enqueues n tasks on qname from 16 goroutines (asynq has no
// batch enqueue).
func fillAsynq(c *asynq.Client, qname string, n int) error {
	p := queuePayload()
	return parallel(n, QueueEnqueueWorkers, func(int) error {
		_, err := c.Enqueue(asynq.NewTask(queueJobType, p), asynq.Queue(qname))
		return err
	})
}

// drainWatch counts handled jobs and marks the moment the last of n
// started.
type drainWatch struct {
	n     int64
	count atomic.Int64
	done  chan struct{}
	at    atomic.Int64 // UnixNano of the n-th
}

func newDrainWatch(n int) *drainWatch {
	return &drainWatch{n: int64(n), done: make(chan struct{})}
}

func (w *drainWatch) hit() {
	if w.count.Add(1) == w.n {
		w.at.Store(time.Now().UnixNano())
		close(w.done)
	}
}

func (w *drainWatch) wait(start time.Time) (float64, error) {
	select {
	case <-w.done:
	case <-time.After(queueDrainTimeout):
		return 0, fmt.Errorf("drain: %d of %d jobs handled after %s", w.count.Load(), w.n, queueDrainTimeout)
	}
	el := time.Duration(w.at.Load() - start.UnixNano())
	return float64(w.n) / el.Seconds(), nil
}

// Drain pre-enqueues QueueDrainJobs jobs (untimed), then starts workers of
// impl at concurrency conc and times until the handler has been called for
// the last of them; it returns jobs/s.
func (e *QueueEnv) Drain(impl string, conc, jobs int) (float64, error) {
	switch impl {
	case QueueOursDefault, QueueOursTuned:
		return e.drainOurs(impl, conc, jobs)
	case QueueAsynqDefault, QueueAsynqTuned:
		return e.drainAsynq(impl, conc, jobs)
	}
	return 0, fmt.Errorf("drain: unknown implementation %q", impl)
}

func (e *QueueEnv) drainOurs(impl string, conc, jobs int) (jps float64, err error) {
	q, err := e.newOurs(impl)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	qname := e.queueName("drain")
	defer func() { err = errors.Join(err, e.deleteOursQueue(qname)) }()
	if err := fillOurs(q, qname, jobs); err != nil {
		return 0, err
	}
	w, err := queue.NewWorker(q, queue.WorkerConfig{Concurrency: conc, Queues: map[string]int{qname: 1}})
	if err != nil {
		return 0, err
	}
	watch := newDrainWatch(jobs)
	if err := w.HandleFunc(queueJobType, func(context.Context, *queue.Delivery) error { watch.hit(); return nil }); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctxBg)
	runDone := make(chan struct{})
	start := time.Now()
	go func() { _ = w.Run(ctx); close(runDone) }()
	jps, err = watch.wait(start)
	cancel()
	<-runDone
	return jps, err
}

func (e *QueueEnv) drainAsynq(impl string, conc, jobs int) (jps float64, err error) {
	c := asynq.NewClient(e.asynqOpt(impl))
	defer c.Close()
	qname := e.queueName("drain")
	defer func() { err = errors.Join(err, e.deleteAsynqQueue(qname)) }()
	if err := fillAsynq(c, qname, jobs); err != nil {
		return 0, err
	}
	srv := e.asynqServer(impl, qname, conc)
	watch := newDrainWatch(jobs)
	mux := asynq.NewServeMux()
	mux.HandleFunc(queueJobType, func(context.Context, *asynq.Task) error { watch.hit(); return nil })
	start := time.Now()
	if err := srv.Start(mux); err != nil {
		return 0, err
	}
	jps, err = watch.wait(start)
	srv.Shutdown()
	return jps, err
}

// Enqueue kinds: how a mode calls.
const (
	QueueEnqSerial   = "Enqueue, serial"
	QueueEnqParallel = "Enqueue, 16 goroutines"
	QueueEnqBatch    = "EnqueueBatch, 100 per call, serial"
)

// QueueEnqMode names the enqueue mode of kind in configuration impl.
func QueueEnqMode(impl, kind string) string { return impl + ": " + kind }

// QueueEnqueueModes lists the modes in report order: serial and 16
// goroutines in every configuration, EnqueueBatch in ours (asynq has none).
var QueueEnqueueModes = func() []string {
	var modes []string
	for _, kind := range []string{QueueEnqSerial, QueueEnqParallel, QueueEnqBatch} {
		for _, impl := range QueueImpls {
			if kind == QueueEnqBatch && !QueueIsOurs(impl) {
				continue
			}
			modes = append(modes, QueueEnqMode(impl, kind))
		}
	}
	return modes
}()

// QueueEnqueueBlocks is the number of blocks each mode's jobs are split
// into by EnqueueRun.
const QueueEnqueueBlocks = 10

// EnqueueRun measures every enqueue mode once, block-interleaved: each
// mode's jobs (QueueEnqueueSerial, QueueEnqueueParJobs or QueueBatchJobs)
// are split into QueueEnqueueBlocks blocks, and the blocks run mode after
// mode (the starting mode rotating with every round), so that every mode
// samples the same stretches of a shared machine. It returns jobs/s per
// mode: its jobs over the sum of its blocks' times. Each mode enqueues
// into a queue of its own, deleted afterwards (untimed), through a Queue
// or an asynq.Client of its configuration.
func (e *QueueEnv) EnqueueRun() (res map[string]float64, err error) {
	p := queuePayload()
	producers := map[string]any{}
	for _, impl := range QueueImpls {
		if QueueIsOurs(impl) {
			q, err := e.newOurs(impl)
			if err != nil {
				return nil, err
			}
			defer q.Close()
			producers[impl] = q
		} else {
			c := asynq.NewClient(e.asynqOpt(impl))
			defer c.Close()
			producers[impl] = c
		}
	}
	type mode struct {
		name  string
		n     int             // jobs in all
		units int             // calls per job block (jobs, or batches)
		per   int             // jobs per call
		conc  int             // goroutines
		call  func(int) error // one call
		spent time.Duration
	}
	var modes []*mode
	for _, kind := range []string{QueueEnqSerial, QueueEnqParallel, QueueEnqBatch} {
		for _, impl := range QueueImpls {
			name := QueueEnqMode(impl, kind)
			if !slices.Contains(QueueEnqueueModes, name) {
				continue
			}
			qname := e.queueName("enq")
			m := &mode{name: name, per: 1, conc: 1}
			switch pr := producers[impl].(type) {
			case *redisqueue.Queue:
				defer func() { err = errors.Join(err, e.deleteOursQueue(qname)) }()
				job := queue.Job{Queue: qname, Type: queueJobType, Payload: p}
				m.call = func(int) error { _, err := pr.Enqueue(ctxBg, job); return err }
				if kind == QueueEnqBatch {
					batch := make([]queue.Job, QueueBatchSize)
					for i := range batch {
						batch[i] = job
					}
					m.per = QueueBatchSize
					m.call = func(int) error { _, err := pr.EnqueueBatch(ctxBg, batch); return err }
				}
			case *asynq.Client:
				defer func() { err = errors.Join(err, e.deleteAsynqQueue(qname)) }()
				m.call = func(int) error {
					_, err := pr.Enqueue(asynq.NewTask(queueJobType, p), asynq.Queue(qname))
					return err
				}
			}
			switch kind {
			case QueueEnqSerial:
				m.n = QueueEnqueueSerial
			case QueueEnqParallel:
				m.n, m.conc = QueueEnqueueParJobs, QueueEnqueueWorkers
			default:
				m.n = QueueBatchJobs
			}
			m.units = m.n / m.per / QueueEnqueueBlocks
			// One untimed call first: ours loads its script, asynq registers
			// the queue (SADD asynq:queues).
			if err := m.call(0); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			modes = append(modes, m)
		}
	}
	for b := range QueueEnqueueBlocks {
		for k := range modes {
			m := modes[(b+k)%len(modes)]
			start := time.Now()
			if err := parallel(m.units, m.conc, m.call); err != nil {
				return nil, fmt.Errorf("%s: %w", m.name, err)
			}
			m.spent += time.Since(start)
		}
	}
	res = map[string]float64{}
	for _, m := range modes {
		res[m.name] = float64(m.units*m.per*QueueEnqueueBlocks) / m.spent.Seconds()
	}
	return res, nil
}

// Latency runs workers of impl (concurrency QueueLatencyConc) and a
// producer enqueueing QueueLatencyRate jobs/s for d, each carrying the
// time just before its Enqueue call; the handler records now minus that
// time. It returns the samples, sorted.
func (e *QueueEnv) Latency(impl string, d time.Duration) (lat []time.Duration, err error) {
	var mu sync.Mutex
	record := func(payload []byte) {
		if len(payload) < 8 {
			return
		}
		ts := int64(binary.LittleEndian.Uint64(payload))
		l := time.Duration(time.Now().UnixNano() - ts)
		mu.Lock()
		lat = append(lat, l)
		mu.Unlock()
	}
	qname := e.queueName("lat")
	var enqueue func(p []byte) error
	var stop func()
	switch impl {
	case QueueOursDefault, QueueOursTuned:
		q, err := e.newOurs(impl)
		if err != nil {
			return nil, err
		}
		defer q.Close()
		defer func() { err = errors.Join(err, e.deleteOursQueue(qname)) }()
		w, err := queue.NewWorker(q, queue.WorkerConfig{Concurrency: QueueLatencyConc, Queues: map[string]int{qname: 1}})
		if err != nil {
			return nil, err
		}
		if err := w.HandleFunc(queueJobType, func(_ context.Context, d *queue.Delivery) error { record(d.Job.Payload); return nil }); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(ctxBg)
		runDone := make(chan struct{})
		go func() { _ = w.Run(ctx); close(runDone) }()
		stop = func() { cancel(); <-runDone }
		enqueue = func(p []byte) error {
			_, err := q.Enqueue(ctxBg, queue.Job{Queue: qname, Type: queueJobType, Payload: p})
			return err
		}
	case QueueAsynqDefault, QueueAsynqTuned:
		c := asynq.NewClient(e.asynqOpt(impl))
		defer c.Close()
		defer func() { err = errors.Join(err, e.deleteAsynqQueue(qname)) }()
		srv := e.asynqServer(impl, qname, QueueLatencyConc)
		mux := asynq.NewServeMux()
		mux.HandleFunc(queueJobType, func(_ context.Context, t *asynq.Task) error { record(t.Payload()); return nil })
		if err := srv.Start(mux); err != nil {
			return nil, err
		}
		stop = srv.Shutdown
		enqueue = func(p []byte) error {
			_, err := c.Enqueue(asynq.NewTask(queueJobType, p), asynq.Queue(qname))
			return err
		}
	default:
		return nil, fmt.Errorf("latency: unknown implementation %q", impl)
	}
	time.Sleep(200 * time.Millisecond) // let the workers reach their idle wait
	n := int(d.Seconds() * QueueLatencyRate)
	interval := time.Second / QueueLatencyRate
	start := time.Now()
	var perr error
	for i := range n {
		// A steady schedule: job i at start + i·interval, however long
		// the previous Enqueue took.
		if w := time.Until(start.Add(time.Duration(i) * interval)); w > 0 {
			time.Sleep(w)
		}
		p := queuePayload()
		binary.LittleEndian.PutUint64(p, uint64(time.Now().UnixNano()))
		if perr = enqueue(p); perr != nil {
			break
		}
	}
	// Wait for the stragglers (asynq's default check interval is up to
	// 1.5 s).
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got := len(lat)
		mu.Unlock()
		if got >= n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	if perr != nil {
		return nil, perr
	}
	if len(lat) < n {
		return nil, fmt.Errorf("latency: %d of %d jobs handled", len(lat), n)
	}
	slices.Sort(lat)
	return lat, nil
}

// Percentile returns the p-th percentile (0 < p ≤ 100, nearest rank) of
// sorted samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// In-memory modes.
const (
	QueueMemWorker = "ours queue.Memory + queue.Worker, Concurrency 10"
	QueueMemRaw    = "ours queue.Memory, raw Dequeue/Ack loop, 1 goroutine"
)

// MemoryDrain pre-enqueues jobs no-op jobs on a fresh queue.Memory
// (EnqueueBatch, untimed) and times draining them, with a Worker at
// concurrency 10 (worker) or one goroutine calling Dequeue and Ack; it
// returns jobs/s.
func MemoryDrain(worker bool, jobs int) (float64, error) {
	m, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	const qname = "mem"
	p := queuePayload()
	batch := make([]queue.Job, 1000)
	for i := range batch {
		batch[i] = queue.Job{Queue: qname, Type: queueJobType, Payload: p}
	}
	for n := jobs; n > 0; n -= len(batch) {
		if _, err := m.EnqueueBatch(ctxBg, batch[:min(n, len(batch))]); err != nil {
			return 0, err
		}
	}
	if !worker {
		start := time.Now()
		for range jobs {
			d, err := m.Dequeue(ctxBg, []string{qname}, queueMemoryLease)
			if err != nil {
				return 0, err
			}
			if err := d.Ack(ctxBg, nil); err != nil {
				return 0, err
			}
		}
		return float64(jobs) / time.Since(start).Seconds(), nil
	}
	w, err := queue.NewWorker(m, queue.WorkerConfig{Concurrency: queueMemoryWorkConc, Queues: map[string]int{qname: 1}})
	if err != nil {
		return 0, err
	}
	watch := newDrainWatch(jobs)
	if err := w.HandleFunc(queueJobType, func(context.Context, *queue.Delivery) error { watch.hit(); return nil }); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctxBg)
	runDone := make(chan struct{})
	start := time.Now()
	go func() { _ = w.Run(ctx); close(runDone) }()
	jps, err := watch.wait(start)
	cancel()
	<-runDone
	return jps, err
}

// Memory-per-job implementations.
const (
	QueueMemOurs  = "ours redisqueue"
	QueueMemAsynq = "asynq"
)

// PrivateRedis is a redis-server this process started for the memory
// measurement, so that no other client's keys move used_memory.
type PrivateRedis struct {
	Addr string
	cmd  *exec.Cmd
	rdb  *redis.Client
}

// StartPrivateRedis starts redis-server (from $PATH) on a free loopback
// port, without persistence.
func StartPrivateRedis() (*PrivateRedis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--dir", os.TempDir())
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &PrivateRedis{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	// Wait for the port with plain dials: go-redis logs every failed one.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", r.Addr, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if i == 250 {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("redis-server on %s: %w", r.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.rdb = newQueueClient(r.Addr)
	if err := r.rdb.Ping(ctxBg).Err(); err != nil {
		r.Close()
		return nil, fmt.Errorf("redis-server on %s: %w", r.Addr, err)
	}
	return r, nil
}

// Close stops the server.
func (r *PrivateRedis) Close() {
	_ = r.rdb.Close()
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// usedMemory reads INFO memory's used_memory.
func usedMemory(rdb *redis.Client) (int64, error) {
	s, err := rdb.Info(ctxBg, "memory").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("INFO memory has no used_memory")
}

// MemoryPerJob empties the private server, enqueues n jobs of
// QueuePayloadSize bytes with impl (ours: EnqueueBatch of 100; asynq:
// Enqueue from 16 goroutines), and returns the used_memory delta over n,
// in bytes per job. Nothing consumes the jobs.
func (r *PrivateRedis) MemoryPerJob(impl string, n int) (float64, error) {
	if err := r.rdb.FlushAll(ctxBg).Err(); err != nil {
		return 0, err
	}
	qname := "mem"
	var fill func() error
	switch impl {
	case QueueMemOurs:
		q, err := redisqueue.New(r.rdb, redisqueue.Config{Prefix: "scaleoutbench:queue:"})
		if err != nil {
			return 0, err
		}
		defer q.Close()
		// One job before the baseline: the queue's fixed keys (wake list,
		// loaded script) are not per-job memory.
		if err := fillOurs(q, qname, 1); err != nil {
			return 0, err
		}
		fill = func() error { return fillOurs(q, qname, n) }
	case QueueMemAsynq:
		c := asynq.NewClientFromRedisClient(r.rdb)
		if err := fillAsynq(c, qname, 1); err != nil {
			return 0, err
		}
		fill = func() error { return fillAsynq(c, qname, n) }
	default:
		return 0, fmt.Errorf("memory per job: unknown implementation %q", impl)
	}
	before, err := usedMemory(r.rdb)
	if err != nil {
		return 0, err
	}
	if err := fill(); err != nil {
		return 0, err
	}
	after, err := usedMemory(r.rdb)
	if err != nil {
		return 0, err
	}
	if err := r.rdb.FlushAll(ctxBg).Err(); err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n), nil
}
