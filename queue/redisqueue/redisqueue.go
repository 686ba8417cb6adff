// Package redisqueue is a queue.JobQueue on Redis: a single server, a
// Sentinel-managed one or a Redis Cluster, shared by any number of
// processes.
//
// # Keys
//
// Every key of a queue q carries the hash tag {q}, so the Lua scripts that
// change several of them at once run on one Cluster slot:
//
//	<prefix>{q}:j:<name>   hash: one job (field names in scripts.go)
//	<prefix>{q}:r0 … :r9   lists: ready jobs by priority, FIFO within each
//	<prefix>{q}:sched      zset: scheduled jobs (delays, retries) by run-at ms
//	<prefix>{q}:active     zset: leased jobs by lease deadline ms
//	<prefix>{q}:dead       zset: dead jobs by time of death (the newest 100,000)
//	<prefix>{q}:deadx      zset: the same jobs by the end of their retention, to prune :dead
//	<prefix>{q}:stat       hash: running totals of acked (d) and canceled (c) jobs
//	<prefix>{q}:lim        hash: the queue's Limits and its token bucket
//	<prefix>{q}:wake       list: wake tokens for blocked Dequeues (at most 64)
//	<prefix>{q}:sl         string: set while a Dequeue may be blocked (expires in 3 s)
//	<prefix>{q}:u:<key>    string: a held unique key, valued with the job's name
//	<prefix>{q}:x:<rand>   list: unblocks one canceled Dequeue (expires in 10 s)
//	<prefix>{q}:dq:<nonce> string: the job a Dequeue call leased (expires with the lease, in at
//	                       most 60 s), "-" once the call failed (expires in 10 s; see below)
//	<prefix>ended          pub/sub channel: the ID of every job that ends
//	<prefix>queues         set: the names of the queues, for Inspector.Queues
//
// Ended jobs (done, dead or canceled) expire after their Retention.
//
// # Dequeue
//
// Dequeue runs one script per queue (in the caller's order) that moves due
// scheduled jobs to ready, turns expired leases into failed attempts
// ("lease expired"), checks the queue's Limits and leases the best ready
// job. When no queue has one it marks each queue as having sleepers and
// blocks on Redis with BLPOP on the queues' wake lists, which every script
// that makes a job ready pushes to (Enqueue only while the queue has
// sleepers), for at most min(time until the next scheduled job or lease
// deadline, 1 s); then it tries again. On a single server one BLPOP covers all the queues. On a
// Cluster the wake lists of different queues live in different slots, so
// Dequeue over several queues blocks on each in turn for at most 50 ms; a
// single queue blocks as on one server. One Dequeue of a Queue at a time
// blocks for a set of queues; the others wait in the process until its
// BLPOP returns (or their own wait ends) and then all look again, so idle
// workers hold one connection of the client's pool between them, not one
// each, and leave the pool to the client's other users.
//
// A Dequeue call carries a nonce, and the script that leases a job for it
// records so (<prefix>{q}:dq:<nonce>, deleted when the job is settled,
// expiring with the lease and in at most a minute). A run again of the
// script after a lost reply (go-redis's own retry, or the Queue's through
// a switch) answers the same delivery instead of leasing a second job.
// When the call fails all the same (its context ended while the script
// ran, the reply was lost for good), a background script gives the job
// back: it is ready again at the head of its list at once, its attempt
// not counted, instead of leased to nobody until its lease runs out; and
// the record becomes a tombstone, so that the call's script, should it
// reach Redis only later (a request overtaken by the call's failure),
// leases nothing. Close waits for the give-backs in flight (at most 2 s
// each). AckAndDequeue does the same for the job it leases.
//
// A ctx deadline bounds the BLPOP itself. When ctx is canceled or the
// Queue closed during the BLPOP, a push to a key of that call's own (in
// the same slot, expiring in 10 s) makes it return at once; on a Cluster
// with several queues the 50 ms BLPOPs bound the delay instead. BLPOPs of
// under a second use the client's ReadTimeout, which must exceed 1 s (the
// go-redis default is 3 s).
//
// # Time bounds
//
// Every call passes its context to each Redis command, and New refuses a
// client that would ignore the context's deadline (ContextTimeoutEnabled
// unset), so against a hung server (one that accepts and never answers) or
// a dead one, every call returns by its context's deadline: its error, or
// for Wait and Dequeue, which ride out failures, the context's. go-redis
// ends a socket read at a deadline, not at a cancellation: a call whose
// context is canceled without a deadline returns when the read in
// progress ends, at most the client's ReadTimeout (Dequeue's BLPOP
// excepted: see above). A failed Enqueue may have enqueued its job: see
// the queue package's documentation for retrying it safely with Job.ID.
//
// # Running on replicated Redis
//
// On Sentinel (redis.NewFailoverClient) or a Cluster with replicas, every
// call rides out the errors of a master switch (refused and broken
// connections, READONLY, LOADING, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, MOVED
// past go-redis's redirections): it is tried again, with a pause that
// doubles from 25 ms to 1 s, until its context's deadline, or for 30 s
// without one (redisha.Retry; on a Cluster the slot map is reloaded after a
// connection error, so a killed master's slots are found on its replica as
// soon as it is promoted). Every script is safe to run again: Enqueue by
// the job's ID, Ack, Fail, Release, Cancel and Requeue by a nonce of the
// call stored in the job (a run again reports the first one's success),
// Snooze and AckThen too, DeleteDead by a nonce it leaves behind for 10 s, Dequeue by
// its record (above), Extend, SetLimits and the Inspector's other calls
// by nature.
//
// Replication is asynchronous, so what a switch keeps depends on
// Config.WaitReplicas:
//
//   - 0 (the default): a call returns once the master has its write. A
//     failover can lose the master's last writes: an acknowledged Enqueue
//     gone, an acknowledged Ack undone (the job leased again, and run
//     again once its lease runs out). TestLossyFailover forces it.
//   - n > 0: every call that changes the queue (Enqueue, EnqueueBatch,
//     Dequeue's lease, Ack, Fail, Extend, Release, Snooze, AckAndDequeue,
//     AckThen, Cancel, Requeue, SetLimits) sends WAIT n after its script, on the same
//     connection, and returns only once n replicas confirmed the write.
//     If fewer did within WaitTimeout, the call fails with an error
//     wrapping a *NotReplicatedError (errors.Is ErrNotReplicated), which
//     says how many did: the write is on the master and may or may not
//     survive a failover, so treat the call as failed with an unknown
//     outcome and retry it as after any failure (an Enqueue with the same
//     Job.ID; a settling call again, which answers queue.ErrLeaseLost if
//     the first took effect and survived). A Dequeue whose lease was not
//     confirmed gives the job back and fails: a lease on the master alone
//     could, after a failover, hand the job and its fencing token to a
//     second worker. An acknowledged write survives any failover that
//     promotes a replica among the n; with n the number of replicas, any
//     failover. The failover tests (SENTINEL FAILOVER, CLUSTER FAILOVER
//     and killed masters, with jobs enqueued and worked throughout) saw
//     every acknowledged Enqueue complete and no acknowledged Ack undone.
//     The cost: each call waits for a replica's acknowledgement (one more
//     round trip, on loopback); with fewer than n replicas up (a dead
//     master's replica promoted and not yet given one) every change fails
//     with ErrNotReplicated after WaitTimeout. Status then reads the
//     master (ROLE in the same round trip), never a demoted one a
//     Sentinel client may still reach after a switch.
//
// # Chains
//
// AckThen (queue.Chainer; Delivery.Then under a Worker) acks a job and
// enqueues its next jobs in one script, which checks the lease and every
// next job before it writes anything: a Lua script that fails half-way
// keeps its writes. A script may only touch keys of one Cluster slot, and
// a queue's slot is that of its name, so the next jobs must be in the
// acked job's queue: another queue's is refused with a *CrossQueueError
// (queue.ErrUnsupported), before anything is sent, on a single server
// and on Sentinel as on a Cluster, so that code tested on one server
// does not fail on a Cluster. Jobs of several types share a queue (the
// Worker picks the handler by type), and a next job's handler may
// enqueue into another queue. The step is safe to run twice: its nonce
// in the acked job answers a run again with the first one's success, and
// the next jobs' IDs are chosen once, before the first run.
//
// # Inspector
//
// Queue implements queue.Inspector with bounded work per call: no call
// scans the keyspace, each runs one script on the queue's own keys (one
// Cluster slot), and each states its cost below, with N the jobs in the
// set concerned and P a page. Counts and List first bring the queue up to
// date as a Dequeue does (at most 200 due jobs and 200 expired leases per
// call) and drop up to 100 dead jobs whose retention passed.
//
//   - Queues: SMEMBERS of <prefix>queues, O(queues). A process adds a
//     queue to it on its first Enqueue, Pause or SetLimits of the queue
//     (one SADD per queue per process); queues used only by an older
//     release's processes are missing until then.
//   - Counts: O(1) in N: LLEN of the ten ready lists, ZCARD of the
//     scheduled, active and dead sets, the head of each ready list for
//     OldestReady. Dead counts the dead set, which also holds, until
//     listed, jobs that died under an older release and have since
//     expired.
//   - List: ready O(C + P), C the position where the cursor's job now is
//     in its list (LPOS, then LRANGE); scheduled, active and dead
//     O(log N + P) (ZRANK, then ZRANGE; when the cursor's job left the
//     set, a binary search among the T members of its score, O(log N ·
//     log T)), with an HGETALL per listed job. A page looks at no more than 10 pages' worth of entries
//     whose job left the state; the dead set drops them as it goes.
//   - Pause O(1); Resume O(1), pushing up to 64 wake tokens.
//   - RequeueAll, DeleteAllDead: O(D log D) over D dead jobs, in scripts
//     of at most 100 jobs each, so that none holds Redis up for long.
//   - DeleteDead, Requeue: O(log D).
//
// A pause is the field p of the queue's limits hash, which the dequeue
// script already reads: it holds for every process at once and, with
// Redis persistence, across a restart, and costs Dequeue nothing more.
// Ready pages are in the order Dequeue takes the jobs; the cursor names
// the last three jobs of the page in its ready list, and the next page
// goes on after the first of them still there (jobs only leave a ready
// list at its head, or by Cancel), so a page lists no job twice unless
// all three were canceled between pages.
//
// # Wait
//
// A Queue subscribes to <prefix>ended once, on first use of Wait, and fans
// the messages out to its waiters. A waiter registers, reads Status (so an
// end before registration is not missed), then waits for its message and
// reads Status again; after a pub/sub reconnect every waiter reads Status
// again. On a Cluster, PUBLISH reaches the subscribers of every node.
//
// A waiter rides out every failure that passes on its own until its
// context ends or the Queue is closed: a broken or refused connection (a
// restart, a failover, a partition), LOADING, READONLY, MASTERDOWN, BUSY,
// and on a Cluster MOVED, ASK, TRYAGAIN and CLUSTERDOWN. It reads the
// status again after a pause that doubles from 25 ms to 1 s. Other errors
// (a closed client, NOPERM, a malformed job hash) end the Wait.
package redisqueue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/internal/redisha"
	"github.com/scaleout/scaleout/internal/redisopt"
	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/internal/perqueue"
)

