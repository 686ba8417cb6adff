package queue

import (
	"context"
	"time"
)

// A JobQueue holds jobs until workers take them. Delivery is at least
// once: a job is leased to one worker at a time (so that, while no lease
// runs out, each job is delivered and acked exactly once, however many
// producers and workers share the queue) and, when the lease runs out
// before the worker acknowledges it (the worker died, hung or was cut
// off), the attempt counts as failed (LastErr says so) and the job is
// delivered again, with the next Attempt, once its backoff has passed; a
// job whose last attempt's lease ran out is dead. Every delivery carries
// a fencing token, and the queue refuses an acknowledgement from a
// delivery that is no longer the current one, so a late worker cannot
// overwrite the result of the next.
//
// A job goes from StateReady (or StateScheduled, before its RunAt or
// while its retry's backoff runs) to StateActive while leased, and ends
// StateDone (Ack), StateDead or StateCanceled. The queue copies payloads
// and results: callers may reuse their buffers once a call returned.
//
// Implementations: Memory (this process) and queue/redisqueue; both pass
// queue/queuetest.
type JobQueue interface {
	// Enqueue stores j and returns its ID, "<queue>~<name>", once it is
	// durable in the queue. A unique job whose UniqueKey is held answers
	// the existing job's ID with ErrDuplicate. A payload over the queue's
	// MaxPayload (default DefaultMaxPayload) is ErrPayloadTooLarge; a job
	// the Job documentation does not allow (no Type, a bad Queue or ID,
	// Priority out of 0..9, a negative MaxAttempts, Timeout, Retention or
	// UniqueFor, UniqueKey without UniqueFor or the reverse) is
	// ErrInvalidJob; either way nothing is enqueued.
	//
	// Enqueue is idempotent by Job.ID: when the ID names a job the queue
	// still knows (pending, or ended within its Retention) of the same
	// Type and Payload, it enqueues nothing, leaves that job as it is (a
	// retry may differ in Priority, RunAt and other options), and returns
	// its ID with a nil error, as if this call had enqueued it; a job of another
	// Type or Payload under the ID is ErrDuplicate with the ID. An error
	// from Enqueue does not mean the job was not enqueued (the reply may
	// have been lost after the queue stored it): a caller that retries
	// must set Job.ID, and then a retry never makes a second job.
	Enqueue(ctx context.Context, j Job) (JobID, error)
	// Dequeue leases a ready job for lease, blocking until there is one or
	// ctx ends (then ctx.Err(), as soon as ctx ends), and returns a job
	// enqueued while it blocks promptly. It takes from the first of queues that
	// has a ready job its Limits allow (strict priority in list order;
	// the Worker reorders the list for weighted priorities). Within a
	// queue, jobs come out by Priority, then in the order they became
	// ready.
	Dequeue(ctx context.Context, queues []string, lease time.Duration) (*Delivery, error)
	// Status reports where a job is; ErrNotFound once it is unknown (never
	// enqueued, a malformed ID, or its retention after ending has passed).
	Status(ctx context.Context, id JobID) (JobInfo, error)
	// Wait blocks until the job has ended (done, dead or canceled) and
	// returns its final JobInfo (at once for an ended job), or ctx.Err()
	// as soon as ctx ends, or ErrNotFound for a job Status does not know.
	// It works from any process.
	Wait(ctx context.Context, id JobID) (JobInfo, error)
	// Cancel stops a job: a waiting one is removed at once (never
	// delivered, StateCanceled); a running one is marked, its Extend fails
	// with ErrCanceled (so its handler's context is canceled at its next
	// heartbeat), its Ack is refused with ErrLeaseLost, and it ends
	// StateCanceled without a result. Cancelling an ended job is
	// ErrEnded, an unknown one ErrNotFound.
	Cancel(ctx context.Context, id JobID) error
}

// Settler is the part of a JobQueue a Delivery calls back; queue
// implementations provide it, users call the Delivery's methods. Each
// method fails with ErrLeaseLost, changing nothing, when the delivery is
// no longer current: its lease ran out, the job was delivered again,
// canceled (but see Extend), or ended, by this delivery or another. A
// Settler may also be a Snoozer (Delivery.Snooze) and a Chainer
// (Delivery.AckThen, Delivery.Then).
type Settler interface {
	// Ack ends the delivery's job successfully, keeping result for the
	// job's Retention.
	Ack(ctx context.Context, d *Delivery, result []byte) error
	// Fail records a failed attempt, with cause's message as LastErr: the
	// job is retried after its backoff (never sooner), or is dead when its
	// MaxAttempts are spent or cause wraps ErrPermanent.
	Fail(ctx context.Context, d *Delivery, cause error) error
	// Extend renews the lease for another lease from now: the job is not
	// delivered again while its worker keeps extending. It returns
	// ErrLeaseLost when the delivery is no longer current and ErrCanceled
	// when the job was canceled.
	Extend(ctx context.Context, d *Delivery, lease time.Duration) error
	// Release gives the job back at once without counting an attempt, as
	// a worker shutting down does: its next delivery has the same Attempt
	// (and a larger Token).
	Release(ctx context.Context, d *Delivery) error
}

