// Package queuetest is the conformance kit for queue.JobQueue: the tests
// every queue runs (queue.Memory, queue/redisqueue, queue/pgqueue), and that authors of
// other queues can run on their own.
//
// Run checks the JobQueue and Settler contract and, when the queue also
// implements them, the queue.BatchEnqueuer, queue.DeadLetters,
// queue.Limiter and queue.Inspector contracts:
//
//   - Enqueue then Dequeue then Ack round-trips the job (Queue, Type,
//     Payload of all 256 byte values, Priority) and keeps the result;
//     Status goes ready → active → done with Attempt 1, and the first
//     delivery has Attempt 1 and a non-zero Token.
//   - Wait, called from another goroutine before the job ends, returns the
//     final JobInfo when the job is acked (done), dies (dead) or is
//     canceled; Wait honours its context (context.DeadlineExceeded,
//     within 1 s of its deadline); Wait of an unknown job is ErrNotFound.
//   - A lease that runs out counts as a failed attempt: the job is
//     delivered again with Attempt 2 and a higher Token, Status has a
//     LastErr, and the old delivery's Ack, Extend, Fail and Release fail
//     with queue.ErrLeaseLost. Extend keeps a job from being redelivered.
//   - Fail retries the job after its backoff (never before the backoff's
//     lower bound), counting attempts; after MaxAttempts failures the job
//     is dead with the last error's message; an error wrapping
//     queue.ErrPermanent makes it dead at once. DeadLetters: Dead lists it
//     (most recent first, offset and limit honoured) and Requeue delivers
//     it again with Attempt 1; Requeue of an unknown job is ErrNotFound.
//   - Within a queue, higher Priority comes out first, FIFO within one
//     priority.
//   - A job with RunAt in the future is scheduled and never delivered
//     before RunAt, and is delivered after it.
//   - UniqueKey/UniqueFor: a second job with a held key is ErrDuplicate
//     and answers the first job's ID; the key is free again once the first
//     job ended or UniqueFor has passed; keys are per queue.
//   - A caller-chosen Job.ID names the job "<queue>~<ID>" and makes
//     Enqueue idempotent: enqueueing the same Type and Payload under it
//     again, while the job is pending or after it ended (within its
//     Retention), enqueues nothing and returns the same JobID with a nil
//     error, in Enqueue and EnqueueBatch, so exactly one job is delivered;
//     another Type or Payload under the ID is ErrDuplicate with the ID.
//   - Cancel removes a waiting job (never delivered, Status canceled);
//     on an active job it makes Extend fail with ErrCanceled and Ack with
//     ErrLeaseLost; on an ended job it is ErrEnded; on an unknown one
//     ErrNotFound.
//   - Release gives the job back at once without counting an attempt; the
//     next delivery has the same Attempt and a higher Token.
//   - Snooze, when the queue's deliveries implement queue.Snoozer: the
//     job is scheduled (Status: StateScheduled, RunAt the delay from the
//     call) and not delivered before the delay has passed, then is
//     delivered, to a Dequeue that was already blocked, within 2 s after
//     it, with the same Attempt and a higher Token; the snoozed (stale)
//     delivery's Snooze and Ack fail with queue.ErrLeaseLost, changing
//     nothing; a negative delay is queue.ErrInvalidConfig and changes
//     nothing; a delay of 0 gives the job back at once, as Release.
//   - Chains, when the queue's deliveries implement queue.Chainer:
//     AckThen acks the job with its result and enqueues each next job
//     exactly once (their IDs in order), a next job may take the acked
//     job's unique key, one whose ID names the same job already is not
//     enqueued again, a second AckThen of the delivery is
//     queue.ErrLeaseLost enqueueing nothing, a failed attempt enqueues
//     none of its declared jobs (Delivery.Then) and its retry's Ack
//     enqueues them once, and a next job of another queue is enqueued
//     with the ack or refused with queue.ErrUnsupported changing nothing
//     (Chain). The AckThen and Then-declared Ack of a stale delivery (its
//     lease ran out and the job was delivered again, or it was canceled)
//     fail with queue.ErrLeaseLost and enqueue nothing (ChainStale). A
//     next job refused (invalid, oversized, its unique key held by
//     another job, its ID holding another job, an ID or a unique key
//     twice in the call) fails the whole step: the job stays active and
//     unacknowledged under the same delivery, and none of the call's
//     next jobs is stored, not even those before the refused one
//     (ChainRefused).
//   - A payload over queue.DefaultMaxPayload fails with
//     ErrPayloadTooLarge; invalid jobs (no Type, bad queue name or ID,
//     priority out of 0..9) with ErrInvalidJob; Status of a malformed or
//     unknown ID with ErrNotFound. Nothing is enqueued by a failed call.
//   - A Settler's methods (and a Snoozer's, a Chainer's) given a nil
//     Delivery fail with ErrLeaseLost, never panic (NilDelivery).
//   - Ended jobs are forgotten (ErrNotFound) some time after their
//     Retention (the kit allows 3 s for a Retention of 1 s).
//   - Dequeue blocks on an empty queue until a job is enqueued (and then
//     returns it promptly: the kit allows 1 s, a good queue takes a few
//     ms) and honours its context (its error, within 1 s of its end);
//     with several queues it takes from the first that has a ready job.
//   - A Dequeue whose context ends (a deadline or a cancellation, at any
//     point of the call) while jobs are ready either returns a delivery
//     or takes nothing: every job is delivered soon after by another
//     Dequeue, well within its lease, with Attempt 1.
//   - Limiter: Concurrency bounds the leased jobs of a queue and a Dequeue
//     blocked by it proceeds when a job is acked; Rate spaces deliveries.
//   - BatchEnqueuer: EnqueueBatch returns IDs in order; the jobs are
//     delivered; an empty batch is no error.
//   - A JobID is "<queue>~<name>" (queue.FormatID), one URL path segment
//     as it is (url.PathEscape leaves it alone), for generated and
//     caller-chosen IDs; "<queue>/<name>", the same ID with a slash for
//     a separator, names the same job in Status, Wait and Cancel, which
//     report the ID as FormatID makes it.
//   - A queue with Close (an io.Closer): Close is idempotent, and after
//     it every method (Enqueue, Dequeue, Status, Wait, Cancel, the held
//     delivery's Ack, Fail, Extend and Release, and EnqueueBatch, Dead,
//     Requeue, SetLimits, AckAndDequeue, AckThen where implemented) fails with
//     queue.ErrClosed.
//   - Headers: Job.Headers reach every delivery (the first, a retry, a
//     requeued dead letter) and Status, copied both ways (a caller's or a
//     handler's change to its map changes nothing in the queue); none for
//     a job without; the largest (queue.MaxHeaderBytes) pass, one byte
//     more, or many small ones over it, is queue.ErrHeadersTooLarge; bad
//     keys (empty, a space, a colon, too long) and non-UTF-8 values are
//     queue.ErrInvalidJob, and enqueue nothing; EnqueueBatch carries them.
//   - AckDequeuer, when implemented: AckAndDequeue acks the delivery and
//     leases the best ready job of its queue (priority, then FIFO; a
//     scheduled job not yet due is not ready), or answers nil when none
//     is; a lease of 0 is queue.ErrInvalidConfig and acks nothing;
//     an Ack refused (acked already, or its lease ran out) is
//     queue.ErrLeaseLost and leases nothing (AckDequeue,
//     AckDequeueExpired). Workers that settle with it, against producers,
//     have every job delivered once and acked once (AckDequeueRace).
//   - Inspector, when implemented: Counts reports each state exactly
//     (ready, scheduled, active, dead, the done and canceled totals,
//     OldestReady within the time the oldest ready job waited), follows
//     due jobs to ready and expired leases to their retry, and Queues
//     lists the queue, sorted. List pages each state in its documented
//     order with any page size up to queue.MaxPageSize (every page but the
//     last full), carries the jobs' information, refuses ended states, bad
//     sizes and bad cursors (queue.ErrInvalidConfig), and, while jobs are
//     taken, canceled and enqueued between pages, never skips a ready or
//     scheduled job that stayed so nor lists one twice. Pause stops
//     Dequeue and AckAndDequeue from leasing the queue's jobs (not
//     another queue's, not Enqueue), Resume wakes a blocked Dequeue
//     within 1 s. DeleteDead removes a dead job for Status, Dead, List
//     and Counts and refuses (queue.ErrNotFound) a job that is not dead;
//     RequeueAll requeues every dead job, oldest death first, with fresh
//     attempts, beyond any batch size; DeleteAllDead deletes them all.
//     Races: jobs enqueued after Pause returned are not leased while
//     paused by workers already dequeuing, and all run after Resume;
//     RequeueAll twice at once and Requeue, against workers killing the
//     jobs again, run each job exactly once per requeue; a dead job
//     requeued and leased is not deleted (its worker's Ack succeeds),
//     and against workers every dead job is either deleted (and never
//     ran) or ran and acked.
//   - Many concurrent producers and consumers (run the kit with -race):
//     every job is delivered and acked exactly once when no lease expires;
//     no delivery for 5 s after the last Enqueue, with jobs unacked, is a
//     lost job.
//
// The kit takes a few seconds. Each subtest calls newQueue for a queue;
// newQueue should register its cleanup (closing the queue, deleting keys)
// with t.Cleanup. The queue must use the default MaxPayload and a short
// retry backoff: at least MinBackoff and at most MaxBackoff for every
// attempt (for queue.Memory, MemoryConfig.Backoff returning 20 ms).
// Queues sharing a server may share one keyspace: every subtest uses
// random queue names.
//
// Usage, in a queue's tests:
//
//	func TestConformance(t *testing.T) {
//		queuetest.Run(t, func(t *testing.T) queue.JobQueue {
//			q, err := myqueue.New(client, myqueue.Config{
//				Backoff: func(int) time.Duration { return 20 * time.Millisecond },
//			})
//			require.NoError(t, err)
//			t.Cleanup(func() { q.Close() })
//			return q
//		})
//	}
package queuetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