// DefaultPrefix starts every key when Config.Prefix is empty.
const DefaultPrefix = "scaleout:queue:"

// Config configures a Queue. The zero value is valid.
type Config struct {
	// Prefix starts every key; default DefaultPrefix. It must not contain
	// '{' or '}' (the queue's name is the key's hash tag).
	Prefix string
	// MaxPayload bounds a job's payload; 0 means queue.DefaultMaxPayload.
	MaxPayload int
	// Backoff is the wait before retry number attempt (1 after the first
	// failure); default queue.DefaultBackoff.
	Backoff func(attempt int) time.Duration
	// Meter receives scaleout.queue.enqueued, by queue (see package
	// observe): the jobs this process's Enqueue and EnqueueBatch stored,
	// not an Enqueue answered by the job already stored under its ID.
	// nil means none.
	Meter observe.Meter
	// WaitReplicas, when positive, makes every call that changes the queue
	// (Enqueue, EnqueueBatch, Dequeue's lease, Ack, Fail, Extend, Release,
	// AckAndDequeue, AckThen, Cancel, Requeue, SetLimits) return only once that
	// many replicas confirm its write (WAIT), so that a failover to one
	// of them keeps it; see "Running on replicated Redis" in the package
	// doc. 0 (the default) answers once the master has it. Negative is
	// invalid, and so is a client other than *redis.Client (single or
	// Sentinel) or *redis.ClusterClient.
	WaitReplicas int
	// WaitTimeout bounds the wait of WaitReplicas; a write not confirmed
	// in time fails with a *NotReplicatedError. Default
	// DefaultWaitTimeout; it must be at least 1 ms, and set only with
	// WaitReplicas.
	WaitTimeout time.Duration
}

// Queue is a queue.JobQueue on Redis. Its methods are safe for concurrent
// use. Close it to stop its pub/sub goroutine; it never closes the client.
type Queue struct {
	rdb        redis.UniversalClient
	prefix     string
	channel    string
	maxPayload int
	backoff    func(int) time.Duration
	single     bool // one BLPOP may cover the wake lists of all queues
	enqueued   *perqueue.Counters

	replicas    int           // Config.WaitReplicas
	waitTimeout time.Duration // Config.WaitTimeout

	closeOnce sync.Once
	closed    chan struct{}
	closeCtx  context.Context // canceled by Close
	closeStop context.CancelFunc

	sub subscriber

	regMu      sync.RWMutex
	registered map[string]bool // queues this process added to <prefix>queues

	enqMu     sync.Mutex
	enqGroups map[string]*enqGroup // by queue name, while it has calls in flight
	enqSends  sync.WaitGroup       // goroutines sending waiting Enqueues; Close waits for them
	giveBacks sync.WaitGroup       // give-backs of failed Dequeues (giveback.go); Close waits for them

	sleepMu  sync.Mutex
	sleeping map[string]chan struct{} // by set of wake lists, while a Dequeue blocks on it (sleep.go)
}

var (
	_ queue.JobQueue      = (*Queue)(nil)
	_ queue.Settler       = (*Queue)(nil)
	_ queue.Snoozer       = (*Queue)(nil)
	_ queue.BatchEnqueuer = (*Queue)(nil)
	_ queue.DeadLetters   = (*Queue)(nil)
	_ queue.Limiter       = (*Queue)(nil)
	_ queue.AckDequeuer   = (*Queue)(nil)
)

