package queue

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/scaleout/scaleout/observe"
)

// MemoryConfig configures a Memory queue. The zero value is valid.
type MemoryConfig struct {
	// MaxPayload bounds Job.Payload; 0 means DefaultMaxPayload.
	MaxPayload int
	// Backoff is the wait before retry number attempt (1 after the first
	// failure); nil means DefaultBackoff. A result of 0 or less retries at
	// once.
	Backoff func(attempt int) time.Duration
	// Meter receives scaleout.queue.enqueued, by queue (see package
	// observe); nil means none. The Worker's metrics are its own
	// (WorkerConfig.Meter), and the depth of the queues DepthReporter's.
	Meter observe.Meter
}

// Memory is a JobQueue held in this process: for single-process
// applications and as a fake in tests. It implements JobQueue, Settler,
// Snoozer, Chainer, BatchEnqueuer, DeadLetters, Limiter and Inspector with the
// semantics their documentation gives, and passes queue/queuetest.
//
// Memory runs no goroutine of its own: delayed jobs, retries and expired
// leases are handled when Dequeue, Status or Wait next look at the queue,
// with timers only while a caller is blocked. Payloads and results are
// copied in and out, so callers may reuse their buffers.
//
// Details the interfaces leave open:
//   - An expired lease is a failed attempt as soon as it has expired: the
//     late worker's Ack is refused even before the job is delivered again.
//   - Cancel of an active job ends it at once (Wait returns StateCanceled)
//     and frees its slot under Limits.Concurrency.
//   - Extend also moves the Delivery's LeaseUntil.
//   - Fencing tokens grow across all jobs of the queue, not only per job.
//   - Requeue of a job that is not dead is ErrNotFound; a requeued job
//     does not take its UniqueKey again.
//   - Dequeue with no queues, an invalid queue name or a lease of 0 or less,
//     Extend with a lease of 0 or less, and SetLimits with negative limits
//     fail with ErrInvalidConfig.
//   - Generated IDs are 16 random base-32 characters (80 bits).
//   - Ended jobs are forgotten at the end of their Retention exactly as far
//     as Status, Wait and Cancel see, their memory freed within about a
//     millisecond after by the next Enqueue.
//   - Inspector calls hold the Memory's lock while they run, and cost,
//     with n the queue's jobs in the state concerned: Queues O(q log q)
//     for q queues (a queue once used is never forgotten); Counts O(1);
//     List of ready or dead jobs O(n + page), of scheduled or active jobs
//     O(n log n) (a sort); Pause and Resume O(1); RequeueAll and
//     DeleteAllDead O(dead), at once; DeleteDead O(1). List's cursors
//     have no exception to their stability but active jobs extended
//     between pages.
type Memory struct {
	maxPayload int
	backoff    func(int) time.Duration
	meter      observe.Meter

	mu       sync.Mutex
	closed   bool
	closedCh chan struct{}
	// timerRuns counts the wake-up timer's firings armed and not yet
	// run, for Close to wait on.
	timerRuns sync.WaitGroup
	tokens    uint64 // the last fencing token handed out
	readySeq  uint64 // the last mjob.readySeq handed out
	jobs      map[JobID]*mjob
	queues    map[string]*mqueue
	// ended holds the ended jobs by Retention, each ring in the order
	// the jobs ended and so in the order they are to be forgotten.
	ended      map[time.Duration]*ring[entry]
	nextForget time.Time // forget does nothing before
	// waiters are the blocked Dequeue calls, in the order they blocked.
	waiters []*waiter
	// timer wakes all waiters at timerAt, the earliest time (when it was
	// set) that a delayed job, an expired lease or a rate limit may let
	// one of them proceed. It runs only while someone waits.
	timer   *time.Timer
	timerAt time.Time
}

// A waiter is a blocked Dequeue call.
type waiter struct {
	queues []string
	ch     chan struct{} // a token when it was taken off the waiters list
	listed bool
	// sig, when set, is the queue in which a job became ready for this
	// waiter to take: it must take a job or pass the signal on.
	sig *mqueue
}

func (w *waiter) notify() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

func (w *waiter) listens(q string) bool {
	for _, name := range w.queues {
		if name == q {
			return true
		}
	}
	return false
}