// Bounds of the retry backoff the queue under test must be configured with.
const (
	MinBackoff = 10 * time.Millisecond
	MaxBackoff = 200 * time.Millisecond
)

const (
	// longLease never runs out during a subtest.
	longLease = time.Minute
	// shortLease runs out quickly in the lease subtests.
	shortLease = 300 * time.Millisecond
	// patience bounds waits for something that should happen promptly.
	patience = 5 * time.Second
	// clockSlack tolerates a server clock slightly off the local one.
	clockSlack = 5 * time.Millisecond
	// ctxSlack bounds how long a blocked call may take to return once
	// its context ended: a round trip on a loaded machine.
	ctxSlack = time.Second
)

// Run runs the conformance tests against the queues newQueue returns, one
// per subtest.
func Run(t *testing.T, newQueue func(t *testing.T) queue.JobQueue) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, q queue.JobQueue, name string)
	}{
		{"RoundTrip", testRoundTrip},
		{"Wait", testWait},
		{"LeaseExpiry", testLeaseExpiry},
		{"Extend", testExtend},
		{"FailRetry", testFailRetry},
		{"Permanent", testPermanent},
		{"DeadLetters", testDeadLetters},
		{"Priority", testPriority},
		{"RunAt", testRunAt},
		{"Unique", testUnique},
		{"CallerID", testCallerID},
		{"Idempotent", testIdempotent},
		{"CancelWaiting", testCancelWaiting},
		{"CancelActive", testCancelActive},
		{"Release", testRelease},
		{"Snooze", testSnooze},
		{"Chain", testChain},
		{"ChainStale", testChainStale},
		{"ChainRefused", testChainRefused},
		{"InvalidJobs", testInvalidJobs},
		{"NilDelivery", testNilDelivery},
		{"Retention", testRetention},
		{"DequeueBlocks", testDequeueBlocks},
		{"DequeueCanceled", testDequeueCanceled},
		{"SeveralQueues", testSeveralQueues},
		{"Concurrency", testConcurrency},
		{"Rate", testRate},
		{"Batch", testBatch},
		{"ManyWorkers", testManyWorkers},
		{"AckDequeue", testAckDequeue},
		{"AckDequeueExpired", testAckDequeueExpired},
		{"AckDequeueRace", testAckDequeueRace},
		{"IDForms", testIDForms},
		{"Close", testClose},
		{"Headers", testHeaders},
		{"InspectCounts", testInspectCounts},
		{"InspectList", testInspectList},
		{"InspectListStable", testInspectListStable},
		{"InspectPause", testInspectPause},
		{"InspectDead", testInspectDead},
		{"InspectRaces", testInspectRaces},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := newQueue(t)
			require.NotNil(t, q, "newQueue returned nil")
			tc.fn(t, q, queueName(t))
		})
	}
}