// New returns a Queue on client. Invalid configuration is an error wrapping
// queue.ErrInvalidConfig. A go-redis client whose options leave
// ContextTimeoutEnabled false is refused (the error also wraps
// redisopt.ErrContextTimeouts, whose message names the option): it would
// ignore the deadline of every call's context, so no bound below could
// hold.
func New(client redis.UniversalClient, cfg Config) (*Queue, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: redisqueue: nil client", queue.ErrInvalidConfig)
	}
	if err := redisopt.Check(client); err != nil {
		return nil, fmt.Errorf("%w: redisqueue: %w", queue.ErrInvalidConfig, err)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("%w: redisqueue: prefix %q contains a brace", queue.ErrInvalidConfig, cfg.Prefix)
	}
	if cfg.MaxPayload < 0 {
		return nil, fmt.Errorf("%w: redisqueue: negative MaxPayload", queue.ErrInvalidConfig)
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = queue.DefaultMaxPayload
	}
	if cfg.Backoff == nil {
		cfg.Backoff = queue.DefaultBackoff
	}
	if err := cfg.checkWait(client); err != nil {
		return nil, err
	}
	_, single := client.(*redis.Client)
	q := &Queue{
		rdb:         client,
		prefix:      cfg.Prefix,
		channel:     cfg.Prefix + "ended",
		maxPayload:  cfg.MaxPayload,
		backoff:     cfg.Backoff,
		single:      single,
		enqueued:    perqueue.New(cfg.Meter, observe.QueueEnqueued),
		replicas:    cfg.WaitReplicas,
		waitTimeout: cfg.WaitTimeout,
		closed:      make(chan struct{}),
		enqGroups:   map[string]*enqGroup{},
		sleeping:    map[string]chan struct{}{},
		registered:  map[string]bool{},
	}
	q.closeCtx, q.closeStop = context.WithCancel(context.Background())
	q.sub.q = q
	return q, nil
}

// Close stops the Queue's goroutines and makes later calls fail with
// queue.ErrClosed. Enqueues waiting to share a script call that has not
// been sent fail with queue.ErrClosed (nothing of theirs was sent); a
// call in flight, shared or a lone caller's, is canceled, so its callers'
// outcome is unknown, as for any failed Enqueue; Close waits for it (no
// job is written after Close returns), at most for the read in
// progress (go-redis ends a socket read at a deadline, not at a
// cancellation: one ReadTimeout of the client against a hung server). No
// goroutine of the Queue outlives Close. It is idempotent and never closes
// the client.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		// Under enqMu: a sender goroutine starts only under enqMu after
		// seeing the Queue open, so every one Close must wait for is
		// counted in enqSends before the Wait below.
		q.enqMu.Lock()
		close(q.closed)
		q.enqMu.Unlock()
		q.closeStop()
		q.sub.stop()
		q.enqSends.Wait()
		q.giveBacks.Wait()
	})
	return nil
}

func (q *Queue) isClosed() bool {
	select {
	case <-q.closed:
		return true
	default:
		return false
	}
}

// keys of one queue.
type qkeys struct {
	base, sched, active, lim, wake string
}

func (q *Queue) keys(name string) qkeys {
	base := q.prefix + "{" + name + "}:"
	return qkeys{base: base, sched: base + "sched", active: base + "active", lim: base + "lim", wake: base + "wake"}
}

func (k qkeys) job(name string) string { return k.base + "j:" + name }

func wrap(op string, err error) error { return fmt.Errorf("redisqueue: %s: %w", op, err) }

func ms(d time.Duration) int64 { return int64(d / time.Millisecond) }

// Enqueue implements queue.JobQueue.
//
// Concurrent Enqueues to one queue share script calls: while
// maxEnqueueCalls calls for the queue are in flight, further jobs wait and
// go together in the next call (each job still enqueued atomically on its
// own). A lone caller always goes at once, on its own ctx. A shared call
// lasts until the latest deadline of the callers it serves, and each
// caller returns when its own ctx ends (then its job may be enqueued all
// the same: see the queue package's documentation on retries).
func (q *Queue) Enqueue(ctx context.Context, j queue.Job) (queue.JobID, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	j, id, err := queue.Prepare(j, q.maxPayload)
	if err != nil {
		return "", err
	}
	if q.isClosed() {
		return "", queue.ErrClosed
	}
	if err := q.register(ctx, "enqueue", j.Queue); err != nil {
		return "", err
	}
	r := &enqReq{ctx: ctx, job: j, id: id, now: time.Now().UnixMilli()}
	q.enqMu.Lock()
	if q.isClosed() {
		q.enqMu.Unlock()
		return "", queue.ErrClosed
	}
	g := q.enqGroups[j.Queue]
	if g == nil {
		g = &enqGroup{}
		q.enqGroups[j.Queue] = g
	}
	if g.inflight < maxEnqueueCalls {
		g.inflight++
		// Counted and canceled by Close like a shared call: otherwise its
		// write could land after Close returned.
		q.enqSends.Add(1) // under enqMu, with the Queue seen open: see Close
		q.enqMu.Unlock()
		cctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(q.closeCtx, cancel)
		q.sendEnqueue(cctx, []*enqReq{r})
		stop()
		cancel()
		q.enqSends.Done()
		q.nextEnqueue(j.Queue, g)
		return r.out, r.err
	}
	r.done = make(chan struct{})
	g.pending = append(g.pending, r)
	q.enqMu.Unlock()
	select {
	case <-r.done:
		return r.out, r.err
	case <-ctx.Done():
		q.enqMu.Lock()
		if i := slices.Index(g.pending, r); i >= 0 {
			g.pending = slices.Delete(g.pending, i, i+1)
		}
		q.enqMu.Unlock()
		return "", ctx.Err() // when already sent, the job may be enqueued
	}
}

// maxEnqueueCalls bounds the enqueue script calls in flight per queue
// before Enqueues wait to share one. Sharing pays: from 16 goroutines it
// enqueues 1.7 to 2.1 times the jobs per second of one call per Enqueue
// (BenchmarkEnqueueCoalescing; BENCHMARKS.md, Enqueue); a lone caller
// never waits.
var maxEnqueueCalls = 2 // a var for BenchmarkEnqueueCoalescing

// enqGroup is the enqueue state of one queue, under Queue.enqMu.
type enqGroup struct {
	inflight int
	pending  []*enqReq
}

// enqReq is one Enqueue; out and err are set before done is closed.
type enqReq struct {
	ctx  context.Context // the caller's
	job  queue.Job
	id   queue.JobID
	now  int64
	out  queue.JobID
	err  error
	done chan struct{} // nil for a caller that sends its own call
}

