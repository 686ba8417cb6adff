package queue

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/observe"
)

// A Handler runs jobs of one type. Returning nil acknowledges the job
// (with the result a ResultFunc returned, or none); returning an error records
// a failed attempt, retried after the job's backoff unless the error
// wraps ErrPermanent (see Permanent) or the attempts are spent; returning
// SnoozeFor(delay) puts the job off for delay without counting the
// attempt (Delivery.Snooze). Jobs the handler declared with
// Delivery.Then are enqueued with the Ack, atomically, and only then.
// ctx ends when the job's timeout passes, when the job is canceled or its
// lease is lost (context.Cause tells ErrCanceled or ErrLeaseLost), and
// when the Worker's shutdown grace runs out.
type Handler interface {
	Process(ctx context.Context, d *Delivery) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, d *Delivery) error

// Process calls f.
func (f HandlerFunc) Process(ctx context.Context, d *Delivery) error { return f(ctx, d) }

// Middleware wraps a Handler with behaviour shared by every job: reading
// Job.Headers into the context (a trace span, a request ID, a tenant),
// logging, metrics, recovery policies. It is called once per handler, when
// the handler is registered, not once per job; the Handler it returns runs
// every delivery of the jobs of that type. See WorkerConfig.Middleware.
type Middleware func(Handler) Handler

// ResultFunc adapts a function that returns the job's result to Handler:
// when err is nil, the Worker acknowledges the job with the result
// (JobInfo.Result). A Handler that wraps it (middleware) must pass on the
// context the Worker gave it, or one derived from it, for the result to
// reach the Worker.
type ResultFunc func(ctx context.Context, d *Delivery) ([]byte, error)

// Process calls f and hands the result to the Worker.
func (f ResultFunc) Process(ctx context.Context, d *Delivery) error {
	res, err := f(ctx, d)
	if err == nil {
		setResult(ctx, res)
	}
	return err
}

type resultKey struct{}

// resultSlot holds the result a handler sets for its Ack.
type resultSlot struct {
	mu  sync.Mutex
	res []byte
}

// setResult sets the result the Worker acknowledges the job with when its
// handler returns nil; outside a Worker's handler it does nothing.
func setResult(ctx context.Context, result []byte) {
	if s, ok := ctx.Value(resultKey{}).(*resultSlot); ok {
		s.mu.Lock()
		s.res = result
		s.mu.Unlock()
	}
}

// permanentError is an error with its own message that also wraps
// ErrPermanent.
type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() []error { return []error{ErrPermanent, e.err} }

// Permanent wraps err so that the job fails at once into the dead-letter
// set instead of being retried; the message stays err's. Permanent(nil)
// is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// A PanicError is the failure recorded when a handler panics. Its message,
// which becomes the job's LastErr, names the value only: the stack goes to
// the Worker's Logger, since LastErr is for callers of Status and Wait,
// who may show it to their own clients.
type PanicError struct {
	Value any    // what the handler panicked with
	Stack []byte // the panicking goroutine's stack
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("queue: handler panicked: %v", e.Value)
}

// Defaults of WorkerConfig.
const (
	DefaultConcurrency     = 10
	DefaultLease           = 30 * time.Second
	DefaultJobTimeout      = 30 * time.Minute
	DefaultShutdownTimeout = 30 * time.Second
)

