package queue

import (
	"errors"
	"fmt"
)

// Errors of this package; backends return them (wrapped) so that callers
// can use errors.Is.
var (
	ErrNotFound        = errors.New("queue: job not found")
	ErrDuplicate       = errors.New("queue: duplicate job")
	ErrLeaseLost       = errors.New("queue: lease lost: the delivery is no longer current")
	ErrCanceled        = errors.New("queue: job canceled")
	ErrEnded           = errors.New("queue: job already ended")
	ErrPayloadTooLarge = errors.New("queue: payload too large")
	ErrInvalidJob      = errors.New("queue: invalid job")
	// ErrHeadersTooLarge is what Enqueue returns for a job whose headers
	// exceed MaxHeaderBytes.
	ErrHeadersTooLarge = errors.New("queue: headers too large")
	ErrInvalidConfig   = errors.New("queue: invalid configuration")
	ErrClosed          = errors.New("queue: closed")
	// ErrAlreadyRunning is what Worker.Run, Scheduler.Run and
	// DepthReporter.Run return at once while a Run of the same Worker,
	// Scheduler or DepthReporter is in progress.
	ErrAlreadyRunning = errors.New("queue: already running")
	// ErrPermanent, wrapped in a handler's error, sends the job to the
	// dead-letter set at once instead of retrying it.
	ErrPermanent = errors.New("queue: permanent failure")
	// ErrUnknownType is the dead-letter reason of a job no handler takes.
	ErrUnknownType = errors.New("queue: no handler for the job's type")
	// ErrUnsupported is what a call of an optional ability returns when
	// the queue lacks it (Delivery.Snooze on a queue that is no Snoozer).
	// It wraps errors.ErrUnsupported, so either one matches.
	ErrUnsupported = fmt.Errorf("queue: %w", errors.ErrUnsupported)
)