// nextEnqueue hands the call slot just freed to the jobs waiting for the
// queue, in a goroutine that sends them until none wait.
func (q *Queue) nextEnqueue(name string, g *enqGroup) {
	q.enqMu.Lock()
	defer q.enqMu.Unlock()
	if !q.takeSlot(name, g) {
		return
	}
	q.enqSends.Add(1) // under enqMu, with the Queue seen open: see Close
	go func() {
		defer q.enqSends.Done()
		for {
			q.enqMu.Lock()
			if !q.takeSlot(name, g) {
				q.enqMu.Unlock()
				return
			}
			batch := slices.Clone(g.pending[:min(len(g.pending), maxScriptJobs)])
			g.pending = slices.Delete(g.pending, 0, len(batch))
			q.enqMu.Unlock()
			ctx, cancel := q.sharedContext(batch)
			q.sendEnqueue(ctx, batch)
			cancel()
			for _, r := range batch {
				close(r.done)
			}
		}
	}()
}

// takeSlot reports whether the caller, holding a call slot of g, is to
// send g's pending jobs; if not, it gives the slot up, after failing the
// pending jobs with queue.ErrClosed when the Queue is closed. The caller
// holds enqMu.
func (q *Queue) takeSlot(name string, g *enqGroup) bool {
	if len(g.pending) > 0 && !q.isClosed() {
		return true
	}
	for _, r := range g.pending {
		r.err = queue.ErrClosed
		close(r.done)
	}
	g.pending = nil
	g.inflight--
	if g.inflight == 0 {
		delete(q.enqGroups, name)
	}
	return false
}

// sharedContext is the context of one script call shared by the callers
// of reqs: it lasts until the latest of their deadlines (no deadline when
// one of them has none: then the client's ReadTimeout bounds the call), so
// that no caller who still waits loses its answer to another's deadline,
// and Close cancels it.
func (q *Queue) sharedContext(reqs []*enqReq) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, r := range reqs {
		dl, ok := r.ctx.Deadline()
		if !ok {
			return context.WithCancel(q.closeCtx)
		}
		if dl.After(latest) {
			latest = dl
		}
	}
	return context.WithDeadline(q.closeCtx, latest)
}

// sendEnqueue enqueues jobs of one queue with one script call, setting
// each request's out and err.
func (q *Queue) sendEnqueue(ctx context.Context, reqs []*enqReq) {
	k := q.keys(reqs[0].job.Queue)
	args := make([]any, 0, 1+11*len(reqs))
	args = append(args, k.base)
	for _, r := range reqs {
		args = appendJobArgs(args, r.job, r.now)
	}
	v, err := q.run(ctx, enqueueScript, []string{k.sched, k.wake}, args...)
	var short error // the replicas' silence, for the jobs the call wrote
	if notReplicated(err) {
		short, err = wrap("enqueue", err), nil
	}
	res, _ := v.([]any)
	if err == nil && len(res) != len(reqs) {
		err = fmt.Errorf("redisqueue: enqueue: malformed reply %v for %d jobs", v, len(reqs))
	} else if err != nil {
		err = wrap("enqueue", err)
	}
	for i, r := range reqs {
		if err != nil {
			r.err = err
			continue
		}
		var stored bool
		r.out, stored, r.err = enqueueResult(r.job.Queue, r.id, res[i])
		if stored {
			q.enqueued.Get(r.job.Queue).Inc()
		}
		if r.err == nil && short != nil {
			r.err = short
		}
	}
}

// appendJobArgs appends a job's part of the enqueue script's ARGV (see
// enqueueScript); now is the enqueued time in ms.
func appendJobArgs(args []any, j queue.Job, now int64) []any {
	hdr := encodeHeaders(j.Headers)
	var runAt int64
	if !j.RunAt.IsZero() {
		runAt = max(j.RunAt.UnixMilli(), 1)
	}
	ufor := ms(j.UniqueFor)
	if j.UniqueKey != "" && ufor < 1 {
		ufor = 1
	}
	n := 0
	if j.MaxAttempts != queue.DefaultMaxAttempts {
		n += 2
	}
	rt := max(ms(j.Retention), 1)
	if rt != queue.DefaultRetention.Milliseconds() {
		n += 2
	}
	if j.Priority != 0 {
		n += 2
	}
	to := ms(j.Timeout)
	if to != 0 {
		n += 2
	}
	if j.UniqueKey != "" {
		n += 2
	}
	if hdr != nil {
		n += 2
	}
	args = append(args, j.ID, j.Priority, runAt, j.UniqueKey, ufor, n, j.Type, j.Payload, now)
	if j.MaxAttempts != queue.DefaultMaxAttempts {
		args = append(args, "m", j.MaxAttempts)
	}
	if rt != queue.DefaultRetention.Milliseconds() {
		args = append(args, "rt", rt)
	}
	if j.Priority != 0 {
		args = append(args, "pr", j.Priority)
	}
	if to != 0 {
		args = append(args, "to", to)
	}
	if j.UniqueKey != "" {
		args = append(args, "u", j.UniqueKey)
	}
	if hdr != nil {
		args = append(args, "h", hdr)
	}
	return args
}

// encodeHeaders encodes Job.Headers for the job hash's field h: nil for
// none, so a job without headers stores no field.
func encodeHeaders(h map[string]string) []byte {
	if len(h) == 0 {
		return nil
	}
	b, _ := json.Marshal(h) // a map of strings always encodes
	return b
}

// decodeHeaders decodes the field h of a job hash; "" (absent, as in jobs
// stored before headers existed) is nil.
func decodeHeaders(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("field h: %w", err)
	}
	return h, nil
}

// enqueueResult maps one job's item of the enqueue script's reply; stored
// reports whether the script stored the job (not a retry's no-op).
func enqueueResult(qname string, id queue.JobID, res any) (_ queue.JobID, stored bool, _ error) {
	switch v := res.(type) {
	case int64:
		switch v {
		case codeOK:
			return id, true, nil
		case codeExists:
			return id, false, nil
		}
	case string:
		other := queue.FormatID(qname, v)
		return other, false, fmt.Errorf("%w: %s", queue.ErrDuplicate, other)
	}
	return "", false, fmt.Errorf("redisqueue: enqueue: malformed reply %v", res)
}

// maxScriptJobs bounds the jobs of one enqueue script call, so one call
// does not hold Redis up for long.
const maxScriptJobs = 200