// queueName returns a random queue name, so that queues sharing a server
// (and repeated runs) never see each other's jobs.
func queueName(t *testing.T) string {
	var b [8]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return "qt-" + hex.EncodeToString(b[:])
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func enqueue(t *testing.T, q queue.JobQueue, j queue.Job) queue.JobID {
	t.Helper()
	id, err := q.Enqueue(t.Context(), j)
	require.NoError(t, err)
	require.NotEmpty(t, id)
	return id
}

// dequeue takes a job of queues, failing the test after patience.
func dequeue(t *testing.T, q queue.JobQueue, lease time.Duration, queues ...string) *queue.Delivery {
	t.Helper()
	d, err := q.Dequeue(ctxFor(t, patience), queues, lease)
	require.NoError(t, err)
	require.NotNil(t, d)
	return d
}

// requireEmpty checks that no job of queues is delivered within d.
func requireEmpty(t *testing.T, q queue.JobQueue, d time.Duration, queues ...string) {
	t.Helper()
	got, err := q.Dequeue(ctxFor(t, d), queues, longLease)
	if err == nil {
		t.Fatalf("unexpected delivery of %s (attempt %d)", got.ID, got.Attempt)
	}
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func status(t *testing.T, q queue.JobQueue, id queue.JobID) queue.JobInfo {
	t.Helper()
	in, err := q.Status(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, id, in.ID)
	return in
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func testRoundTrip(t *testing.T, q queue.JobQueue, name string) {
	payload := allBytes()
	before := time.Now()
	id := enqueue(t, q, queue.Job{Queue: name, Type: "email.send", Payload: payload, Priority: 3})
	qn, _, perr := queue.ParseID(id)
	require.NoError(t, perr)
	require.Equal(t, name, qn, "ID %q does not carry the queue", id)
	payload[0] = 99 // the queue must have copied or sent it

	in := status(t, q, id)
	require.Equal(t, queue.StateReady, in.State)
	require.Equal(t, name, in.Queue)
	require.Equal(t, "email.send", in.Type)
	require.Equal(t, allBytes(), in.Payload)
	require.Equal(t, 3, in.Priority)
	require.Zero(t, in.Attempt)
	require.WithinRange(t, in.EnqueuedAt, before.Add(-time.Second), time.Now().Add(time.Second))

	d := dequeue(t, q, longLease, name)
	require.Equal(t, id, d.ID)
	require.Equal(t, 1, d.Attempt)
	require.NotZero(t, d.Token)
	require.Equal(t, name, d.Job.Queue)
	require.Equal(t, "email.send", d.Job.Type)
	require.Equal(t, allBytes(), d.Job.Payload)
	require.Equal(t, 3, d.Job.Priority)
	require.True(t, d.LeaseUntil.After(time.Now()), "LeaseUntil %v is not in the future", d.LeaseUntil)

	in = status(t, q, id)
	require.Equal(t, queue.StateActive, in.State)
	require.Equal(t, 1, in.Attempt)
	require.False(t, in.StartedAt.IsZero())

	result := []byte("sent\x00\xff")
	require.NoError(t, d.Ack(t.Context(), result))
	result[0] = 'X'
	in = status(t, q, id)
	require.Equal(t, queue.StateDone, in.State)
	require.Equal(t, []byte("sent\x00\xff"), in.Result)
	require.Equal(t, 1, in.Attempt)
	require.False(t, in.EndedAt.IsZero())

	in, err := q.Wait(ctxFor(t, patience), id)
	require.NoError(t, err, "Wait on an ended job returns at once")
	require.Equal(t, queue.StateDone, in.State)
	require.ErrorIs(t, d.Ack(t.Context(), nil), queue.ErrLeaseLost, "second Ack")
	requireEmpty(t, q, 100*time.Millisecond, name)
}

// waitAsync starts Wait on id in another goroutine.
func waitAsync(t *testing.T, q queue.JobQueue, id queue.JobID) <-chan queue.JobInfo {
	ch := make(chan queue.JobInfo, 1)
	ctx := ctxFor(t, patience)
	go func() {
		in, err := q.Wait(ctx, id)
		if err != nil {
			in.LastErr = "Wait failed: " + err.Error()
		}
		ch <- in
	}()
	return ch
}

func requireWaited(t *testing.T, ch <-chan queue.JobInfo, want queue.State) queue.JobInfo {
	t.Helper()
	select {
	case in := <-ch:
		require.Equal(t, want, in.State, in.LastErr)
		return in
	case <-time.After(2 * patience):
		t.Fatal("Wait did not return")
		return queue.JobInfo{}
	}
}

func testWait(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	// Done.
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	done := waitAsync(t, q, id)
	time.Sleep(20 * time.Millisecond) // let Wait block
	d := dequeue(t, q, longLease, name)
	require.NoError(t, d.Ack(ctx, []byte("r")))
	in := requireWaited(t, done, queue.StateDone)
	require.Equal(t, []byte("r"), in.Result)

	// Dead.
	id = enqueue(t, q, queue.Job{Queue: name, Type: "t", MaxAttempts: 1})
	dead := waitAsync(t, q, id)
	time.Sleep(20 * time.Millisecond)
	d = dequeue(t, q, longLease, name)
	require.NoError(t, d.Fail(ctx, errors.New("boom")))
	in = requireWaited(t, dead, queue.StateDead)
	require.Contains(t, in.LastErr, "boom")

	// Canceled.
	id = enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	canceled := waitAsync(t, q, id)
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, q.Cancel(ctx, id))
	requireWaited(t, canceled, queue.StateCanceled)

	// The context bounds Wait.
	id = enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	start := time.Now()
	_, err := q.Wait(ctxFor(t, 100*time.Millisecond), id)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.GreaterOrEqual(t, elapsed, 90*time.Millisecond)
	require.Less(t, elapsed, 100*time.Millisecond+ctxSlack, "Wait returned %v after its context's deadline", elapsed-100*time.Millisecond)

	_, err = q.Wait(ctx, queue.FormatID(name, "missing"))
	require.ErrorIs(t, err, queue.ErrNotFound)
}

func testLeaseExpiry(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t", MaxAttempts: 3})
	first := dequeue(t, q, shortLease, name)
	waited := waitAsync(t, q, id)

	second := dequeue(t, q, longLease, name) // after the lease and a backoff
	require.GreaterOrEqual(t, time.Now(), first.LeaseUntil.Add(-clockSlack), "redelivered before the lease ran out")
	require.Equal(t, id, second.ID)
	require.Equal(t, 2, second.Attempt)
	require.Greater(t, second.Token, first.Token)
	in := status(t, q, id)
	require.Equal(t, queue.StateActive, in.State)
	require.Equal(t, 2, in.Attempt)
	require.NotEmpty(t, in.LastErr, "an expired lease is a failed attempt")

	require.ErrorIs(t, first.Ack(ctx, []byte("late")), queue.ErrLeaseLost)
	require.ErrorIs(t, first.Extend(ctx, time.Minute), queue.ErrLeaseLost)
	require.ErrorIs(t, first.Fail(ctx, errors.New("late")), queue.ErrLeaseLost)
	require.ErrorIs(t, first.Release(ctx), queue.ErrLeaseLost)
	require.Equal(t, queue.StateActive, status(t, q, id).State, "a stale delivery changed the job")

	require.NoError(t, second.Ack(ctx, []byte("ok")))
	in = requireWaited(t, waited, queue.StateDone)
	require.Equal(t, []byte("ok"), in.Result)

	// The last attempt's lease running out makes the job dead.
	id = enqueue(t, q, queue.Job{Queue: name, Type: "t", MaxAttempts: 1})
	dequeue(t, q, shortLease, name)
	in = requireWaited(t, waitAsync(t, q, id), queue.StateDead)
	require.Equal(t, 1, in.Attempt)
	require.NotEmpty(t, in.LastErr)
}

func testExtend(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	// extendLease is twice shortLease, so that an extension every quarter
	// lease keeps the job even when a loaded machine delays a call by 400
	// ms (pgqueue lost its 300 ms lease so at load 13 on 2 cores).
	const extendLease = 2 * shortLease
	d := dequeue(t, q, extendLease, name)
	stop := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		tick := time.NewTicker(extendLease / 4)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				errs <- nil
				return
			case <-tick.C:
				if err := d.Extend(ctx, extendLease); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	requireEmpty(t, q, 3*extendLease, name)
	close(stop)
	require.NoError(t, <-errs)
	require.Equal(t, queue.StateActive, status(t, q, id).State)
	require.Equal(t, 1, status(t, q, id).Attempt)
	require.NoError(t, d.Ack(ctx, nil))
}

func testFailRetry(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t", MaxAttempts: 3})
	var last uint64
	// failedAt is taken before the previous attempt's Fail: its backoff
	// starts later, so the redelivery comes at least MinBackoff after it,
	// however long the Status and Ack calls in between took.
	var failedAt time.Time
	for attempt := 1; attempt <= 3; attempt++ {
		d := dequeue(t, q, longLease, name)
		if attempt > 1 {
			require.GreaterOrEqual(t, time.Since(failedAt), MinBackoff-clockSlack, "retried before the backoff")
		}
		require.Equal(t, attempt, d.Attempt)
		require.Greater(t, d.Token, last)
		last = d.Token
		failedAt = time.Now()
		start := failedAt
		require.NoError(t, d.Fail(ctx, fmt.Errorf("failure %d", attempt)))
		in := status(t, q, id)
		require.Equal(t, attempt, in.Attempt)
		require.Equal(t, fmt.Sprintf("failure %d", attempt), in.LastErr)
		if attempt < 3 {
			if in.State == queue.StateScheduled {
				require.False(t, in.RunAt.Before(start.Add(MinBackoff-clockSlack)), "RunAt %v before the backoff", in.RunAt)
			} else {
				// The backoff may have passed already on a slow machine.
				require.Contains(t, []queue.State{queue.StateReady, queue.StateScheduled}, in.State)
			}
			require.ErrorIs(t, d.Ack(ctx, nil), queue.ErrLeaseLost, "Ack after Fail")
		}
	}
	in := status(t, q, id)
	require.Equal(t, queue.StateDead, in.State)
	require.Equal(t, "failure 3", in.LastErr)
	require.False(t, in.EndedAt.IsZero())
	requireEmpty(t, q, MaxBackoff+100*time.Millisecond, name)
}

func testPermanent(t *testing.T, q queue.JobQueue, name string) {
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t", MaxAttempts: 5})
	d := dequeue(t, q, longLease, name)
	require.NoError(t, d.Fail(t.Context(), fmt.Errorf("bad input: %w", queue.ErrPermanent)))
	in := status(t, q, id)
	require.Equal(t, queue.StateDead, in.State)
	require.Equal(t, 1, in.Attempt)
	require.Contains(t, in.LastErr, "bad input")
	requireEmpty(t, q, MaxBackoff+100*time.Millisecond, name)
}

func testDeadLetters(t *testing.T, q queue.JobQueue, name string) {
	dl, ok := q.(queue.DeadLetters)
	if !ok {
		t.Skip("the queue does not implement queue.DeadLetters")
	}
	ctx := t.Context()
	var ids []queue.JobID
	for i := range 3 {
		id := enqueue(t, q, queue.Job{Queue: name, Type: "t", Payload: []byte{byte(i)}, MaxAttempts: 1})
		d := dequeue(t, q, longLease, name)
		require.Equal(t, id, d.ID)
		require.NoError(t, d.Fail(ctx, fmt.Errorf("dead %d", i)))
		ids = append(ids, id)
		time.Sleep(2 * time.Millisecond) // distinct times of death
	}
	// A job that is not dead is not listed.
	enqueue(t, q, queue.Job{Queue: name, Type: "t"})

	list, err := dl.Dead(ctx, name, 0, 10)
	require.NoError(t, err)
	require.Len(t, list, 3)
	for i, in := range list {
		require.Equal(t, ids[2-i], in.ID, "most recent first")
		require.Equal(t, queue.StateDead, in.State)
		require.Equal(t, fmt.Sprintf("dead %d", 2-i), in.LastErr)
	}
	list, err = dl.Dead(ctx, name, 1, 1)
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, ids[1], list[0].ID)
	list, err = dl.Dead(ctx, queueName(t), 0, 10)
	require.NoError(t, err)
	require.Empty(t, list, "another queue has no dead jobs")

	require.NoError(t, dl.Requeue(ctx, ids[1]))
	list, err = dl.Dead(ctx, name, 0, 10)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, ids[2], list[0].ID)
	require.Equal(t, ids[0], list[1].ID)

	// The requeued job is delivered after the one already waiting, with a
	// fresh set of attempts.
	other := dequeue(t, q, longLease, name)
	require.NoError(t, other.Ack(ctx, nil))
	d := dequeue(t, q, longLease, name)
	require.Equal(t, ids[1], d.ID)
	require.Equal(t, 1, d.Attempt)
	require.Equal(t, []byte{1}, d.Job.Payload)
	require.NoError(t, d.Ack(ctx, nil))
	require.Equal(t, queue.StateDone, status(t, q, ids[1]).State)

	require.ErrorIs(t, dl.Requeue(ctx, queue.FormatID(name, "missing")), queue.ErrNotFound)
}