var (
	_ JobQueue      = (*Memory)(nil)
	_ Settler       = (*Memory)(nil)
	_ BatchEnqueuer = (*Memory)(nil)
	_ DeadLetters   = (*Memory)(nil)
	_ Limiter       = (*Memory)(nil)
	_ Inspector     = (*Memory)(nil)
	_ Settler       = (*mjob)(nil)
)

// mjob is one job of a Memory queue.
type mjob struct {
	m     *Memory
	id    JobID
	job   Job
	q     *mqueue
	state State

	result     []byte
	attempt    int
	lastErr    string
	token      uint64 // of the last delivery
	seq        uint64 // bumped whenever the job moves; stale index entries differ
	enqueuedAt time.Time
	runAt      time.Time // when scheduled
	hidx       int       // index in q.sched or q.leases
	startedAt  time.Time
	endedAt    time.Time
	leaseUntil time.Time
	done       chan struct{} // closed when the job ends; made on demand by Wait
	readyAt    time.Time     // when it last became ready
	readySeq   uint64        // the order it became ready in, across the Memory
}

// entry refers to a job in one of the indexes; it is stale when the job's
// seq moved on.
type entry struct {
	j   *mjob
	seq uint64
	at  time.Time // in m.ended: when to forget the job
}

func (e entry) live() bool { return e.j.seq == e.seq }

type mqueue struct {
	name   string
	ready  [10]ring[entry] // by priority
	nready int
	sched  jobHeap // scheduled jobs by runAt
	leases jobHeap // active jobs by leaseUntil
	active int
	dead   []entry // in the order the jobs died
	nstale int     // dead entries no longer live
	ndead  int     // dead jobs (live entries of dead)
	unique map[string]uniq

	paused                   bool
	doneTotal, canceledTotal int64

	limits Limits
	tokens float64
	filled time.Time // when tokens was last refilled

	enqueued observe.Counter // scaleout.queue.enqueued of this queue
}

type uniq struct {
	id    JobID
	until time.Time
}

// NewMemory returns an empty in-memory queue.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.MaxPayload < 0 {
		return nil, fmt.Errorf("%w: negative MaxPayload", ErrInvalidConfig)
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	return &Memory{
		maxPayload: cfg.MaxPayload,
		backoff:    cfg.Backoff,
		meter:      cfg.Meter,
		closedCh:   make(chan struct{}),
		jobs:       make(map[JobID]*mjob),
		queues:     make(map[string]*mqueue),
		ended:      make(map[time.Duration]*ring[entry]),
	}, nil
}

// Close makes every later call fail with ErrClosed and wakes blocked
// Dequeue and Wait calls, which return ErrClosed. It stops the wake-up
// timer and returns once its callback, if running, has returned. It is
// idempotent.
func (m *Memory) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.closedCh)
		if m.timer != nil && m.timer.Stop() {
			m.timerRuns.Done() // the armed firing will not run
		}
	}
	m.mu.Unlock()
	// armTimer arms nothing once closed is set, so the count only falls.
	m.timerRuns.Wait()
	return nil
}

func (m *Memory) queue(name string) *mqueue {
	q := m.queues[name]
	if q == nil {
		q = &mqueue{
			name:     name,
			sched:    jobHeap{at: func(j *mjob) time.Time { return j.runAt }},
			leases:   jobHeap{at: func(j *mjob) time.Time { return j.leaseUntil }},
			enqueued: observe.NewCounter(m.meter, observe.QueueEnqueued, name),
		}
		m.queues[name] = q
	}
	return q
}

// wakeOne wakes the first waiter on q, to take the job that became ready
// in it.
func (m *Memory) wakeOne(q *mqueue) {
	for i, w := range m.waiters {
		if w.listens(q.name) {
			m.waiters = append(m.waiters[:i], m.waiters[i+1:]...)
			m.waiters[:len(m.waiters)+1][len(m.waiters)] = nil
			w.listed = false
			w.sig = q
			w.notify()
			return
		}
	}
}

