package queue

import (
	"context"
	"fmt"
	"slices"
)

// MaxChain bounds the jobs one AckThen enqueues: a chain step is one
// atomic write (one Lua script on Redis, one transaction on PostgreSQL),
// and holding the queue for thousands of jobs at once would stall every
// other caller. A fan-out wider than this belongs in a job of its own
// that enqueues with EnqueueBatch.
const MaxChain = 100

// A Chainer acknowledges a delivery and enqueues the jobs that follow it
// in one atomic step: the optional part of a Settler that Delivery.AckThen
// calls, and the Worker, for the jobs a handler declared with
// Delivery.Then. It is a separate interface so that a Settler written
// before it still compiles; Memory, queue/redisqueue and queue/pgqueue
// implement it.
type Chainer interface {
	// AckThen ends the delivery's job successfully with result, as Ack
	// does, and enqueues next, as Enqueue would each, in one step: either
	// both happen or neither does. It returns the IDs of next, in order.
	//
	//   - When the delivery is no longer current it fails with
	//     ErrLeaseLost, as Ack does, and enqueues nothing.
	//   - Every next job is checked before anything changes: a job
	//     Enqueue would refuse (ErrInvalidJob, ErrPayloadTooLarge,
	//     ErrHeadersTooLarge), more than MaxChain jobs, two jobs with one
	//     ID or with one unique key in one queue (ErrInvalidJob,
	//     ErrDuplicate), a job whose UniqueKey is held by another job
	//     than the acked one, or whose ID holds a job of another Type or
	//     Payload (ErrDuplicate), fails the call and leaves the delivery
	//     current and unacknowledged, so that it may still be acked,
	//     failed or released. A unique key the acked job held is free for
	//     its next jobs, since the ack frees it in the same step.
	//   - A next job whose ID names a job the queue knows, of the same
	//     Type and Payload, is not enqueued again (as Enqueue's retry is
	//     not) and its ID is returned.
	//   - The step is idempotent: when its reply is lost and the call is
	//     run again (a client's retry after a broken connection), the
	//     next jobs are still enqueued exactly once, and the call reports
	//     the first run's success.
	//
	// An implementation may refuse next jobs it cannot enqueue atomically
	// with the ack (redisqueue: a job of another queue, which may live on
	// another Cluster node) with an error wrapping ErrUnsupported,
	// changing nothing. An empty next is an Ack.
	AckThen(ctx context.Context, d *Delivery, result []byte, next []Job) ([]JobID, error)
}

// AckThen acknowledges the job with result and enqueues next in the same
// atomic step; see Chainer. With no next job it is Ack. It returns
// ErrUnsupported, changing nothing, when the delivery's queue is no
// Chainer: the ack and the enqueues are never done one after the other,
// where a crash in between would lose the next jobs.
func (d *Delivery) AckThen(ctx context.Context, result []byte, next ...Job) ([]JobID, error) {
	if len(next) == 0 {
		return nil, d.settler.Ack(ctx, d, result)
	}
	c, ok := d.settler.(Chainer)
	if !ok {
		return nil, fmt.Errorf("%w: the delivery's queue cannot enqueue jobs atomically with an Ack (no queue.Chainer)", ErrUnsupported)
	}
	return c.AckThen(ctx, d, result, next)
}

// Then declares jobs that follow this one: the delivery's Ack enqueues
// them in the same atomic step (AckThen), so that they exist if and only
// if the job is done. A Worker's handler calls it and returns nil (or a
// ResultFunc's result): the Worker acknowledges the job with them. When
// the handler fails, is canceled or snoozed, they are dropped, and its
// next run declares them again; the job's Ack is the only way they are
// enqueued, so a handler that runs twice (at least once delivery) never
// makes them twice.
//
// Each call adds to the jobs declared before. Then copies the Job values
// (not their payloads, which the queue reads at the Ack: leave them
// unchanged until the handler returns). It is not safe to call
// concurrently with itself or the delivery's Ack.
//
// When the queue is no Chainer, or refuses a job (a bad job, a held
// unique key, another queue on redisqueue), the Ack fails changing
// nothing, and the Worker fails the attempt with the reason instead of
// leaving the job leased until its lease runs out; the error wraps
// ErrUnsupported, ErrInvalidJob, ErrDuplicate and so on, so that a
// middleware or Status's LastErr tells why.
func (d *Delivery) Then(next ...Job) {
	d.next = append(d.next, next...)
}

// PrepareChain validates the next jobs of an AckThen and fills their
// defaults as Prepare does, for Chainer implementations: it refuses more
// than MaxChain jobs, and two jobs of one ID or of one unique key in one
// queue, which one step could not store both of. Errors name the job's
// index ("next job 2: ...") and wrap those of Prepare, ErrInvalidJob or
// ErrDuplicate.
func PrepareChain(next []Job, maxPayload int) ([]Job, []JobID, error) {
	if len(next) > MaxChain {
		return nil, nil, fmt.Errorf("%w: %d next jobs, at most %d in one step", ErrInvalidJob, len(next), MaxChain)
	}
	jobs := make([]Job, len(next))
	ids := make([]JobID, len(next))
	for i, j := range next {
		p, id, err := Prepare(j, maxPayload)
		if err != nil {
			return nil, nil, fmt.Errorf("next job %d: %w", i, err)
		}
		if k := slices.Index(ids[:i], id); k >= 0 {
			return nil, nil, fmt.Errorf("%w: next jobs %d and %d are both %s", ErrInvalidJob, k, i, id)
		}
		if p.UniqueKey != "" {
			for k := range i {
				if jobs[k].Queue == p.Queue && jobs[k].UniqueKey == p.UniqueKey {
					return nil, nil, fmt.Errorf("%w: next jobs %d and %d both hold unique key %q", ErrDuplicate, k, i, p.UniqueKey)
				}
			}
		}
		jobs[i], ids[i] = p, id
	}
	return jobs, ids, nil
}