func testPriority(t *testing.T, q queue.JobQueue, name string) {
	jobs := []struct {
		prio int
		tag  string
	}{{0, "a"}, {5, "b"}, {9, "c"}, {5, "d"}, {0, "e"}, {9, "f"}, {1, "g"}}
	for _, j := range jobs {
		enqueue(t, q, queue.Job{Queue: name, Type: "t", Priority: j.prio, Payload: []byte(j.tag)})
	}
	var got string
	for range jobs {
		d := dequeue(t, q, longLease, name)
		got += string(d.Job.Payload)
		require.NoError(t, d.Ack(t.Context(), nil))
	}
	require.Equal(t, "cfbdgae", got, "higher priority first, FIFO within a priority")
}

func testRunAt(t *testing.T, q queue.JobQueue, name string) {
	runAt := time.Now().Add(400 * time.Millisecond)
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t", RunAt: runAt})
	now := enqueue(t, q, queue.Job{Queue: name, Type: "t", RunAt: time.Now().Add(-time.Hour)})
	in := status(t, q, id)
	require.Equal(t, queue.StateScheduled, in.State)
	require.WithinDuration(t, runAt, in.RunAt, 10*time.Millisecond)
	require.Equal(t, queue.StateReady, status(t, q, now).State, "a past RunAt is ready at once")

	d := dequeue(t, q, longLease, name)
	require.Equal(t, now, d.ID)
	require.NoError(t, d.Ack(t.Context(), nil))
	d = dequeue(t, q, longLease, name)
	require.Equal(t, id, d.ID)
	require.GreaterOrEqual(t, time.Now(), runAt.Add(-clockSlack), "delivered before RunAt")
	require.NoError(t, d.Ack(t.Context(), nil))
}