// EnqueueBatch implements queue.BatchEnqueuer: the jobs of each queue go
// to Redis in one script call per up to 200 of them (each job still
// enqueued atomically on its own), and the calls in one pipeline, one
// round trip per node.
func (q *Queue) EnqueueBatch(ctx context.Context, jobs []queue.Job) ([]queue.JobID, error) {
	if q.isClosed() {
		return nil, queue.ErrClosed
	}
	prepared := make([]queue.Job, len(jobs))
	ids := make([]queue.JobID, len(jobs))
	for i, j := range jobs {
		pj, id, err := queue.Prepare(j, q.maxPayload)
		if err != nil {
			return nil, fmt.Errorf("job %d: %w", i, err)
		}
		prepared[i], ids[i] = pj, id
	}
	for i, j := range prepared {
		if i == 0 || j.Queue != prepared[i-1].Queue {
			if err := q.register(ctx, "enqueue batch", j.Queue); err != nil {
				return nil, err
			}
		}
	}
	// Chunks of the jobs' indexes: by queue, in order, at most
	// maxScriptJobs each.
	var chunks [][]int
	open := map[string]int{} // queue -> index in chunks of its open chunk
	for i, j := range prepared {
		c, ok := open[j.Queue]
		if !ok || len(chunks[c]) == maxScriptJobs {
			c = len(chunks)
			chunks = append(chunks, make([]int, 0, min(maxScriptJobs, len(jobs)-i)))
			open[j.Queue] = c
		}
		chunks[c] = append(chunks[c], i)
	}
	now := time.Now().UnixMilli()
	out := make([]queue.JobID, len(jobs))
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	chunkArgs := func(c []int) ([]string, []any) {
		k := q.keys(prepared[c[0]].Queue)
		args := make([]any, 0, 1+11*len(c))
		args = append(args, k.base)
		for _, i := range c {
			args = appendJobArgs(args, prepared[i], now)
		}
		return []string{k.sched, k.wake}, args
	}
	results := func(c []int, res []any, short error) {
		if len(res) != len(c) {
			fail(wrap("enqueue batch", fmt.Errorf("malformed reply of %d items for %d jobs", len(res), len(c))))
			return
		}
		for m, i := range c {
			id, stored, err := enqueueResult(prepared[i].Queue, ids[i], res[m])
			if stored {
				q.enqueued.Get(prepared[i].Queue).Inc()
			}
			if err == nil && short != nil {
				err = short
			}
			if err != nil {
				fail(fmt.Errorf("job %d: %w", i, err))
				continue
			}
			out[i] = id
		}
	}
	if q.replicas > 0 {
		// Each queue's WAIT must follow its own write on its own
		// connection: one durable call per chunk.
		for _, c := range chunks {
			keys, args := chunkArgs(c)
			v, err := q.run(ctx, enqueueScript, keys, args...)
			var short error
			if notReplicated(err) {
				short, err = wrap("enqueue batch", err), nil
			}
			if err != nil {
				fail(wrap("enqueue batch", err))
				continue
			}
			res, _ := v.([]any)
			results(c, res, short)
		}
		return out, firstErr
	}
	todo := chunks
	noScriptLoaded := false // a NOSCRIPT loads the script once
	pause := redisha.PauseMin
	end, ok := ctx.Deadline()
	if !ok {
		end = time.Now().Add(redisha.DefaultBudget)
	}
	for len(todo) > 0 {
		cmds := make([]*redis.Cmd, len(todo))
		_, _ = q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for n, c := range todo {
				keys, args := chunkArgs(c)
				cmds[n] = enqueueScript.EvalSha(ctx, p, keys, args...)
			}
			return nil
		})
		var again [][]int
		var noScript, switching error
		for n, c := range todo {
			res, err := cmds[n].Slice()
			switch {
			case err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") && !noScriptLoaded:
				noScript = err
				again = append(again, c)
			case err != nil && redisha.Transient(err) && ctx.Err() == nil && time.Until(end) > pause:
				// A master switch: the chunk is sent again (the script is
				// safe to run twice) while ctx allows.
				switching = err
				again = append(again, c)
			case err != nil:
				fail(wrap("enqueue batch", err))
			default:
				results(c, res, nil)
			}
		}
		if switching != nil {
			if cc, ok := q.rdb.(*redis.ClusterClient); ok {
				cc.ReloadState(ctx)
			}
			if err := q.pause(ctx, pause); err != nil {
				fail(wrap("enqueue batch", switching))
				return out, firstErr
			}
			pause = min(2*pause, redisha.PauseMax)
		}
		if noScript != nil {
			noScriptLoaded = true
			if err := enqueueScript.Load(ctx, q.rdb).Err(); err != nil {
				return out, wrap("enqueue batch: load script", err)
			}
		}
		todo = again
	}
	return out, firstErr
}

// Dequeue implements queue.JobQueue. queues must name at least one valid
// queue and lease must be at least a millisecond, else the error wraps
// queue.ErrInvalidConfig.
func (q *Queue) Dequeue(ctx context.Context, queues []string, lease time.Duration) (*queue.Delivery, error) {
	if len(queues) == 0 || lease < time.Millisecond {
		return nil, fmt.Errorf("%w: Dequeue needs a queue and a lease of at least 1ms", queue.ErrInvalidConfig)
	}
	ks := make([]qkeys, len(queues))
	wakes := make([]string, len(queues))
	for i, name := range queues {
		if _, _, err := queue.ParseID(queue.FormatID(name, "x")); err != nil {
			return nil, fmt.Errorf("%w: queue name %q", queue.ErrInvalidConfig, name)
		}
		ks[i] = q.keys(name)
		wakes[i] = ks[i].wake
	}
	backoffs := q.backoffs()
	nonce := newNonce() // the call's: see "Dequeue records" in scripts.go
outer:
	for {
		if q.isClosed() {
			return nil, queue.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		wait := time.Second
		for i, name := range queues {
			d, w, err := q.take(ctx, name, ks[i], lease, backoffs, nonce)
			if err != nil {
				// The script may have leased a job whose reply is lost:
				// give it back.
				q.giveBack(ks[i], nonce)
				nonce = newNonce() // the old one's is a tombstone now
				if cerr := ended(ctx); cerr != nil {
					return nil, cerr
				}
				if !redisha.Transient(err) {
					return nil, err
				}
				// A switch outlasting the retries: ride it out until ctx
				// ends, as the BLPOP's failures are.
				if q.pause(ctx, 100*time.Millisecond) != nil {
					if q.isClosed() {
						return nil, queue.ErrClosed
					}
					return nil, ctx.Err()
				}
				continue outer
			}
			if d != nil {
				return d, nil
			}
			if w >= 0 && w < wait {
				wait = w
			}
		}
		if err := q.sleep(ctx, wakes, wait); err != nil {
			if cerr := ended(ctx); cerr != nil {
				return nil, cerr
			}
			// The server may be restarting: pause, then try again.
			if q.pause(ctx, 100*time.Millisecond) != nil {
				return nil, ctx.Err()
			}
		}
	}
}

// ended returns ctx's error, or context.DeadlineExceeded once its deadline
// has passed: a socket read that go-redis bounds by the deadline may end
// (an i/o timeout) a moment before ctx's own timer fires.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// backoffs is the script argument of the backoffs of attempts 1 to 10
// in ms, joined by commas (later attempts use the 10th).
func (q *Queue) backoffs() string {
	b := make([]byte, 0, 80)
	for a := 1; a <= 10; a++ {
		if a > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, ms(q.backoff(a)), 10)
	}
	return string(b)
}

// tick brings a queue up to date without leasing: due scheduled jobs
// become ready, expired leases count as failed attempts.
func (q *Queue) tick(ctx context.Context, name string) error {
	k := q.keys(name)
	args := []any{k.base, 0, q.channel, name, q.backoffs()}
	if err := dequeueScript.Run(ctx, q.rdb, []string{k.sched, k.active, k.lim, k.wake}, args...).Err(); err != nil {
		return wrap("tick", err)
	}
	return nil
}

func (q *Queue) pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-q.closed:
		return queue.ErrClosed
	}
}