// A Delivery is one lease of one job to one worker.
type Delivery struct {
	Job     Job
	ID      JobID
	Attempt int    // 1 on the first delivery
	Token   uint64 // fencing token: grows with every delivery of the job
	// LeaseUntil is when the queue may deliver the job again, by the
	// local clock when the lease was granted. Extend moves it, so under a
	// Worker, whose heartbeat calls Extend, a handler must not read it.
	LeaseUntil time.Time

	settler Settler
	next    []Job // declared by Then, enqueued by Ack
}

// NewDelivery is for JobQueue implementations: it binds a delivery to the
// Settler its methods call.
func NewDelivery(s Settler, d Delivery) *Delivery {
	d.settler = s
	return &d
}

// Ack ends the job successfully with result (may be nil). It fails with
// ErrLeaseLost when the delivery is no longer current: the job was
// delivered again, canceled, or ended (by this delivery or another).
// When jobs were declared with Then, Ack is AckThen with them: it
// enqueues them in the same atomic step, or fails changing nothing.
func (d *Delivery) Ack(ctx context.Context, result []byte) error {
	if len(d.next) > 0 {
		_, err := d.AckThen(ctx, result, d.next...)
		return err
	}
	return d.settler.Ack(ctx, d, result)
}

// Fail records a failed attempt; see Settler.Fail.
func (d *Delivery) Fail(ctx context.Context, cause error) error {
	return d.settler.Fail(ctx, d, cause)
}

// Extend renews the lease; see Settler.Extend.
func (d *Delivery) Extend(ctx context.Context, lease time.Duration) error {
	return d.settler.Extend(ctx, d, lease)
}

// Release gives the job back without counting the attempt.
func (d *Delivery) Release(ctx context.Context) error { return d.settler.Release(ctx, d) }

// BatchEnqueuer enqueues many jobs in one round trip.
type BatchEnqueuer interface {
	// EnqueueBatch enqueues jobs, returning their IDs in order. Each job
	// is enqueued atomically on its own; a batch is not: on error some
	// jobs may be enqueued (their IDs are set) and others not, and a job
	// whose ID is not set may be enqueued too (a lost reply). Jobs with
	// Job.ID set are idempotent as in Enqueue, so the whole batch can be
	// sent again safely. An empty batch is no error.
	EnqueueBatch(ctx context.Context, jobs []Job) ([]JobID, error)
}

// An AckDequeuer acknowledges a delivery and leases the next ready job of
// the same queue in one step (one round trip on Redis and on PostgreSQL,
// one lock in memory), without blocking: the next Delivery is nil when no
// job is ready, or none its Limits allow. When the Ack is refused it
// returns ErrLeaseLost and leases nothing. A Worker serving one queue uses
// it, halving the round trips per job. Memory, redisqueue and pgqueue
// implement it.
type AckDequeuer interface {
	AckAndDequeue(ctx context.Context, d *Delivery, result []byte, lease time.Duration) (*Delivery, error)
}

// DeadLetters lists, inspects and requeues the jobs that exhausted their
// attempts or failed permanently.
type DeadLetters interface {
	// Dead lists up to limit dead jobs of queue, most recent first,
	// skipping the first offset of them.
	Dead(ctx context.Context, queue string, offset, limit int) ([]JobInfo, error)
	// Requeue makes a dead job ready again with a fresh set of attempts
	// (its next delivery is Attempt 1); an unknown job is ErrNotFound.
	Requeue(ctx context.Context, id JobID) error
}

// Limits are the cluster-wide bounds of one queue, kept by the queue and
// enforced at Dequeue across all processes.
type Limits struct {
	// Concurrency bounds the jobs of the queue leased at once; 0 means no
	// bound. A Dequeue it holds back proceeds as soon as a leased job of
	// the queue is acked or otherwise no longer leased.
	Concurrency int
	// Rate bounds the jobs leased per second, with bursts up to Burst
	// (default max(1, Rate)); 0 means no bound.
	Rate  float64
	Burst int
}

// Limiter sets the Limits of a queue.
type Limiter interface {
	SetLimits(ctx context.Context, queue string, l Limits) error
}