func testUnique(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	first := enqueue(t, q, queue.Job{Queue: name, Type: "t", UniqueKey: "k", UniqueFor: time.Hour})
	id, err := q.Enqueue(ctx, queue.Job{Queue: name, Type: "t", UniqueKey: "k", UniqueFor: time.Hour})
	require.ErrorIs(t, err, queue.ErrDuplicate)
	require.Equal(t, first, id, "ErrDuplicate answers the existing job's ID")
	enqueue(t, q, queue.Job{Queue: name, Type: "t", UniqueKey: "other", UniqueFor: time.Hour})
	enqueue(t, q, queue.Job{Queue: queueName(t), Type: "t", UniqueKey: "k", UniqueFor: time.Hour})

	// The key is released when the job ends.
	for {
		d := dequeue(t, q, longLease, name)
		require.NoError(t, d.Ack(ctx, nil))
		if d.ID == first {
			break
		}
	}
	second := enqueue(t, q, queue.Job{Queue: name, Type: "t", UniqueKey: "k", UniqueFor: time.Hour})
	require.NotEqual(t, first, second)
	require.NoError(t, q.Cancel(ctx, second))
	enqueue(t, q, queue.Job{Queue: name, Type: "t", UniqueKey: "k", UniqueFor: time.Hour})

	// ... or when UniqueFor has passed, while the job still waits.
	held := enqueue(t, q, queue.Job{Queue: name, Type: "t", UniqueKey: "short", UniqueFor: 200 * time.Millisecond})
	_, err = q.Enqueue(ctx, queue.Job{Queue: name, Type: "t", UniqueKey: "short", UniqueFor: 200 * time.Millisecond})
	require.ErrorIs(t, err, queue.ErrDuplicate)
	time.Sleep(300 * time.Millisecond)
	again := enqueue(t, q, queue.Job{Queue: name, Type: "t", UniqueKey: "short", UniqueFor: 200 * time.Millisecond})
	require.NotEqual(t, held, again)
	require.Equal(t, queue.StateReady, status(t, q, held).State)
}

func testCallerID(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t", ID: "report:42", Payload: []byte("one")})
	require.Equal(t, queue.FormatID(name, "report:42"), id)
	got, err := q.Enqueue(ctx, queue.Job{Queue: name, Type: "t", ID: "report:42", Payload: []byte("two")})
	require.ErrorIs(t, err, queue.ErrDuplicate, "another payload under an ID is a conflict")
	require.Equal(t, id, got)
	got, err = q.Enqueue(ctx, queue.Job{Queue: name, Type: "other", ID: "report:42", Payload: []byte("one")})
	require.ErrorIs(t, err, queue.ErrDuplicate, "another type under an ID is a conflict")
	require.Equal(t, id, got)
	require.Equal(t, []byte("one"), status(t, q, id).Payload)

	// The same ID in another queue is another job.
	other := queueName(t)
	id2 := enqueue(t, q, queue.Job{Queue: other, Type: "t", ID: "report:42"})
	require.Equal(t, queue.FormatID(other, "report:42"), id2)

	d := dequeue(t, q, longLease, name)
	require.Equal(t, id, d.ID)
	require.NoError(t, d.Ack(ctx, nil))
	_, err = q.Enqueue(ctx, queue.Job{Queue: name, Type: "t", ID: "report:42"})
	require.ErrorIs(t, err, queue.ErrDuplicate, "an ended job keeps its ID for its retention")
}

// testIdempotent is a caller retrying an Enqueue whose outcome it does not
// know: every retry names the one job, which is delivered once.
func testIdempotent(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	job := queue.Job{Queue: name, Type: "t", ID: "order:7", Payload: []byte("ship it"), UniqueKey: "order:7", UniqueFor: time.Hour}
	first := enqueue(t, q, job)
	job.Priority, job.RunAt = 3, time.Now().Add(-time.Second) // a retry may differ in options
	for range 3 {
		again, err := q.Enqueue(ctx, job)
		require.NoError(t, err, "enqueueing the same job under its ID again is a no-op, not an error")
		require.Equal(t, first, again)
	}
	if b, ok := q.(queue.BatchEnqueuer); ok {
		ids, err := b.EnqueueBatch(ctx, []queue.Job{job, job})
		require.NoError(t, err)
		require.Equal(t, []queue.JobID{first, first}, ids)
	}
	d := dequeue(t, q, longLease, name)
	require.Equal(t, first, d.ID)
	require.Equal(t, 0, d.Job.Priority, "the first Enqueue's job, untouched by the retries")
	requireEmpty(t, q, 100*time.Millisecond, name)

	// A retry after the job ended (within its Retention) names the ended job.
	require.NoError(t, d.Ack(ctx, []byte("shipped")))
	again, err := q.Enqueue(ctx, job)
	require.NoError(t, err)
	require.Equal(t, first, again)
	info := status(t, q, first)
	require.Equal(t, queue.StateDone, info.State)
	require.Equal(t, []byte("shipped"), info.Result)
	requireEmpty(t, q, 100*time.Millisecond, name)
}

func testCancelWaiting(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	ready := enqueue(t, q, queue.Job{Queue: name, Type: "t", Payload: []byte("ready")})
	sched := enqueue(t, q, queue.Job{Queue: name, Type: "t", RunAt: time.Now().Add(100 * time.Millisecond)})
	keep := enqueue(t, q, queue.Job{Queue: name, Type: "t", Payload: []byte("keep")})
	require.NoError(t, q.Cancel(ctx, ready))
	require.NoError(t, q.Cancel(ctx, sched))
	for _, id := range []queue.JobID{ready, sched} {
		in := status(t, q, id)
		require.Equal(t, queue.StateCanceled, in.State)
		require.False(t, in.EndedAt.IsZero())
		require.ErrorIs(t, q.Cancel(ctx, id), queue.ErrEnded)
	}
	d := dequeue(t, q, longLease, name)
	require.Equal(t, keep, d.ID)
	require.NoError(t, d.Ack(ctx, nil))
	require.ErrorIs(t, q.Cancel(ctx, keep), queue.ErrEnded)
	requireEmpty(t, q, 300*time.Millisecond, name)
	require.ErrorIs(t, q.Cancel(ctx, queue.FormatID(name, "missing")), queue.ErrNotFound)
	require.ErrorIs(t, q.Cancel(ctx, "malformed"), queue.ErrNotFound)
}

func testCancelActive(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	d := dequeue(t, q, longLease, name)
	require.NoError(t, q.Cancel(ctx, id))
	require.ErrorIs(t, d.Extend(ctx, time.Minute), queue.ErrCanceled)
	require.ErrorIs(t, d.Ack(ctx, []byte("r")), queue.ErrLeaseLost)
	in, err := q.Wait(ctxFor(t, patience), id)
	require.NoError(t, err)
	require.Equal(t, queue.StateCanceled, in.State)
	require.Nil(t, in.Result)
	require.ErrorIs(t, q.Cancel(ctx, id), queue.ErrEnded)
	requireEmpty(t, q, 200*time.Millisecond, name)
}