// wakeAll wakes every waiter to look again.
func (m *Memory) wakeAll() {
	for i, w := range m.waiters {
		w.listed = false
		w.notify()
		m.waiters[i] = nil
	}
	m.waiters = m.waiters[:0]
}

func (m *Memory) unlist(w *waiter) {
	for i, x := range m.waiters {
		if x == w {
			m.waiters = append(m.waiters[:i], m.waiters[i+1:]...)
			m.waiters[:len(m.waiters)+1][len(m.waiters)] = nil
			w.listed = false
			return
		}
	}
}

// passOn hands w's signal, if any, to another waiter when its queue still
// has a job to take.
func (m *Memory) passOn(w *waiter, now time.Time) {
	q := w.sig
	w.sig = nil
	if q != nil && q.nready > 0 {
		if ok, _ := q.allowed(now); ok {
			m.wakeOne(q)
		}
	}
}

// armTimer makes sure the waiters are woken at at.
func (m *Memory) armTimer(at time.Time) {
	if m.closed || (!m.timerAt.IsZero() && !at.Before(m.timerAt)) {
		return
	}
	m.timerAt = at
	d := max(time.Until(at), 0)
	if m.timer == nil {
		m.timerRuns.Add(1)
		m.timer = time.AfterFunc(d, m.onTimer)
	} else if !m.timer.Reset(d) {
		m.timerRuns.Add(1) // not pending before: a new firing is armed
	}
}

func (m *Memory) onTimer() {
	defer m.timerRuns.Done()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.timerAt = time.Time{}
	m.wakeAll()
}

// Enqueue implements JobQueue.
func (m *Memory) Enqueue(_ context.Context, j Job) (JobID, error) {
	if j.ID == "" {
		j.ID = randomID()
	}
	j, id, err := Prepare(j, m.maxPayload)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.enqueueLocked(j, id, time.Now())
}