// WorkerConfig configures a Worker. Zero values mean the defaults.
type WorkerConfig struct {
	// Queues maps the queues to take jobs from to their weights (> 0);
	// default {DefaultQueue: 1}. Each Dequeue asks for the queues in a
	// random order where a queue of weight w comes first w times as often
	// as one of weight 1 (so a busy heavy queue cannot starve a light
	// one), unless StrictPriority.
	Queues map[string]int
	// StrictPriority asks for the queues always in the order of their
	// weights, highest first (ties by name): a lower queue runs only when
	// the higher ones are empty.
	StrictPriority bool
	// Concurrency is the number of jobs run at once; default
	// DefaultConcurrency.
	Concurrency int
	// Lease is how long each delivery and each heartbeat's extension holds
	// the job; default DefaultLease.
	Lease time.Duration
	// Heartbeat is how often a running job's lease is extended; default
	// Lease/3. It must be shorter than Lease.
	Heartbeat time.Duration
	// JobTimeout bounds one attempt of a job whose Job.Timeout is 0;
	// default DefaultJobTimeout.
	JobTimeout time.Duration
	// ShutdownTimeout is how long Run lets running jobs finish once its
	// context is done; then their contexts are canceled and their jobs
	// released for another worker. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Logger receives dequeue errors, lost leases, failed settlements and
	// handlers' panics with their stacks; nil means slog.Default() (see
	// the logging rule in package scaleout's documentation).
	Logger *slog.Logger
	// Meter receives the Worker's metrics, by queue (see package observe
	// and the package documentation's Metrics and tracing): jobs started,
	// succeeded, failed, retried and dead-lettered, handler durations and
	// lost leases. nil means none. Each queue of Queues has its
	// instruments bound once, by NewWorker.
	Meter observe.Meter
	// Middleware wraps every handler, the first outermost: with
	// {A, B}, a job runs A, which calls B, which calls the handler, so
	// what A puts in the context B and the handler see, and A sees what
	// B and the handler return. The chain is built once per handler, in
	// Handle (and once, in NewWorker, for jobs of a type with no handler:
	// they run through the middleware too, into a handler that fails
	// them permanently with ErrUnknownType). Each job's run of the chain
	// is inside the Worker's panic recovery and the job's timeout, with
	// the context the Worker gives the handler (its values, its deadline
	// and its cancellation by Cancel or a lost lease); a middleware must
	// pass on that context or one derived from it (see ResultFunc). What
	// the chain returns settles the job, as a handler's error does.
	Middleware []Middleware
}

// settleTimeout bounds each Ack, Fail, Release and Extend call.
const settleTimeout = 10 * time.Second

// Dequeue error backoff: from dequeueBackoffMin doubling to
// dequeueBackoffMax, each wait jittered over [d/2, d).
const (
	dequeueBackoffMin = 100 * time.Millisecond
	dequeueBackoffMax = 5 * time.Second
)

// A Worker takes jobs from a JobQueue and runs their handlers. Register
// handlers with Handle, then call Run.
type Worker struct {
	q       JobQueue
	cfg     WorkerConfig
	log     *slog.Logger
	queues  []string                 // by weight, highest first, ties by name
	weights []int                    // of queues
	total   int                      // sum of weights
	metrics map[string]*queueMetrics // by queue, with a Meter

	mu       sync.RWMutex
	handlers map[string]Handler // with the middleware applied
	// unknown runs jobs of a type with no handler: the middleware around
	// a handler failing them with ErrUnknownType.
	unknown Handler

	running atomic.Bool
}