func testRelease(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t", MaxAttempts: 1})
	d := dequeue(t, q, longLease, name)
	require.NoError(t, d.Release(ctx))
	require.Contains(t, []queue.State{queue.StateReady, queue.StateScheduled}, status(t, q, id).State)
	start := time.Now()
	d2 := dequeue(t, q, longLease, name)
	require.Less(t, time.Since(start), 2*time.Second, "Release gives the job back at once")
	require.Equal(t, id, d2.ID)
	require.Equal(t, 1, d2.Attempt, "Release does not count an attempt")
	require.Greater(t, d2.Token, d.Token)
	require.ErrorIs(t, d.Ack(ctx, nil), queue.ErrLeaseLost)
	require.NoError(t, d2.Ack(ctx, nil))
	require.Equal(t, queue.StateDone, status(t, q, id).State)
}

func testSnooze(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	// MaxAttempts 2: a queue that counts the snooze as a failed attempt
	// retries the job (with Attempt 2) rather than killing it.
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t", MaxAttempts: 2})
	d := dequeue(t, q, longLease, name)

	// A worker is blocked on the queue when the job is snoozed, as in a
	// Worker: the queue must bring it the job when the delay has passed.
	type result struct {
		d   *queue.Delivery
		err error
		at  time.Time // when Dequeue returned
	}
	got := make(chan result, 1)
	dqCtx := ctxFor(t, patience)
	go func() {
		d, err := q.Dequeue(dqCtx, []string{name}, longLease)
		got <- result{d, err, time.Now()}
	}()
	time.Sleep(100 * time.Millisecond) // let it block (it passes either way)

	const delay = 400 * time.Millisecond
	start := time.Now()
	err := d.Snooze(ctx, delay)
	if errors.Is(err, queue.ErrUnsupported) {
		t.Skip("the queue's deliveries do not implement queue.Snoozer")
	}
	require.NoError(t, err)
	called := time.Now()
	// waiting: the job is scheduled until the delay has passed; on a slow
	// machine the checks below may come after it, when the blocked
	// Dequeue may have taken it already.
	waiting := func(st queue.State) bool {
		return st == queue.StateScheduled ||
			time.Since(start) >= delay-clockSlack && (st == queue.StateReady || st == queue.StateActive)
	}
	in := status(t, q, id)
	require.True(t, waiting(in.State), "a snoozed job waits for its delay, not %s", in.State)
	if in.State == queue.StateScheduled {
		require.False(t, in.RunAt.Before(start.Add(delay-clockSlack)), "RunAt %v before the delay", in.RunAt)
		require.False(t, in.RunAt.After(called.Add(delay+clockSlack)), "RunAt %v after the delay", in.RunAt)
	}
	require.ErrorIs(t, d.Snooze(ctx, delay), queue.ErrLeaseLost, "a second Snooze of the delivery")
	require.ErrorIs(t, d.Ack(ctx, nil), queue.ErrLeaseLost, "Ack after Snooze")
	st := status(t, q, id).State
	require.True(t, waiting(st), "a stale delivery changed the job: %s", st)

	r := <-got
	require.NoError(t, r.err, "the snoozed job was not delivered again")
	d2 := r.d
	require.GreaterOrEqual(t, r.at.Sub(start), delay-clockSlack, "delivered before the delay")
	require.Less(t, r.at.Sub(start), delay+2*time.Second, "delivered late after the delay")
	require.Equal(t, id, d2.ID)
	require.Equal(t, 1, d2.Attempt, "Snooze does not count an attempt")
	require.Greater(t, d2.Token, d.Token)
	require.ErrorIs(t, d.Snooze(ctx, time.Millisecond), queue.ErrLeaseLost, "a stale delivery's Snooze")
	require.Equal(t, queue.StateActive, status(t, q, id).State, "a stale Snooze changed the job")

	require.ErrorIs(t, d2.Snooze(ctx, -time.Second), queue.ErrInvalidConfig, "a negative delay")
	require.Equal(t, queue.StateActive, status(t, q, id).State, "a refused Snooze changed the job")

	require.NoError(t, d2.Snooze(ctx, 0))
	start = time.Now()
	d3 := dequeue(t, q, longLease, name)
	require.Less(t, time.Since(start), 2*time.Second, "a Snooze of 0 gives the job back at once")
	require.Equal(t, id, d3.ID)
	require.Equal(t, 1, d3.Attempt, "Snooze does not count an attempt")
	require.Greater(t, d3.Token, d2.Token)
	require.NoError(t, d3.Ack(ctx, nil))
	require.Equal(t, queue.StateDone, status(t, q, id).State)
}

func testNilDelivery(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	s, ok := q.(queue.Settler)
	if !ok {
		t.Skip("the queue is no queue.Settler")
	}
	call := func(what string, f func() error) {
		t.Helper()
		var err error
		require.NotPanics(t, func() { err = f() }, "%s of a nil delivery", what)
		require.ErrorIs(t, err, queue.ErrLeaseLost, "%s of a nil delivery", what)
	}
	call("Ack", func() error { return s.Ack(ctx, nil, nil) })
	call("Fail", func() error { return s.Fail(ctx, nil, errors.New("x")) })
	call("Extend", func() error { return s.Extend(ctx, nil, time.Second) })
	call("Release", func() error { return s.Release(ctx, nil) })
	if sn, ok := q.(queue.Snoozer); ok {
		call("Snooze", func() error { return sn.Snooze(ctx, nil, time.Second) })
	}
	if c, ok := q.(queue.Chainer); ok {
		call("AckThen", func() error {
			_, err := c.AckThen(ctx, nil, nil, []queue.Job{{Queue: name, Type: "t"}})
			return err
		})
	}
	requireEmpty(t, q, 100*time.Millisecond, name)
}

func testInvalidJobs(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	_, err := q.Enqueue(ctx, queue.Job{Queue: name, Type: "t", Payload: make([]byte, queue.DefaultMaxPayload+1)})
	require.ErrorIs(t, err, queue.ErrPayloadTooLarge)
	for _, j := range []queue.Job{
		{Queue: name},
		{Queue: "bad queue", Type: "t"},
		{Queue: name + "/x", Type: "t"},
		{Queue: strings.Repeat("q", 101), Type: "t"},
		{Queue: name, Type: "t", ID: "a/b"},
		{Queue: name, Type: "t", Priority: 10},
		{Queue: name, Type: "t", Priority: -1},
		{Queue: name, Type: "t", MaxAttempts: -1},
		{Queue: name, Type: "t", UniqueKey: "k"},
	} {
		_, err := q.Enqueue(ctx, j)
		require.ErrorIs(t, err, queue.ErrInvalidJob, "%+v", j)
	}
	requireEmpty(t, q, 100*time.Millisecond, name)
	for _, id := range []queue.JobID{"", "nojobname", "/x", "~x", queue.JobID(name + "/"), queue.FormatID(name, ""), queue.FormatID(name, "missing"), queue.JobID(name + "/missing"), "a b/c", "a b~c"} {
		_, err := q.Status(ctx, id)
		require.ErrorIs(t, err, queue.ErrNotFound, "Status(%q)", id)
	}
	// The largest payload works.
	big := bytes.Repeat([]byte{7}, queue.DefaultMaxPayload)
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t", Payload: big})
	d := dequeue(t, q, longLease, name)
	require.Equal(t, id, d.ID)
	require.True(t, bytes.Equal(big, d.Job.Payload))
	require.NoError(t, d.Ack(ctx, nil))
}