// take runs the dequeue script on one queue for the Dequeue call nonce: a
// delivery, or how long until something there is due (negative:
// nothing). A run again after a lost reply answers the same delivery. On
// an error the call may have leased a job: the caller gives it back.
func (q *Queue) take(ctx context.Context, name string, k qkeys, lease time.Duration, backoffs, nonce string) (*queue.Delivery, time.Duration, error) {
	args := []any{k.base, ms(lease), q.channel, name, backoffs, nonce}
	start := time.Now()
	v, err := q.run(ctx, dequeueScript, []string{k.sched, k.active, k.lim, k.wake}, args...)
	short := notReplicated(err)
	if err != nil && !short {
		return nil, 0, wrap("dequeue", err)
	}
	res, ok := v.([]any)
	if !ok {
		return nil, 0, fmt.Errorf("redisqueue: dequeue: malformed reply %v", v)
	}
	d, wait, perr := q.parseTake(name, res, start, lease)
	if perr != nil {
		return nil, 0, perr
	}
	if d != nil && short {
		// The lease is on the master alone: a failover could hand the
		// job, and its fencing token, to another worker.
		return nil, 0, wrap("dequeue", err)
	}
	return d, wait, nil
}

// parseTake decodes the reply of the dequeue script.
func (q *Queue) parseTake(name string, res []any, start time.Time, lease time.Duration) (*queue.Delivery, time.Duration, error) {
	if len(res) == 2 {
		w, ok := res[1].(int64)
		if !ok {
			return nil, 0, fmt.Errorf("redisqueue: dequeue: malformed reply %v", res)
		}
		if w < 0 {
			return nil, -1, nil
		}
		return nil, time.Duration(w) * time.Millisecond, nil
	}
	if len(res) != 13 {
		return nil, 0, fmt.Errorf("redisqueue: dequeue: malformed reply of %d items", len(res))
	}
	var p parser
	jobName := p.str(res[1])
	j := queue.Job{
		Queue:       name,
		ID:          jobName,
		Type:        p.str(res[4]),
		Payload:     []byte(p.str(res[5])),
		MaxAttempts: int(p.intStr(res[6], queue.DefaultMaxAttempts)),
		Retention:   time.Duration(p.intStr(res[7], queue.DefaultRetention.Milliseconds())) * time.Millisecond,
		Timeout:     time.Duration(p.intStr(res[8], 0)) * time.Millisecond,
		UniqueKey:   p.str(res[9]),
		Priority:    int(p.int(res[10])),
	}
	attempt, token := p.int(res[2]), p.int(res[3])
	if hs := p.str(res[12]); hs != "" && p.err == nil {
		j.Headers, p.err = decodeHeaders(hs)
	}
	if p.err != nil {
		return nil, 0, fmt.Errorf("redisqueue: dequeue: malformed job %s/%s: %w", name, jobName, p.err)
	}
	return queue.NewDelivery(q, queue.Delivery{
		Job:        j,
		ID:         queue.FormatID(name, jobName),
		Attempt:    int(attempt),
		Token:      uint64(token),
		LeaseUntil: start.Add(lease),
	}), 0, nil
}

// block waits on the wake lists for at most wait.
func (q *Queue) block(ctx context.Context, wakes []string, wait time.Duration) error {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < wait {
			wait = left
		}
	}
	if wait <= 0 {
		return nil
	}
	if q.single || len(wakes) == 1 {
		// A key of this call's own, in the first queue's slot, that a
		// canceled ctx or Close pushes to, so BLPOP returns at once.
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		ck := strings.TrimSuffix(wakes[0], "wake") + "x:" + hex.EncodeToString(rnd[:])
		// A push is of no use once the BLPOP returned: it is canceled then
		// (the deferred calls run in reverse order).
		blocking, unblocked := context.WithCancel(context.Background())
		push := func() {
			pctx, cancel := context.WithTimeout(blocking, 2*time.Second)
			defer cancel()
			_, _ = q.rdb.TxPipelined(pctx, func(p redis.Pipeliner) error {
				p.RPush(pctx, ck, "1")
				p.PExpire(pctx, ck, 10*time.Second)
				return nil
			})
		}
		defer pushAfter(ctx, func() {
			if ctx.Err() != context.DeadlineExceeded { // the BLPOP timeout covers a deadline
				push()
			}
		})()
		defer pushAfter(q.closeCtx, push)()
		defer unblocked()
		return q.blpop(ctx, append(wakes[:len(wakes):len(wakes)], ck), wait)
	}
	per := min(wait, 50*time.Millisecond)
	for _, w := range wakes {
		if err := q.blpop(ctx, []string{w}, per); err != nil {
			return err
		}
	}
	return nil
}

// pushAfter runs push when ctx ends; the function it returns cancels that
// or, when push has started, waits for it, so that no push outlives the
// Dequeue that armed it.
func pushAfter(ctx context.Context, push func()) (stop func()) {
	done := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		defer close(done)
		push()
	})
	return func() {
		if !cancel() {
			<-done
		}
	}
}

// blpop runs BLPOP with a timeout of a millisecond's precision; a timeout
// is not an error.
func (q *Queue) blpop(ctx context.Context, keys []string, wait time.Duration) error {
	var err error
	if wait >= time.Second && wait%time.Second == 0 {
		err = q.rdb.BLPop(ctx, wait, keys...).Err()
	} else {
		wait = max(wait, time.Millisecond)
		args := make([]any, 0, len(keys)+2)
		args = append(args, "blpop")
		for _, k := range keys {
			args = append(args, k)
		}
		args = append(args, strconv.FormatFloat(wait.Seconds(), 'f', 3, 64))
		err = q.rdb.Do(ctx, args...).Err()
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return wrap("dequeue: blpop", err)
	}
	return nil
}

// settle runs one of the settling scripts and maps its code.
func (q *Queue) settle(ctx context.Context, op string, d *queue.Delivery, s *redis.Script, keys []string, args ...any) (int64, error) {
	if q.isClosed() {
		return 0, queue.ErrClosed
	}
	v, err := q.run(ctx, s, keys, args...)
	if err != nil && !notReplicated(err) {
		return 0, wrap(op, err)
	}
	code, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("redisqueue: %s: malformed reply %v", op, v)
	}
	if code == codeLost {
		return code, fmt.Errorf("%w: %s token %d", queue.ErrLeaseLost, d.ID, d.Token)
	}
	if err != nil {
		return code, wrap(op, err)
	}
	return code, nil
}

func (q *Queue) delivery(d *queue.Delivery) (qkeys, string, error) {
	if d == nil {
		return qkeys{}, "", fmt.Errorf("%w: nil delivery", queue.ErrLeaseLost)
	}
	qn, name, err := queue.ParseID(d.ID)
	if err != nil {
		return qkeys{}, "", fmt.Errorf("%w: %w", queue.ErrLeaseLost, err)
	}
	return q.keys(qn), name, nil
}

// Ack implements queue.Settler.
func (q *Queue) Ack(ctx context.Context, d *queue.Delivery, result []byte) error {
	k, name, err := q.delivery(d)
	if err != nil {
		return err
	}
	if result == nil {
		result = []byte{}
	}
	_, err = q.settle(ctx, "ack", d, ackScript, []string{k.job(name), k.active, k.lim, k.wake},
		k.base, name, d.Token, result, q.channel, string(d.ID), newNonce())
	return err
}

// newNonce names one call, so that a run again of its script (go-redis's
// own retry after a broken connection, or redisha.Retry's) recognizes
// that the call already took effect (the job hash's sn field, a Dequeue
// record: see scripts.go).
func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b[:])
}