// NewWorker returns a Worker taking jobs from q. A bad config is an error
// wrapping ErrInvalidConfig.
func NewWorker(q JobQueue, cfg WorkerConfig) (*Worker, error) {
	if q == nil {
		return nil, fmt.Errorf("%w: worker: nil JobQueue", ErrInvalidConfig)
	}
	if len(cfg.Queues) == 0 {
		cfg.Queues = map[string]int{DefaultQueue: 1}
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = cfg.Lease / 3
	}
	if cfg.JobTimeout == 0 {
		cfg.JobTimeout = DefaultJobTimeout
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	switch {
	case cfg.Concurrency < 0:
		return nil, fmt.Errorf("%w: worker: negative Concurrency", ErrInvalidConfig)
	case cfg.Lease < 0 || cfg.JobTimeout < 0 || cfg.ShutdownTimeout < 0:
		return nil, fmt.Errorf("%w: worker: negative Lease, JobTimeout or ShutdownTimeout", ErrInvalidConfig)
	case cfg.Heartbeat <= 0 || cfg.Heartbeat >= cfg.Lease:
		return nil, fmt.Errorf("%w: worker: Heartbeat %v must be in (0, Lease %v)", ErrInvalidConfig, cfg.Heartbeat, cfg.Lease)
	}
	for i, mw := range cfg.Middleware {
		if mw == nil {
			return nil, fmt.Errorf("%w: worker: Middleware[%d] is nil", ErrInvalidConfig, i)
		}
	}
	cfg.Middleware = slices.Clone(cfg.Middleware)
	w := &Worker{q: q, cfg: cfg, log: cfg.Logger, handlers: map[string]Handler{}}
	if w.log == nil {
		w.log = slog.Default()
	}
	unknown, err := w.chain(HandlerFunc(func(_ context.Context, d *Delivery) error {
		return Permanent(fmt.Errorf("%w: %q", ErrUnknownType, d.Job.Type))
	}))
	if err != nil {
		return nil, err
	}
	w.unknown = unknown
	for name, weight := range cfg.Queues {
		if !validName(name) {
			return nil, fmt.Errorf("%w: worker: queue name %q: want 1 to %d bytes of [A-Za-z0-9._:-]", ErrInvalidConfig, name, maxName)
		}
		if weight <= 0 {
			return nil, fmt.Errorf("%w: worker: queue %q has weight %d, want > 0", ErrInvalidConfig, name, weight)
		}
		w.queues = append(w.queues, name)
	}
	slices.SortFunc(w.queues, func(a, b string) int {
		return cmp.Or(cmp.Compare(cfg.Queues[b], cfg.Queues[a]), cmp.Compare(a, b))
	})
	for _, name := range w.queues {
		w.weights = append(w.weights, cfg.Queues[name])
		w.total += cfg.Queues[name]
	}
	if cfg.Meter != nil {
		w.metrics = make(map[string]*queueMetrics, len(w.queues))
		for _, name := range w.queues {
			w.metrics[name] = newQueueMetrics(cfg.Meter, name)
		}
	}
	return w, nil
}

// Handle registers h for jobs of jobType, wrapped in the Worker's
// Middleware. It may be called while Run runs. An empty type, a nil
// handler, a type already handled or a middleware returning a nil Handler
// is an error wrapping ErrInvalidConfig.
func (w *Worker) Handle(jobType string, h Handler) error {
	if jobType == "" || h == nil {
		return fmt.Errorf("%w: worker: Handle needs a job type and a handler", ErrInvalidConfig)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.handlers[jobType]; ok {
		return fmt.Errorf("%w: worker: job type %q already has a handler", ErrInvalidConfig, jobType)
	}
	h, err := w.chain(h)
	if err != nil {
		return err
	}
	w.handlers[jobType] = h
	return nil
}

// chain wraps h in the middleware, the first outermost.
func (w *Worker) chain(h Handler) (Handler, error) {
	for i := len(w.cfg.Middleware) - 1; i >= 0; i-- {
		if h = w.cfg.Middleware[i](h); h == nil {
			return nil, fmt.Errorf("%w: worker: Middleware[%d] returned a nil Handler", ErrInvalidConfig, i)
		}
	}
	return h, nil
}

// HandleFunc registers f for jobs of jobType; see Handle.
func (w *Worker) HandleFunc(jobType string, f func(ctx context.Context, d *Delivery) error) error {
	if f == nil {
		return w.Handle(jobType, nil)
	}
	return w.Handle(jobType, HandlerFunc(f))
}

func (w *Worker) handler(jobType string) Handler {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.handlers[jobType]
}

// order returns the queue list for one Dequeue: by weight when strict,
// else a weighted random order (each next queue drawn with probability
// proportional to its weight among those left).
func (w *Worker) order() []string {
	if w.cfg.StrictPriority || len(w.queues) == 1 {
		return slices.Clone(w.queues)
	}
	names := slices.Clone(w.queues)
	weights := slices.Clone(w.weights)
	total := w.total
	for i := range names {
		r := mrand.IntN(total)
		j := i
		for ; r >= weights[j]; j++ {
			r -= weights[j]
		}
		names[i], names[j] = names[j], names[i]
		weights[i], weights[j] = weights[j], weights[i]
		total -= weights[i]
	}
	return names
}

// Run takes and runs jobs until ctx is done, then shuts down: it stops
// taking jobs, lets running handlers finish for up to ShutdownTimeout,
// then cancels their contexts and releases their jobs for redelivery
// (without counting the attempt; a handler that still returns nil is
// acknowledged). It returns ctx's error once every goroutine it started
// has ended, so a handler that ignores its context holds Run up. Errors
// of the queue (a backend down) are logged and retried with backoff; they
// never end Run. A second Run while one runs returns ErrAlreadyRunning at
// once.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer w.running.Store(false)

	// Handlers outlive ctx by the shutdown grace: their contexts come from
	// jobsCtx, canceled when the grace runs out.
	jobsCtx, stopJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopJobs(nil)

	var wg sync.WaitGroup
	for range w.cfg.Concurrency {
		wg.Go(func() { w.slot(ctx, jobsCtx) })
	}
	slotsDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(slotsDone)
	}()

	select {
	case <-slotsDone:
	case <-ctx.Done():
		grace := time.NewTimer(w.cfg.ShutdownTimeout)
		select {
		case <-slotsDone:
		case <-grace.C:
			w.log.Warn("queue: worker: shutdown timeout, canceling running jobs", "timeout", w.cfg.ShutdownTimeout)
			stopJobs(errShutdown)
			<-slotsDone
		}
		grace.Stop()
	}
	return ctx.Err()
}

// errShutdown is the cause of a handler's context canceled by shutdown.
var errShutdown = errors.New("queue: worker shut down")