func testRetention(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t", Retention: time.Second})
	d := dequeue(t, q, longLease, name)
	require.NoError(t, d.Ack(ctx, []byte("r")))
	require.Equal(t, queue.StateDone, status(t, q, id).State)
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, err := q.Status(ctx, id)
		if errors.Is(err, queue.ErrNotFound) {
			break
		}
		require.NoError(t, err)
		require.True(t, time.Now().Before(deadline), "job still known 3 s after a retention of 1 s")
		time.Sleep(50 * time.Millisecond)
	}
	_, err := q.Wait(ctx, id)
	require.ErrorIs(t, err, queue.ErrNotFound)
}

func testDequeueBlocks(t *testing.T, q queue.JobQueue, name string) {
	// The context bounds Dequeue.
	start := time.Now()
	_, err := q.Dequeue(ctxFor(t, 100*time.Millisecond), []string{name}, longLease)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.GreaterOrEqual(t, elapsed, 90*time.Millisecond)
	require.Less(t, elapsed, 100*time.Millisecond+ctxSlack, "Dequeue returned %v after its context's deadline", elapsed-100*time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start = time.Now()
	_, err = q.Dequeue(ctx, []string{name}, longLease)
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), ctxSlack, "Dequeue with a cancelled context")

	// A blocked Dequeue wakes on Enqueue.
	type got struct {
		d   *queue.Delivery
		err error
		at  time.Time
	}
	ch := make(chan got, 1)
	go func() {
		d, err := q.Dequeue(ctxFor(t, patience), []string{name}, longLease)
		ch <- got{d, err, time.Now()}
	}()
	time.Sleep(100 * time.Millisecond)
	enqueued := time.Now()
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	r := <-ch
	require.NoError(t, r.err)
	require.Equal(t, id, r.d.ID)
	latency := r.at.Sub(enqueued)
	require.Less(t, latency, time.Second, "a blocked Dequeue took %v to see a job", latency)
	t.Logf("wake-up latency %v", latency)
	require.NoError(t, r.d.Ack(t.Context(), nil))
}

func testSeveralQueues(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	a, b, empty := name+"-a", name+"-b", name+"-e"
	ib := enqueue(t, q, queue.Job{Queue: b, Type: "t"})
	ia := enqueue(t, q, queue.Job{Queue: a, Type: "t", Priority: 0})
	enqueue(t, q, queue.Job{Queue: b, Type: "t", Priority: 9})
	d := dequeue(t, q, longLease, empty, a, b)
	require.Equal(t, ia, d.ID, "the first queue with a ready job comes first, whatever the priorities")
	require.NoError(t, d.Ack(ctx, nil))
	d = dequeue(t, q, longLease, empty, a, b)
	require.Equal(t, b, d.Job.Queue)
	require.Equal(t, 9, d.Job.Priority)
	require.NoError(t, d.Ack(ctx, nil))
	d = dequeue(t, q, longLease, b, a)
	require.Equal(t, ib, d.ID)
	require.NoError(t, d.Ack(ctx, nil))
	requireEmpty(t, q, 100*time.Millisecond, a, b, empty)
}

func testConcurrency(t *testing.T, q queue.JobQueue, name string) {
	lim, ok := q.(queue.Limiter)
	if !ok {
		t.Skip("the queue does not implement queue.Limiter")
	}
	ctx := t.Context()
	require.NoError(t, lim.SetLimits(ctx, name, queue.Limits{Concurrency: 2}))
	other := name + "-free"
	for range 3 {
		enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	}
	free := enqueue(t, q, queue.Job{Queue: other, Type: "t"})
	d1 := dequeue(t, q, longLease, name)
	d2 := dequeue(t, q, longLease, name)
	requireEmpty(t, q, 200*time.Millisecond, name)
	// A full queue does not hide the next queue's jobs.
	d := dequeue(t, q, longLease, name, other)
	require.Equal(t, free, d.ID)
	require.NoError(t, d.Ack(ctx, nil))

	ch := make(chan *queue.Delivery, 1)
	go func() {
		d, err := q.Dequeue(ctxFor(t, patience), []string{name}, longLease)
		if err != nil {
			t.Errorf("blocked Dequeue: %v", err)
		}
		ch <- d
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-ch:
		t.Fatal("a third job was leased past Concurrency 2")
	default:
	}
	require.NoError(t, d1.Ack(ctx, nil))
	d3 := <-ch
	require.NotNil(t, d3)
	require.NoError(t, d2.Ack(ctx, nil))
	require.NoError(t, d3.Ack(ctx, nil))

	// Lifting the limit lets everything through.
	require.NoError(t, lim.SetLimits(ctx, name, queue.Limits{}))
	var ds []*queue.Delivery
	for range 4 {
		enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	}
	for range 4 {
		ds = append(ds, dequeue(t, q, longLease, name))
	}
	for _, d := range ds {
		require.NoError(t, d.Ack(ctx, nil))
	}
}

func testRate(t *testing.T, q queue.JobQueue, name string) {
	lim, ok := q.(queue.Limiter)
	if !ok {
		t.Skip("the queue does not implement queue.Limiter")
	}
	ctx := t.Context()
	const rate, n = 20.0, 6 // one burst, then 5 more at 50 ms spacing
	require.NoError(t, lim.SetLimits(ctx, name, queue.Limits{Rate: rate, Burst: 1}))
	for range n {
		enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	}
	start := time.Now()
	for range n {
		d := dequeue(t, q, longLease, name)
		require.NoError(t, d.Ack(ctx, nil))
	}
	elapsed := time.Since(start)
	require.GreaterOrEqual(t, elapsed, time.Duration(float64(n-1)/rate*0.8*float64(time.Second)), "Rate %v not enforced", rate)
	require.Less(t, elapsed, patience)
}

func testBatch(t *testing.T, q queue.JobQueue, name string) {
	be, ok := q.(queue.BatchEnqueuer)
	if !ok {
		t.Skip("the queue does not implement queue.BatchEnqueuer")
	}
	ctx := t.Context()
	ids, err := be.EnqueueBatch(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, ids)
	var jobs []queue.Job
	for i := range 5 {
		jobs = append(jobs, queue.Job{Queue: name, Type: "t", Payload: []byte{byte(i)}})
	}
	jobs[3].ID = "batch-3"
	ids, err = be.EnqueueBatch(ctx, jobs)
	require.NoError(t, err)
	require.Len(t, ids, 5)
	require.Equal(t, queue.FormatID(name, "batch-3"), ids[3])
	for i := range 5 {
		d := dequeue(t, q, longLease, name)
		require.Equal(t, ids[i], d.ID)
		require.Equal(t, []byte{byte(i)}, d.Job.Payload)
		require.NoError(t, d.Ack(ctx, nil))
	}
	_, err = be.EnqueueBatch(ctx, []queue.Job{{Queue: name, Type: "t", ID: "batch-3"}})
	require.ErrorIs(t, err, queue.ErrDuplicate)
}