// EnqueueBatch implements BatchEnqueuer. Invalid jobs fail the batch before
// any job is enqueued; a duplicate stops it there (with the duplicate's
// existing ID in its place).
func (m *Memory) EnqueueBatch(_ context.Context, jobs []Job) ([]JobID, error) {
	ids := make([]JobID, len(jobs))
	prepared := make([]Job, len(jobs))
	for i, j := range jobs {
		if j.ID == "" {
			j.ID = randomID()
		}
		p, id, err := Prepare(j, m.maxPayload)
		if err != nil {
			return make([]JobID, len(jobs)), fmt.Errorf("job %d: %w", i, err)
		}
		prepared[i], ids[i] = p, id
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for i := range prepared {
		id, err := m.enqueueLocked(prepared[i], ids[i], now)
		ids[i] = id
		if err != nil {
			clear(ids[i+1:])
			return ids, fmt.Errorf("job %d: %w", i, err)
		}
	}
	return ids, nil
}

func (m *Memory) enqueueLocked(j Job, id JobID, now time.Time) (JobID, error) {
	if m.closed {
		return "", ErrClosed
	}
	m.forget(now)
	if old := m.jobs[id]; old != nil && !old.forgotten(now) {
		if old.job.Type == j.Type && bytes.Equal(old.job.Payload, j.Payload) {
			return id, nil // the same job again: a retry, answered with the first
		}
		return id, fmt.Errorf("%w: job %s exists with another type or payload", ErrDuplicate, id)
	}
	q := m.queue(j.Queue)
	if j.UniqueKey != "" {
		if u, ok := q.unique[j.UniqueKey]; ok && now.Before(u.until) {
			return u.id, fmt.Errorf("%w: unique key %q is held by %s", ErrDuplicate, j.UniqueKey, u.id)
		}
		if q.unique == nil {
			q.unique = make(map[string]uniq)
		}
		q.unique[j.UniqueKey] = uniq{id: id, until: now.Add(j.UniqueFor)}
	}
	j.Payload = bytes.Clone(j.Payload)
	j.Headers = maps.Clone(j.Headers)
	mj := &mjob{m: m, id: id, job: j, q: q, enqueuedAt: now}
	m.jobs[id] = mj
	q.enqueued.Inc()
	m.tick(q, now)
	if j.RunAt.After(now) {
		m.schedule(mj, j.RunAt)
	} else {
		m.makeReady(mj, now)
	}
	return id, nil
}

func (m *Memory) makeReady(j *mjob, now time.Time) {
	j.seq++
	j.state = StateReady
	j.readyAt = now
	m.readySeq++
	j.readySeq = m.readySeq
	j.q.ready[j.job.Priority].push(entry{j: j, seq: j.seq})
	j.q.nready++
	m.wakeOne(j.q)
}

func (m *Memory) schedule(j *mjob, at time.Time) {
	j.seq++
	j.state = StateScheduled
	j.runAt = at
	j.q.sched.push(j)
	if j.hidx == 0 && len(m.waiters) > 0 {
		m.armTimer(at)
	}
}

// leave takes j out of its current state's bookkeeping.
func (m *Memory) leave(j *mjob) {
	switch j.state {
	case StateReady:
		j.q.nready--
	case StateScheduled:
		j.q.sched.remove(j)
	case StateActive:
		j.q.leases.remove(j)
		j.q.active--
		if j.q.limits.Concurrency > 0 && j.q.nready > 0 {
			m.wakeOne(j.q) // a slot is free
		}
	}
	j.seq++
}

// end makes j final.
func (m *Memory) end(j *mjob, s State, now time.Time) {
	m.leave(j)
	j.state = s
	j.endedAt = now
	j.runAt = time.Time{}
	r := m.ended[j.job.Retention]
	if r == nil {
		r = new(ring[entry])
		m.ended[j.job.Retention] = r
	}
	r.push(entry{j: j, seq: j.seq, at: now.Add(j.job.Retention)})
	if k := j.job.UniqueKey; k != "" {
		if u, ok := j.q.unique[k]; ok && u.id == j.id {
			delete(j.q.unique, k)
		}
	}
	switch s {
	case StateDead:
		j.q.dead = append(j.q.dead, entry{j: j, seq: j.seq})
		j.q.ndead++
	case StateDone:
		j.q.doneTotal++
	case StateCanceled:
		j.q.canceledTotal++
	}
	if j.done != nil {
		close(j.done)
	}
}

// fail records a failed attempt of the active job j.
func (m *Memory) fail(j *mjob, msg string, permanent bool, now time.Time) {
	j.lastErr = msg
	if permanent || j.attempt >= j.job.MaxAttempts {
		m.end(j, StateDead, now)
		return
	}
	m.leave(j)
	if d := m.backoff(j.attempt); d > 0 {
		m.schedule(j, now.Add(d))
	} else {
		m.makeReady(j, now)
	}
}

// forgetEvery bounds how often forget looks for jobs to forget: jobs are
// dropped in batches, at most this late (lookup checks a job's own
// retention exactly).
const forgetEvery = time.Millisecond

// forget drops the ended jobs whose retention has passed.
func (m *Memory) forget(now time.Time) {
	if now.Before(m.nextForget) {
		return
	}
	m.nextForget = now.Add(forgetEvery)
	for d, r := range m.ended {
		for r.len() > 0 {
			e := r.front()
			if e.live() && now.Before(e.at) {
				break
			}
			r.pop()
			if e.live() {
				j := e.j
				delete(m.jobs, j.id)
				j.seq++ // drops it from the dead list
				if j.state == StateDead {
					j.q.ndead--
					j.q.compactDead()
				}
			}
		}
		if r.len() == 0 {
			delete(m.ended, d)
		}
	}
}

// tick brings q up to date: due scheduled jobs become ready and expired
// leases count as failed attempts.
func (m *Memory) tick(q *mqueue, now time.Time) {
	for len(q.leases.s) > 0 && !now.Before(q.leases.s[0].leaseUntil) {
		m.fail(q.leases.s[0], "lease expired", false, now)
	}
	for len(q.sched.s) > 0 && !now.Before(q.sched.s[0].runAt) {
		j := q.sched.s[0]
		m.leave(j)
		j.runAt = time.Time{}
		m.makeReady(j, now)
	}
}

// allowed reports whether q's limits allow a lease now, and if not only
// because of its rate, when they will.
func (q *mqueue) allowed(now time.Time) (ok bool, at time.Time) {
	if q.paused {
		return false, time.Time{} // Resume wakes the waiters
	}
	l := q.limits
	if l.Concurrency > 0 && q.active >= l.Concurrency {
		return false, time.Time{}
	}
	if l.Rate > 0 {
		burst := float64(l.Burst)
		q.tokens = min(burst, q.tokens+now.Sub(q.filled).Seconds()*l.Rate)
		q.filled = now
		if q.tokens < 1 {
			return false, now.Add(time.Duration((1 - q.tokens) / l.Rate * float64(time.Second)))
		}
	}
	return true, time.Time{}
}

// take leases the next ready job of q.
func (m *Memory) take(q *mqueue, lease time.Duration, now time.Time) *Delivery {
	for p := 9; p >= 0; p-- {
		r := &q.ready[p]
		for r.len() > 0 {
			e := r.pop()
			if !e.live() {
				continue
			}
			j := e.j
			m.leave(j)
			q.active++
			if q.limits.Rate > 0 {
				q.tokens--
			}
			j.state = StateActive
			j.attempt++
			m.tokens++
			j.token = m.tokens // grows with every delivery, and across jobs
			j.startedAt = now
			j.leaseUntil = now.Add(lease)
			q.leases.push(j)
			if j.hidx == 0 && len(m.waiters) > 0 {
				m.armTimer(j.leaseUntil)
			}
			job := j.job
			job.Payload = bytes.Clone(job.Payload)
			job.Headers = maps.Clone(job.Headers)
			return NewDelivery(j, Delivery{Job: job, ID: j.id, Attempt: j.attempt, Token: j.token, LeaseUntil: j.leaseUntil})
		}
	}
	return nil
}

// Dequeue implements JobQueue. queues must name at least one valid queue
// and lease must be positive, else the error wraps ErrInvalidConfig.
func (m *Memory) Dequeue(ctx context.Context, queues []string, lease time.Duration) (*Delivery, error) {
	if len(queues) == 0 || lease <= 0 {
		return nil, fmt.Errorf("%w: Dequeue needs queues and a positive lease", ErrInvalidConfig)
	}
	for _, name := range queues {
		if !validName(name) {
			return nil, fmt.Errorf("%w: queue name %q", ErrInvalidConfig, name)
		}
	}
	var w *waiter
	for {
		if err := ctx.Err(); err != nil {
			m.stopWaiting(w)
			return nil, err
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		if w != nil && w.listed {
			m.unlist(w)
		}
		now := time.Now()
		var next time.Time
		for _, name := range queues {
			q := m.queues[name]
			if q == nil {
				continue
			}
			m.tick(q, now)
			if q.nready > 0 {
				ok, at := q.allowed(now)
				if ok {
					if d := m.take(q, lease, now); d != nil {
						if w != nil {
							m.passOn(w, now)
						}
						m.mu.Unlock()
						return d, nil
					}
				}
				next = earliest(next, at)
			}
			if len(q.sched.s) > 0 {
				next = earliest(next, q.sched.s[0].runAt)
			}
			if len(q.leases.s) > 0 {
				next = earliest(next, q.leases.s[0].leaseUntil)
			}
		}
		if w == nil {
			w = &waiter{queues: queues, ch: make(chan struct{}, 1)}
		} else {
			m.passOn(w, now)
		}
		w.listed = true
		m.waiters = append(m.waiters, w)
		if !next.IsZero() {
			m.armTimer(next)
		}
		m.mu.Unlock()

		select {
		case <-w.ch:
		case <-ctx.Done():
			m.stopWaiting(w)
			return nil, ctx.Err()
		case <-m.closedCh:
			return nil, ErrClosed
		}
	}
}

// stopWaiting takes w, leaving Dequeue, off the waiters list or passes
// its signal on.
func (m *Memory) stopWaiting(w *waiter) {
	if w == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if w.listed {
		m.unlist(w)
	} else {
		m.passOn(w, time.Now())
	}
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// lookup returns the job of id, brought up to date; the caller holds mu.
func (m *Memory) lookup(id JobID, now time.Time) (*mjob, error) {
	if m.closed {
		return nil, ErrClosed
	}
	j := m.jobs[id]
	if j == nil {
		id = canonicalID(id) // "<queue>/<name>"
		j = m.jobs[id]
	}
	if j == nil {
		if _, _, err := ParseID(id); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	m.tick(j.q, now)
	if j.forgotten(now) {
		m.forget(now)
		if m.jobs[id] == j { // not yet at the top of the heap
			delete(m.jobs, id)
			j.seq++
		}
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return j, nil
}

// forgotten reports whether j ended longer than its Retention ago, so that
// it no longer exists for callers (forget drops it in batches, later).
func (j *mjob) forgotten(now time.Time) bool {
	return j.state.Final() && !now.Before(j.endedAt.Add(j.job.Retention))
}

func (j *mjob) info() JobInfo {
	in := JobInfo{
		ID:         j.id,
		Queue:      j.job.Queue,
		Type:       j.job.Type,
		State:      j.state,
		Payload:    bytes.Clone(j.job.Payload),
		Result:     bytes.Clone(j.result),
		Attempt:    j.attempt,
		LastErr:    j.lastErr,
		Priority:   j.job.Priority,
		Headers:    maps.Clone(j.job.Headers),
		EnqueuedAt: j.enqueuedAt,
		StartedAt:  j.startedAt,
		EndedAt:    j.endedAt,
	}
	if j.state == StateScheduled {
		in.RunAt = j.runAt
	}
	return in
}

// Status implements JobQueue.
func (m *Memory) Status(_ context.Context, id JobID) (JobInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, err := m.lookup(id, time.Now())
	if err != nil {
		return JobInfo{}, err
	}
	return j.info(), nil
}

// Wait implements JobQueue.
func (m *Memory) Wait(ctx context.Context, id JobID) (JobInfo, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		m.mu.Lock()
		j, err := m.lookup(id, time.Now())
		if err != nil {
			m.mu.Unlock()
			return JobInfo{}, err
		}
		if j.state.Final() {
			in := j.info()
			m.mu.Unlock()
			return in, nil
		}
		if j.done == nil {
			j.done = make(chan struct{})
		}
		done := j.done
		var tc <-chan time.Time
		if j.state == StateActive { // an expired lease may end it
			d := max(time.Until(j.leaseUntil), 0)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			tc = timer.C
		}
		m.mu.Unlock()
		select {
		case <-done:
		case <-tc:
		case <-ctx.Done():
			return JobInfo{}, ctx.Err()
		case <-m.closedCh:
			return JobInfo{}, ErrClosed
		}
	}
}

// Cancel implements JobQueue.
func (m *Memory) Cancel(_ context.Context, id JobID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	j, err := m.lookup(id, now)
	if err != nil {
		return err
	}
	if j.state.Final() {
		return fmt.Errorf("%w: %s is %s", ErrEnded, id, j.state)
	}
	m.end(j, StateCanceled, now)
	return nil
}

// current returns the job of d when d is its current delivery.
// hint, when not nil, is the job d was made for: the Settler of the
// Deliveries Dequeue makes is their job, which spares the map lookup.
func (m *Memory) current(hint *mjob, d *Delivery, now time.Time) (*mjob, error) {
	if d == nil {
		return nil, fmt.Errorf("%w: nil delivery", ErrLeaseLost)
	}
	var j *mjob
	var err error
	if hint != nil && hint.id == d.ID {
		if m.closed {
			return nil, ErrClosed
		}
		j = hint
		m.tick(j.q, now)
	} else {
		j, err = m.lookup(d.ID, now)
		if errors.Is(err, ErrClosed) {
			return nil, err
		}
	}
	if err != nil || j.state != StateActive || j.token != d.Token {
		return j, fmt.Errorf("%w: %s token %d", ErrLeaseLost, d.ID, d.Token)
	}
	return j, nil
}

// Ack implements Settler.
func (m *Memory) Ack(_ context.Context, d *Delivery, result []byte) error {
	return m.ack(nil, d, result)
}

// Ack implements Settler for the deliveries of j.
func (j *mjob) Ack(_ context.Context, d *Delivery, result []byte) error {
	return j.m.ack(j, d, result)
}

func (m *Memory) ack(hint *mjob, d *Delivery, result []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.ackLocked(hint, d, result, time.Now())
	return err
}

// Fail implements Settler.
func (m *Memory) Fail(_ context.Context, d *Delivery, cause error) error {
	return m.failDelivery(nil, d, cause)
}

// Fail implements Settler for the deliveries of j.
func (j *mjob) Fail(_ context.Context, d *Delivery, cause error) error {
	return j.m.failDelivery(j, d, cause)
}

func (m *Memory) failDelivery(hint *mjob, d *Delivery, cause error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	j, err := m.current(hint, d, now)
	if err != nil {
		return err
	}
	msg := "failed"
	if cause != nil {
		msg = cause.Error()
	}
	m.fail(j, msg, errors.Is(cause, ErrPermanent), now)
	return nil
}

// Extend implements Settler.
func (m *Memory) Extend(_ context.Context, d *Delivery, lease time.Duration) error {
	return m.extend(nil, d, lease)
}

// Extend implements Settler for the deliveries of j.
func (j *mjob) Extend(_ context.Context, d *Delivery, lease time.Duration) error {
	return j.m.extend(j, d, lease)
}

func (m *Memory) extend(hint *mjob, d *Delivery, lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("%w: Extend needs a positive lease", ErrInvalidConfig)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	j, err := m.current(hint, d, now)
	if err != nil {
		if j != nil && j.state == StateCanceled && j.token == d.Token {
			return fmt.Errorf("%w: %s", ErrCanceled, d.ID)
		}
		return err
	}
	j.leaseUntil = now.Add(lease)
	j.q.leases.fix(j.hidx)
	d.LeaseUntil = j.leaseUntil
	return nil
}

// Release implements Settler.
func (m *Memory) Release(_ context.Context, d *Delivery) error {
	return m.release(nil, d)
}

// Release implements Settler for the deliveries of j.
func (j *mjob) Release(_ context.Context, d *Delivery) error {
	return j.m.release(j, d)
}

// release is a snooze of no delay.
func (m *Memory) release(hint *mjob, d *Delivery) error { return m.snooze(hint, d, 0) }

// Snooze implements Snoozer.
func (m *Memory) Snooze(_ context.Context, d *Delivery, delay time.Duration) error {
	return m.snooze(nil, d, delay)
}

// Snooze implements Snoozer for the deliveries of j.
func (j *mjob) Snooze(_ context.Context, d *Delivery, delay time.Duration) error {
	return j.m.snooze(j, d, delay)
}

// snooze gives the job back without counting the attempt: ready at once
// with no delay, else to the scheduled heap (and the wake-up timer, when a
// Dequeue waits) as a retry's backoff does.
func (m *Memory) snooze(hint *mjob, d *Delivery, delay time.Duration) error {
	if delay < 0 {
		return fmt.Errorf("%w: Snooze needs a delay >= 0, got %v", ErrInvalidConfig, delay)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	j, err := m.current(hint, d, now)
	if err != nil {
		return err
	}
	m.leave(j)
	j.attempt--
	if delay > 0 {
		m.schedule(j, now.Add(min(delay, MaxSnooze)))
	} else {
		m.makeReady(j, now)
	}
	return nil
}

// Dead implements DeadLetters.
func (m *Memory) Dead(_ context.Context, queue string, offset, limit int) ([]JobInfo, error) {
	if offset < 0 || limit < 0 {
		return nil, fmt.Errorf("%w: negative offset or limit", ErrInvalidConfig)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	m.forget(time.Now())
	q := m.queues[queue]
	if q == nil {
		return nil, nil
	}
	q.nstale = len(q.dead)
	q.compactDead()
	live := q.dead
	var out []JobInfo
	for i := len(live) - 1 - offset; i >= 0 && len(out) < limit; i-- {
		out = append(out, live[i].j.info())
	}
	return out, nil
}

// Requeue implements DeadLetters. A job that is not dead is ErrNotFound.
func (m *Memory) Requeue(_ context.Context, id JobID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	j, err := m.lookup(id, now)
	if err != nil {
		return err
	}
	if j.state != StateDead {
		return fmt.Errorf("%w: %s is %s, not dead", ErrNotFound, id, j.state)
	}
	m.requeue(j, now)
	return nil
}

// requeue makes the dead job j ready with fresh attempts.
func (m *Memory) requeue(j *mjob, now time.Time) {
	j.attempt = 0
	j.endedAt = time.Time{}
	j.done = nil
	j.state = "" // not final: leave has nothing to undo
	j.q.ndead--
	j.q.compactDead()
	m.makeReady(j, now)
}

// SetLimits implements Limiter. Limits take effect at the next Dequeue.
func (m *Memory) SetLimits(_ context.Context, queue string, l Limits) error {
	if !validName(queue) {
		return fmt.Errorf("%w: queue name %q", ErrInvalidConfig, queue)
	}
	if l.Concurrency < 0 || l.Rate < 0 || l.Burst < 0 {
		return fmt.Errorf("%w: negative limits", ErrInvalidConfig)
	}
	if l.Burst == 0 {
		l.Burst = max(1, int(l.Rate))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	q := m.queue(queue)
	if l.Rate > 0 && (q.limits.Rate == 0 || q.tokens > float64(l.Burst)) {
		q.tokens = float64(l.Burst)
		q.filled = time.Now()
	}
	q.limits = l
	m.wakeAll()
	return nil
}

// ring is a FIFO queue.
type ring[T any] struct {
	buf        []T
	head, size int
}

func (r *ring[T]) len() int { return r.size }
func (r *ring[T]) front() T { return r.buf[r.head] }

func (r *ring[T]) push(v T) {
	if r.size == len(r.buf) {
		nb := make([]T, max(8, 2*len(r.buf)))
		n := copy(nb, r.buf[r.head:])
		copy(nb[n:], r.buf[:r.head])
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.size)%len(r.buf)] = v
	r.size++
}

func (r *ring[T]) pop() T {
	var zero T
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	if r.size == 0 && len(r.buf) > 1024 {
		r.buf, r.head = nil, 0
	}
	return v
}

// jobHeap is a min-heap (container/heap) of jobs ordered by at, each job
// knowing its index, so that a job leaving the heap (acked, canceled)
// goes at once. container/heap costs 6 to 15% more per push and remove
// than the hand-written heap it replaced (3 to 25 ns; BenchmarkJobHeap),
// which is lost in the noise of a Dequeue and Ack that take over a
// microsecond (BenchmarkMemoryDequeueAck; BENCHMARKS.md, queue.Memory).
type jobHeap struct {
	s  []*mjob
	at func(*mjob) time.Time
}

func (h *jobHeap) Len() int           { return len(h.s) }
func (h *jobHeap) Less(i, k int) bool { return h.at(h.s[i]).Before(h.at(h.s[k])) }

func (h *jobHeap) Swap(i, k int) {
	h.s[i], h.s[k] = h.s[k], h.s[i]
	h.s[i].hidx = i
	h.s[k].hidx = k
}

// Push and Pop are container/heap's; Memory calls push, remove and fix.
func (h *jobHeap) Push(x any) {
	j := x.(*mjob)
	j.hidx = len(h.s)
	h.s = append(h.s, j)
}

func (h *jobHeap) Pop() any {
	n := len(h.s) - 1
	j := h.s[n]
	h.s[n] = nil
	h.s = h.s[:n]
	return j
}

func (h *jobHeap) push(j *mjob) { heap.Push(h, j) }

// remove takes j out of the heap, and gives back the memory of a heap
// that shrank to an eighth of its capacity.
func (h *jobHeap) remove(j *mjob) {
	heap.Remove(h, j.hidx)
	if cap(h.s) > 1024 && len(h.s) < cap(h.s)/8 {
		h.s = append([]*mjob(nil), h.s...)
	}
}

func (h *jobHeap) fix(i int) { heap.Fix(h, i) }

// compactDead notes that a dead entry went stale and drops the stale
// entries once they are half the list.
func (q *mqueue) compactDead() {
	q.nstale++
	if q.nstale < len(q.dead)/2 {
		return
	}
	live := q.dead[:0]
	for _, e := range q.dead {
		if e.live() {
			live = append(live, e)
		}
	}
	clear(q.dead[len(live):])
	q.dead = live
	q.nstale = 0
}