// AckAndDequeue acknowledges d as Ack does and then, in the same script
// call (one round trip), leases the best ready job of d's queue as Dequeue
// would, without blocking: the next delivery, or nil when that queue has
// none to lease now. When the ack is refused (queue.ErrLeaseLost) nothing
// is leased. queue.Worker uses it, when it takes jobs from one queue, to
// settle a job and take the next at once.
func (q *Queue) AckAndDequeue(ctx context.Context, d *queue.Delivery, result []byte, lease time.Duration) (*queue.Delivery, error) {
	if lease < time.Millisecond {
		return nil, fmt.Errorf("%w: AckAndDequeue needs a lease of at least 1ms", queue.ErrInvalidConfig)
	}
	if q.isClosed() {
		return nil, queue.ErrClosed
	}
	k, name, err := q.delivery(d)
	if err != nil {
		return nil, err
	}
	qn, _, _ := queue.ParseID(d.ID)
	if result == nil {
		result = []byte{}
	}
	nonce := newNonce() // of the ack, and of the Dequeue record of the next job
	args := []any{k.base, ms(lease), q.channel, qn, name, d.Token, result, string(d.ID), q.backoffs(), nonce}
	start := time.Now()
	v, err := q.run(ctx, ackDequeueScript, []string{k.sched, k.active, k.lim, k.wake, k.job(name)}, args...)
	short := notReplicated(err)
	if err != nil && !short {
		q.giveBack(k, nonce)
		return nil, wrap("ack", err)
	}
	res, ok := v.([]any)
	if !ok {
		q.giveBack(k, nonce)
		return nil, fmt.Errorf("redisqueue: ack: malformed reply %v", v)
	}
	if len(res) == 1 {
		return nil, fmt.Errorf("%w: %s token %d", queue.ErrLeaseLost, d.ID, d.Token)
	}
	next, _, perr := q.parseTake(qn, res, start, lease)
	if perr != nil || short {
		q.giveBack(k, nonce)
		if perr != nil {
			return nil, perr
		}
		return nil, wrap("ack", err) // the ack is on the master alone
	}
	return next, nil
}

// Fail implements queue.Settler. The backoff is computed here with
// Config.Backoff(d.Attempt).
func (q *Queue) Fail(ctx context.Context, d *queue.Delivery, cause error) error {
	k, name, err := q.delivery(d)
	if err != nil {
		return err
	}
	msg, perm := "failed", 0
	if cause != nil {
		msg = cause.Error()
	}
	if errors.Is(cause, queue.ErrPermanent) {
		perm = 1
	}
	_, err = q.settle(ctx, "fail", d, failScript, []string{k.job(name), k.active, k.sched, k.lim, k.wake},
		k.base, name, d.Token, msg, perm, ms(q.backoff(d.Attempt)), q.channel, string(d.ID), newNonce())
	return err
}

// Extend implements queue.Settler.
func (q *Queue) Extend(ctx context.Context, d *queue.Delivery, lease time.Duration) error {
	if lease < time.Millisecond {
		return fmt.Errorf("%w: Extend needs a lease of at least 1ms", queue.ErrInvalidConfig)
	}
	k, name, err := q.delivery(d)
	if err != nil {
		return err
	}
	start := time.Now()
	code, err := q.settle(ctx, "extend", d, extendScript, []string{k.job(name), k.active}, name, d.Token, ms(lease))
	if code == codeCanceled {
		return fmt.Errorf("%w: %s", queue.ErrCanceled, d.ID)
	}
	if code == codeOK {
		d.LeaseUntil = start.Add(lease) // on the master, when err says the replicas did not confirm
	}
	return err
}

// Release implements queue.Settler: a Snooze of no delay.
func (q *Queue) Release(ctx context.Context, d *queue.Delivery) error {
	return q.snooze(ctx, "release", d, 0)
}

// Snooze implements queue.Snoozer: the job is scheduled delay from now
// by Redis's clock (rounded up to the millisecond), in one script with
// Release's checks, and a run again of the script after a lost reply
// reports the first run's success, as Release's does.
func (q *Queue) Snooze(ctx context.Context, d *queue.Delivery, delay time.Duration) error {
	if delay < 0 {
		return fmt.Errorf("%w: Snooze needs a delay >= 0, got %v", queue.ErrInvalidConfig, delay)
	}
	return q.snooze(ctx, "snooze", d, delay)
}

// snooze gives the job of d back, ready delay from now (0: at once).
func (q *Queue) snooze(ctx context.Context, op string, d *queue.Delivery, delay time.Duration) error {
	k, name, err := q.delivery(d)
	if err != nil {
		return err
	}
	// Rounded up, so that the job is never due before delay has passed.
	delay = min(delay, queue.MaxSnooze)
	delayMS := int64((delay + time.Millisecond - 1) / time.Millisecond)
	_, err = q.settle(ctx, op, d, snoozeScript, []string{k.job(name), k.active, k.sched, k.lim, k.wake},
		k.base, name, d.Token, delayMS, newNonce())
	return err
}

// Cancel implements queue.JobQueue. A running job ends at once as
// canceled (its lease no longer counts against the queue's concurrency);
// its worker's Ack, Fail and Release are refused with queue.ErrLeaseLost
// and its Extend with queue.ErrCanceled.
func (q *Queue) Cancel(ctx context.Context, id queue.JobID) error {
	if q.isClosed() {
		return queue.ErrClosed
	}
	qn, name, err := queue.ParseID(id)
	if err != nil {
		return err
	}
	k := q.keys(qn)
	v, err := q.run(ctx, cancelScript, []string{k.job(name), k.sched, k.active, k.lim, k.wake},
		k.base, name, q.channel, string(queue.FormatID(qn, name)), newNonce())
	if err != nil && !notReplicated(err) {
		return wrap("cancel", err)
	}
	switch v {
	case int64(codeOK):
		if err != nil {
			return wrap("cancel", err)
		}
		return nil
	case int64(codeCanceled):
		return fmt.Errorf("%w: %s", queue.ErrNotFound, id)
	case int64(codeEnded):
		return fmt.Errorf("%w: %s", queue.ErrEnded, id)
	}
	return fmt.Errorf("redisqueue: cancel: malformed reply %v", v)
}

// Status implements queue.JobQueue.
func (q *Queue) Status(ctx context.Context, id queue.JobID) (queue.JobInfo, error) {
	if q.isClosed() {
		return queue.JobInfo{}, queue.ErrClosed
	}
	qn, name, err := queue.ParseID(id)
	if err != nil {
		return queue.JobInfo{}, err
	}
	h, err := q.readJob(ctx, q.keys(qn).job(name))
	if err != nil {
		return queue.JobInfo{}, wrap("status", err)
	}
	return parseInfo(queue.FormatID(qn, name), qn, h)
}

var states = map[string]queue.State{
	"s": queue.StateScheduled, "r": queue.StateReady, "a": queue.StateActive,
	"d": queue.StateDone, "x": queue.StateDead, "c": queue.StateCanceled,
}