func testManyWorkers(t *testing.T, q queue.JobQueue, name string) {
	manyWorkers(t, q, name, func(ctx context.Context, d *queue.Delivery) (*queue.Delivery, error) {
		return nil, d.Ack(ctx, d.Job.Payload)
	})
}

// manyWorkers runs producers and consumers on q at once, the consumers
// settling each delivery with settle (which may lease the next): every
// job is delivered once and acked once.
func manyWorkers(t *testing.T, q queue.JobQueue, name string, settle func(context.Context, *queue.Delivery) (*queue.Delivery, error)) {
	const producers, consumers, perProducer = 4, 4, 250
	const total = producers * perProducer
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var delivered [total]atomic.Int32
	var acked atomic.Int32
	// progress is when the last job was enqueued or acked: once every job
	// is enqueued, patience without a delivery means jobs were lost.
	var progress atomic.Int64
	progress.Store(time.Now().UnixNano())
	errs := make(chan error, producers+consumers)
	var wg, produced sync.WaitGroup
	for p := range producers {
		produced.Go(func() {
			for i := range perProducer {
				n := p*perProducer + i
				_, err := q.Enqueue(ctx, queue.Job{Queue: name, Type: "t", Payload: []byte(strconv.Itoa(n)), Priority: n % 3})
				if err != nil {
					errs <- err
					return
				}
				progress.Store(time.Now().UnixNano())
			}
		})
	}
	var allEnqueued atomic.Bool
	wg.Go(func() {
		produced.Wait()
		allEnqueued.Store(true)
	})
	for range consumers {
		wg.Go(func() {
			var d *queue.Delivery // leased by the last settle
			for acked.Load() < total {
				if d == nil {
					dctx, dcancel := context.WithTimeout(ctx, 200*time.Millisecond)
					var err error
					d, err = q.Dequeue(dctx, []string{name}, longLease)
					dcancel()
					if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
						idle := time.Since(time.Unix(0, progress.Load()))
						if allEnqueued.Load() && idle > patience {
							errs <- fmt.Errorf("no delivery for %v after every job was enqueued, with %d of %d acked: jobs lost", idle, acked.Load(), total)
							return
						}
						continue
					}
					if err != nil {
						errs <- err
						return
					}
				}
				n, err := strconv.Atoi(string(d.Job.Payload))
				if err != nil || n < 0 || n >= total {
					errs <- fmt.Errorf("bad payload %q", d.Job.Payload)
					return
				}
				delivered[n].Add(1)
				next, err := settle(ctx, d)
				if err != nil {
					errs <- fmt.Errorf("settling job %d: %w", n, err)
					return
				}
				acked.Add(1)
				progress.Store(time.Now().UnixNano())
				d = next
			}
			if d != nil {
				errs <- fmt.Errorf("%s leased after every job was acked", d.ID)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, total, acked.Load())
	for n := range delivered {
		require.EqualValues(t, 1, delivered[n].Load(), "job %d", n)
	}
}

// testClose checks the lifecycle rule on a queue with Close: idempotent,
// and queue.ErrClosed from every method after it.
func testClose(t *testing.T, q queue.JobQueue, name string) {
	closer, ok := q.(io.Closer)
	if !ok {
		return // nothing to close: the rule does not apply
	}
	ctx := t.Context()
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	d := dequeue(t, q, longLease, name)
	require.NoError(t, closer.Close())
	require.NoError(t, closer.Close(), "Close is idempotent")

	closed := func(what string, err error) {
		t.Helper()
		require.ErrorIs(t, err, queue.ErrClosed, "%s after Close", what)
	}
	_, err := q.Enqueue(ctx, queue.Job{Queue: name, Type: "t"})
	closed("Enqueue", err)
	_, err = q.Dequeue(ctx, []string{name}, longLease)
	closed("Dequeue", err)
	_, err = q.Status(ctx, id)
	closed("Status", err)
	_, err = q.Wait(ctx, id)
	closed("Wait", err)
	closed("Cancel", q.Cancel(ctx, id))
	closed("Ack", d.Ack(ctx, nil))
	closed("Fail", d.Fail(ctx, errors.New("boom")))
	closed("Extend", d.Extend(ctx, longLease))
	closed("Release", d.Release(ctx))
	if _, err := d.AckThen(ctx, nil, queue.Job{Queue: name, Type: "t"}); !errors.Is(err, queue.ErrUnsupported) {
		closed("AckThen", err)
	}
	if b, ok := q.(queue.BatchEnqueuer); ok {
		_, err = b.EnqueueBatch(ctx, []queue.Job{{Queue: name, Type: "t"}})
		closed("EnqueueBatch", err)
	}
	if a, ok := q.(queue.AckDequeuer); ok {
		_, err = a.AckAndDequeue(ctx, d, nil, longLease)
		closed("AckAndDequeue", err)
	}
	if dl, ok := q.(queue.DeadLetters); ok {
		_, err = dl.Dead(ctx, name, 0, 10)
		closed("Dead", err)
		closed("Requeue", dl.Requeue(ctx, id))
	}
	if l, ok := q.(queue.Limiter); ok {
		closed("SetLimits", l.SetLimits(ctx, name, queue.Limits{Concurrency: 1}))
	}
}

// testIDForms checks that IDs are path-safe and that the slash
// "<queue>/<name>" form still names its job.
func testIDForms(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	gen := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	chosen := enqueue(t, q, queue.Job{Queue: name, Type: "t", ID: "order:7.a_b-c"})
	require.Equal(t, queue.FormatID(name, "order:7.a_b-c"), chosen)
	for _, id := range []queue.JobID{gen, chosen} {
		require.Equal(t, string(id), url.PathEscape(string(id)), "an ID is one URL path segment as it is")
		qn, n, err := queue.ParseID(id)
		require.NoError(t, err)
		require.Equal(t, name, qn)
		require.Equal(t, id, queue.FormatID(qn, n))
	}

	slashed := queue.JobID(name + "/order:7.a_b-c")
	in, err := q.Status(ctx, slashed)
	require.NoError(t, err, "Status of the slash form of an ID")
	require.Equal(t, chosen, in.ID, "reported in the current form")
	require.NoError(t, q.Cancel(ctx, slashed), "Cancel of the slash form of an ID")
	in, err = q.Wait(ctxFor(t, patience), slashed)
	require.NoError(t, err, "Wait of the slash form of an ID")
	require.Equal(t, queue.StateCanceled, in.State)
	require.Equal(t, chosen, in.ID)
}
