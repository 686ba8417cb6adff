package queue

import (
	"context"
	"fmt"
	"time"
)

// An Inspector shows an operator what a queue holds and lets them steer
// it: the counts of its jobs by state, the jobs themselves page by page,
// pausing and resuming it, and clearing its dead letters. It is an
// optional ability of a JobQueue (Memory and queue/redisqueue have it;
// queue/queuetest holds every implementation to the same clauses).
// Cancelling a job is JobQueue.Cancel, and requeueing or listing one dead
// letter is DeadLetters'.
//
// Each implementation states what each call costs. None reads the whole
// queue to answer: counts are kept where the jobs are, and a page costs
// about its size plus finding where the cursor left off.
type Inspector interface {
	DeadLetters

	// Queues lists the queues the Inspector knows, sorted by name: every
	// queue a job was enqueued to, or that was paused or limited. An
	// implementation may forget a queue that no longer holds anything.
	Queues(ctx context.Context) ([]string, error)
	// Counts reports a queue's jobs by state; a queue the Inspector does
	// not know has none (no error). The counts are of one moment: the
	// queue is brought up to date first (due scheduled jobs count as
	// ready, expired leases as failed attempts).
	Counts(ctx context.Context, queue string) (QueueCounts, error)
	// List returns one page of a queue's jobs in state (StateReady,
	// StateScheduled, StateActive or StateDead; ended jobs are not
	// indexed, so StateDone and StateCanceled are ErrInvalidConfig), in
	// the order of their state:
	//   - ready: the order Dequeue takes them, higher Priority first, then
	//     the order they became ready;
	//   - scheduled: by RunAt, then by ID;
	//   - active: by lease deadline, then by ID;
	//   - dead: most recent death first, then by ID, descending.
	// cursor is "" for the first page, then the previous page's Next;
	// limit is the page size, 0 for DefaultPageSize, at most MaxPageSize.
	// The cursor is stable: paging on while jobs come and go never skips
	// a job that stayed in the state throughout, and does not list it
	// twice, but for an active job whose lease was extended between pages
	// (it moves later, and may be listed again) and the exceptions an
	// implementation states. A bad limit, state or cursor is
	// ErrInvalidConfig.
	List(ctx context.Context, queue string, state State, cursor string, limit int) (Page, error)
	// Pause stops every process's Dequeue from leasing the queue's jobs
	// (Enqueue still stores them; jobs already leased run on) until
	// Resume. A Dequeue over several queues takes from the others. It
	// holds until Resume, whoever called it; pausing a paused queue is no
	// error.
	Pause(ctx context.Context, queue string) error
	// Resume ends a Pause and wakes the Dequeues blocked waiting for the
	// queue's jobs; resuming a queue not paused is no error.
	Resume(ctx context.Context, queue string) error
	// RequeueAll requeues every dead letter of the queue as Requeue does,
	// oldest death first, and returns how many it requeued. It works in
	// batches, so jobs that die meanwhile may be requeued too, and a
	// failure part way leaves the batches before it done.
	RequeueAll(ctx context.Context, queue string) (int, error)
	// DeleteDead deletes a dead letter: Status no longer knows it. A job
	// that is not dead (anymore: a requeued job may be running) is
	// ErrNotFound, and stays as it is.
	DeleteDead(ctx context.Context, id JobID) error
	// DeleteAllDead deletes every dead letter of the queue, in batches as
	// RequeueAll, and returns how many it deleted.
	DeleteAllDead(ctx context.Context, queue string) (int, error)
}

// Page sizes of Inspector.List.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// A Page is one page of Inspector.List.
type Page struct {
	Jobs []JobInfo
	// Next is the cursor of the next page; "" when this page is the last.
	Next string
}

// QueueCounts is what Inspector.Counts reports of one queue.
type QueueCounts struct {
	Queue string
	// Jobs in each state now. Scheduled includes the retries waiting out
	// their backoff (a scheduled job with Attempt > 0).
	Ready, Scheduled, Active, Dead int
	// DoneTotal and CanceledTotal count the jobs that ended done or
	// canceled since the queue's first job: running totals, for rates,
	// not the ended jobs still kept for their Retention (which are not
	// indexed).
	DoneTotal, CanceledTotal int64
	// OldestReady is how long the ready job that has waited longest has
	// been ready (since it was enqueued, its RunAt passed or its retry
	// became due); 0 when none is ready. It is what a backlog costs in
	// latency.
	OldestReady time.Duration
	// Paused reports whether the queue is paused.
	Paused bool
}

// Pending is the depth of the queue: its jobs not yet ended (ready,
// scheduled and active).
func (c QueueCounts) Pending() int { return c.Ready + c.Scheduled + c.Active }

// CheckList validates the arguments of Inspector.List for
// implementations, returning the page size to use.
func CheckList(queue string, state State, limit int) (int, error) {
	if !validName(queue) {
		return 0, fmt.Errorf("%w: queue name %q", ErrInvalidConfig, queue)
	}
	switch state {
	case StateReady, StateScheduled, StateActive, StateDead:
	case StateDone, StateCanceled:
		return 0, fmt.Errorf("%w: %s jobs are not indexed: list ready, scheduled, active or dead jobs", ErrInvalidConfig, state)
	default:
		return 0, fmt.Errorf("%w: unknown state %q", ErrInvalidConfig, state)
	}
	if limit < 0 || limit > MaxPageSize {
		return 0, fmt.Errorf("%w: page size %d not in 0..%d", ErrInvalidConfig, limit, MaxPageSize)
	}
	if limit == 0 {
		limit = DefaultPageSize
	}
	return limit, nil
}

// CheckQueue validates a queue name given to an Inspector method, for
// implementations.
func CheckQueue(queue string) error {
	if !validName(queue) {
		return fmt.Errorf("%w: queue name %q", ErrInvalidConfig, queue)
	}
	return nil
}

// badCursor is the error of a cursor List did not make.
func badCursor(cursor string) error {
	return fmt.Errorf("%w: malformed cursor %q", ErrInvalidConfig, cursor)
}
