package queue

import (
	"context"
	"fmt"
	"time"
)

// MaxSnooze is the longest delay a Snoozer honours; see Snoozer.
const MaxSnooze = 100 * 365 * 24 * time.Hour

// A Snoozer puts a delivered job off: the optional part of a Settler that
// Delivery.Snooze calls. It is a separate interface so that a Settler
// written before it still compiles; Memory, queue/redisqueue and
// queue/pgqueue implement it.
type Snoozer interface {
	// Snooze gives the job back to be delivered again no sooner than
	// delay from now, without counting an attempt: until then the job is
	// StateScheduled with that RunAt, as a delayed job is, and its next
	// delivery has the same Attempt (and a larger Token). A delay of 0
	// is a Release: the job is ready at once. A negative delay is an
	// error wrapping ErrInvalidConfig; one over MaxSnooze counts as
	// MaxSnooze (a delay near the largest Duration would overflow the
	// backends' rounding and arithmetic, and a job put off for a century
	// is shelved anyway). As every Settler method, it fails with
	// ErrLeaseLost, changing nothing, when the delivery is no longer
	// current, and a snoozed delivery is no longer current.
	Snooze(ctx context.Context, d *Delivery, delay time.Duration) error
}

// Snooze puts the job off for delay without counting an attempt; see
// Snoozer. It returns ErrUnsupported when the delivery's queue is no
// Snoozer.
func (d *Delivery) Snooze(ctx context.Context, delay time.Duration) error {
	s, ok := d.settler.(Snoozer)
	if !ok {
		return fmt.Errorf("%w: the delivery's queue cannot snooze (no queue.Snoozer)", ErrUnsupported)
	}
	return s.Snooze(ctx, d, delay)
}

// A SnoozeError, returned by a handler (SnoozeFor), asks the Worker to
// snooze the job instead of failing it. It is a type, not a sentinel, so
// that a middleware can tell a snooze from a failure (errors.As) and read
// its Delay.
type SnoozeError struct {
	Delay time.Duration
}

func (e *SnoozeError) Error() string { return fmt.Sprintf("queue: snoozed for %v", e.Delay) }

// SnoozeFor is what a handler returns to have the Worker put its job off
// for delay (Delivery.Snooze) rather than count a failed attempt: a job
// waiting on something not ready yet (a rate-limited API, a file still
// uploading) is retried later without spending its MaxAttempts and
// without dead-lettering. The handler's other work is not undone. When
// the queue cannot snooze, or delay is negative, the Worker fails the
// attempt with the reason instead, so that the job does not sit leased
// until its lease runs out.
func SnoozeFor(delay time.Duration) error { return &SnoozeError{Delay: delay} }