// parseInfo decodes a job hash; an empty one is queue.ErrNotFound.
func parseInfo(id queue.JobID, qn string, h map[string]string) (queue.JobInfo, error) {
	if len(h) == 0 {
		return queue.JobInfo{}, fmt.Errorf("%w: %s", queue.ErrNotFound, id)
	}
	var p parser
	info := queue.JobInfo{ID: id, Queue: qn}
	info.Type = p.field(h, "t", true)
	info.State = states[p.field(h, "st", true)]
	if p.err == nil && info.State == "" {
		p.err = fmt.Errorf("unknown state %q", h["st"])
	}
	if v, ok := h["p"]; ok {
		info.Payload = []byte(v)
	} else if p.err == nil {
		p.err = errors.New("missing field p")
	}
	if v, ok := h["r"]; ok {
		info.Result = []byte(v)
	}
	info.Attempt = int(p.num(h, "n"))
	info.LastErr = h["le"]
	info.Priority = int(p.num(h, "pr"))
	if hs := h["h"]; hs != "" {
		var err error
		if info.Headers, err = decodeHeaders(hs); err != nil {
			p.fail(err)
		}
	}
	info.EnqueuedAt = p.time(h, "e", true)
	info.RunAt = p.time(h, "ra", false)
	info.StartedAt = p.time(h, "sa", false)
	info.EndedAt = p.time(h, "ed", false)
	if p.err != nil {
		return queue.JobInfo{}, fmt.Errorf("redisqueue: malformed job %s: %w", id, p.err)
	}
	return info, nil
}

// parser decodes Redis replies, keeping the first error.
type parser struct{ err error }

func (p *parser) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

func (p *parser) str(v any) string {
	s, ok := v.(string)
	if !ok {
		p.fail(fmt.Errorf("expected a string, got %T", v))
	}
	return s
}

func (p *parser) int(v any) int64 {
	n, ok := v.(int64)
	if !ok {
		p.fail(fmt.Errorf("expected an integer, got %T", v))
	}
	return n
}

// intStr parses a decimal string; "" is def.
func (p *parser) intStr(v any, def int64) int64 {
	s := p.str(v)
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		p.fail(err)
	}
	return n
}

func (p *parser) field(h map[string]string, f string, required bool) string {
	v, ok := h[f]
	if !ok && required {
		p.fail(fmt.Errorf("missing field %s", f))
	}
	return v
}

func (p *parser) num(h map[string]string, f string) int64 {
	v, ok := h[f]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		p.fail(fmt.Errorf("field %s: %w", f, err))
	}
	return n
}

func (p *parser) time(h map[string]string, f string, required bool) time.Time {
	v := p.field(h, f, required)
	if v == "" {
		return time.Time{}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		p.fail(fmt.Errorf("field %s: %w", f, err))
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// Dead implements queue.DeadLetters.
func (q *Queue) Dead(ctx context.Context, qname string, offset, limit int) ([]queue.JobInfo, error) {
	if offset < 0 || limit < 0 {
		return nil, fmt.Errorf("%w: negative offset or limit", queue.ErrInvalidConfig)
	}
	if q.isClosed() {
		return nil, queue.ErrClosed
	}
	if _, _, err := queue.ParseID(queue.FormatID(qname, "x")); err != nil {
		return nil, fmt.Errorf("%w: queue name %q", queue.ErrInvalidConfig, qname)
	}
	if limit == 0 {
		return nil, nil
	}
	k := q.keys(qname)
	dk := k.base + "dead"
	var out []queue.JobInfo
	for len(out) < limit {
		names, err := q.rdb.ZRevRange(ctx, dk, int64(offset), int64(offset+limit-len(out)-1)).Result()
		if err != nil {
			return nil, wrap("dead", err)
		}
		if len(names) == 0 {
			return out, nil
		}
		cmds := make([]*redis.MapStringStringCmd, len(names))
		_, err = q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, n := range names {
				cmds[i] = p.HGetAll(ctx, k.job(n))
			}
			return nil
		})
		if err != nil {
			return nil, wrap("dead", err)
		}
		var gone []any
		for i, n := range names {
			info, err := parseInfo(queue.FormatID(qname, n), qname, cmds[i].Val())
			if errors.Is(err, queue.ErrNotFound) {
				gone = append(gone, n) // its retention has passed
				continue
			}
			if err != nil {
				return nil, err
			}
			if info.State != queue.StateDead {
				gone = append(gone, n)
				continue
			}
			out = append(out, info)
		}
		if len(gone) == 0 {
			offset += len(names)
			continue
		}
		// Forget the members whose jobs are gone, and read that page again.
		if err := q.rdb.ZRem(ctx, dk, gone...).Err(); err != nil {
			return nil, wrap("dead", err)
		}
		offset += len(names) - len(gone)
	}
	return out, nil
}

// Requeue implements queue.DeadLetters. A job that is not dead is
// queue.ErrNotFound.
func (q *Queue) Requeue(ctx context.Context, id queue.JobID) error {
	if q.isClosed() {
		return queue.ErrClosed
	}
	qn, name, err := queue.ParseID(id)
	if err != nil {
		return err
	}
	k := q.keys(qn)
	v, err := q.run(ctx, requeueScript, []string{k.job(name), k.wake}, k.base, name, newNonce())
	if err != nil && !notReplicated(err) {
		return wrap("requeue", err)
	}
	if v != int64(codeOK) {
		return fmt.Errorf("%w: %s is not a dead job", queue.ErrNotFound, id)
	}
	if err != nil {
		return wrap("requeue", err)
	}
	return nil
}

// setLimitsScript stores a queue's limits, refilling its bucket when the
// rate was off.
//
//	KEYS: limits hash, wake list
//	ARGV: concurrency, rate, burst
var setLimitsScript = redis.NewScript(luaLib + `
local had = redis.call('HEXISTS', KEYS[1], 'r') == 1
redis.call('HDEL', KEYS[1], 'c', 'r', 'b')
if not had or tonumber(ARGV[2]) == 0 then redis.call('HDEL', KEYS[1], 'tk', 'ts') end
local f = {}
if ARGV[1] ~= '0' then f[#f+1] = 'c'; f[#f+1] = ARGV[1] end
if tonumber(ARGV[2]) > 0 then
  f[#f+1] = 'r'; f[#f+1] = ARGV[2]; f[#f+1] = 'b'; f[#f+1] = ARGV[3]
end
if #f > 0 then redis.call('HSET', KEYS[1], unpack(f)) end
wake(KEYS[2])
return 1
`)

// SetLimits implements queue.Limiter. Limits take effect at the next
// Dequeue of any process.
func (q *Queue) SetLimits(ctx context.Context, qname string, l queue.Limits) error {
	if _, _, err := queue.ParseID(queue.FormatID(qname, "x")); err != nil {
		return fmt.Errorf("%w: queue name %q", queue.ErrInvalidConfig, qname)
	}
	if l.Concurrency < 0 || l.Rate < 0 || l.Burst < 0 {
		return fmt.Errorf("%w: negative limits", queue.ErrInvalidConfig)
	}
	if q.isClosed() {
		return queue.ErrClosed
	}
	if l.Burst == 0 {
		l.Burst = max(1, int(l.Rate))
	}
	if err := q.register(ctx, "set limits", qname); err != nil {
		return err
	}
	k := q.keys(qname)
	_, err := q.run(ctx, setLimitsScript, []string{k.lim, k.wake},
		l.Concurrency, strconv.FormatFloat(l.Rate, 'g', -1, 64), l.Burst)
	if err != nil {
		return wrap("set limits", err)
	}
	return nil
}