// errJobTimeout is the cause of a handler's context whose timeout passed.
var errJobTimeout = errors.New("queue: job timed out")

// slot is one of Concurrency loops: dequeue, run, repeat.
func (w *Worker) slot(ctx, jobsCtx context.Context) {
	backoff := dequeueBackoffMin
	var next *Delivery // leased by the last settlement
	defer func() {
		if next != nil { // shut down before it ran: give it back
			sctx, cancel := context.WithTimeout(context.WithoutCancel(jobsCtx), settleTimeout)
			defer cancel()
			if err := next.Release(sctx); err != nil {
				w.log.Error("queue: worker: releasing a job at shutdown", "job", next.ID, "err", err)
			}
		}
	}()
	for ctx.Err() == nil {
		if next != nil {
			d := next
			next = nil
			next = w.process(ctx, jobsCtx, d)
			continue
		}
		d, err := w.q.Dequeue(ctx, w.order(), w.cfg.Lease)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := backoff/2 + mrand.N(backoff/2+1)
			w.log.Error("queue: worker: dequeue failed", "err", err, "retry_in", wait)
			backoff = min(2*backoff, dequeueBackoffMax)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = dequeueBackoffMin
		if d != nil {
			next = w.process(ctx, jobsCtx, d)
		}
	}
}

// process runs one delivery and settles it. When the worker takes jobs
// from one queue, is not shutting down (ctx) and the queue is an
// AckDequeuer, an Ack also leases the next job, which process returns.
func (w *Worker) process(ctx, jobsCtx context.Context, d *Delivery) (next *Delivery) {
	settle := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(jobsCtx), settleTimeout)
	}

	h := w.handler(d.Job.Type)
	if h == nil {
		h = w.unknown
	}

	timeout := cmp.Or(d.Job.Timeout, w.cfg.JobTimeout)
	jobCtx, cancelJob := context.WithCancelCause(jobsCtx)
	defer cancelJob(nil)
	runCtx, cancelRun := context.WithTimeoutCause(jobCtx, timeout, errJobTimeout)
	defer cancelRun()
	slot := &resultSlot{}
	runCtx = context.WithValue(runCtx, resultKey{}, slot)

	// The heartbeat extends the lease until the handler returns.
	hbCtx, stopHB := context.WithCancel(jobCtx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		w.heartbeat(hbCtx, d, cancelJob)
	}()

	qm := w.metricsOf(d)
	qm.started.Inc()
	var start time.Time
	if qm.duration.Enabled() {
		start = time.Now()
	}
	err := runHandler(runCtx, h, d)
	if qm.duration.Enabled() {
		qm.duration.ObserveDuration(time.Since(start))
	}
	stopHB()
	<-hbDone
	if pe, ok := errors.AsType[*PanicError](err); ok {
		w.jobLog(d).Error("queue: worker: handler panicked", "panic", pe.Value, "stack", string(pe.Stack))
	}

	cause := context.Cause(jobCtx)
	sctx, cancel := settle()
	defer cancel()
	switch {
	case errors.Is(cause, ErrLeaseLost) || errors.Is(cause, ErrCanceled):
		// Someone else owns the job now, or nobody wants it: hands off.
		if errors.Is(cause, ErrLeaseLost) {
			qm.leaseLosses.Inc()
		}
		w.jobLog(d).Warn("queue: worker: job stopped", "cause", cause, "err", err)
	case errors.Is(cause, errShutdown) && err != nil:
		// Cut off by shutdown: give it back without counting the attempt.
		if rerr := d.Release(sctx); rerr != nil {
			w.jobLog(d).Error("queue: worker: releasing a job at shutdown", "err", rerr)
		}
	case err == nil:
		slot.mu.Lock()
		res := slot.res
		slot.mu.Unlock()
		if len(d.next) > 0 {
			w.ackThen(sctx, d, res, qm)
			return nil
		}
		if ad, ok := w.q.(AckDequeuer); ok && len(w.queues) == 1 && ctx.Err() == nil {
			var aerr error
			if next, aerr = ad.AckAndDequeue(sctx, d, res, w.cfg.Lease); aerr != nil {
				w.jobLog(d).Error("queue: worker: acknowledging a job", "err", aerr)
			}
			qm.settled(aerr, qm.succeeded)
			return next
		}
		aerr := d.Ack(sctx, res)
		if aerr != nil {
			w.jobLog(d).Error("queue: worker: acknowledging a job", "err", aerr)
		}
		qm.settled(aerr, qm.succeeded)
	default:
		if se, ok := errors.AsType[*SnoozeError](err); ok {
			serr := d.Snooze(sctx, se.Delay)
			if !errors.Is(serr, ErrUnsupported) && !errors.Is(serr, ErrInvalidConfig) {
				w.snoozed(d, se, serr, qm)
				return nil
			}
			// The queue cannot snooze or the delay is bad: fail the
			// attempt with the reason rather than leave the job leased
			// until its lease runs out, which would fail it anyway.
			err = fmt.Errorf("%w: %w", err, serr)
		}
		if errors.Is(context.Cause(runCtx), errJobTimeout) {
			err = fmt.Errorf("queue: job timed out after %v: %w", timeout, err)
		}
		w.fail(sctx, d, err, qm)
	}
	return nil
}

// fail records a failed attempt of d, for err.
func (w *Worker) fail(ctx context.Context, d *Delivery, err error, qm *queueMetrics) {
	ferr := d.Fail(ctx, err)
	if ferr != nil {
		w.jobLog(d).Error("queue: worker: failing a job", "err", ferr, "job_err", err)
	}
	qm.failedAttempt(d, err, ferr)
}

// ackThen acknowledges d with the jobs its handler declared
// (Delivery.Then), in one step. A refusal that changed nothing (the queue
// is no Chainer, a next job is invalid or its unique key held) fails the
// attempt with the reason, as an impossible snooze does, rather than
// leave the job leased until its lease runs out, which would fail it
// anyway; the retry runs the handler again, which declares its jobs
// again. Another error is logged as a failed Ack is.
func (w *Worker) ackThen(ctx context.Context, d *Delivery, res []byte, qm *queueMetrics) {
	_, err := d.AckThen(ctx, res, d.next...)
	if chainRefused(err) {
		w.fail(ctx, d, fmt.Errorf("queue: the job's next jobs were refused: %w", err), qm)
		return
	}
	if err != nil {
		w.jobLog(d).Error("queue: worker: acknowledging a job", "err", err, "next_jobs", len(d.next))
	}
	qm.settled(err, qm.succeeded)
}

// chainRefused reports whether err is an AckThen's refusal of its next
// jobs, which leaves the delivery current.
func chainRefused(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range []error{ErrUnsupported, ErrInvalidJob, ErrPayloadTooLarge, ErrHeadersTooLarge, ErrDuplicate} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// snoozed reports the Snooze of d, which returned serr: a snoozed
// delivery is only started, as a released one is; a refused one is a lost
// lease, and another error is logged as a failed Ack or Fail is (the
// lease runs out and the queue retries the job).
func (w *Worker) snoozed(d *Delivery, se *SnoozeError, serr error, qm *queueMetrics) {
	if serr == nil {
		return
	}
	if errors.Is(serr, ErrLeaseLost) {
		qm.leaseLosses.Inc()
	}
	w.jobLog(d).Error("queue: worker: snoozing a job", "err", serr, "delay", se.Delay)
}

// jobLog returns the logger of the records about d, made only when one is
// written: slog.Default's handler allocates for With, and a job that goes
// well logs nothing.
func (w *Worker) jobLog(d *Delivery) *slog.Logger {
	return w.log.With("job", d.ID, "type", d.Job.Type, "attempt", d.Attempt)
}

// runHandler calls h, turning a panic into a *PanicError.
func runHandler(ctx context.Context, h Handler, d *Delivery) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return h.Process(ctx, d)
}

// heartbeat extends d's lease every Heartbeat until ctx ends. When the
// queue says the delivery is no longer current or the job was canceled,
// or extensions keep failing until the lease has run out, it cancels the
// job with that cause.
func (w *Worker) heartbeat(ctx context.Context, d *Delivery, cancelJob context.CancelCauseFunc) {
	leaseUntil := d.LeaseUntil
	t := time.NewTicker(w.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ectx, cancel := context.WithTimeout(ctx, min(settleTimeout, w.cfg.Heartbeat))
		start := time.Now()
		err := d.Extend(ectx, w.cfg.Lease)
		cancel()
		switch {
		case err == nil:
			leaseUntil = start.Add(w.cfg.Lease)
		case errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrCanceled):
			cancelJob(err)
			return
		case ctx.Err() != nil:
			return
		default:
			w.jobLog(d).Error("queue: worker: extending a lease", "err", err)
			if !leaseUntil.IsZero() && time.Now().After(leaseUntil) {
				cancelJob(fmt.Errorf("%w: lease ran out while extending failed: %w", ErrLeaseLost, err))
				return
			}
		}
	}
}
