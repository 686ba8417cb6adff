package queue

import "time"

// A JobID names a job in its queue: "<queue>~<name>" (FormatID), where
// the name is Job.ID when the caller chose one, else chosen by the queue.
// IDs carry the queue's name, so Status, Wait and Cancel need nothing
// else, and the same Job.ID in two queues names two jobs. An ID is made
// of letters, digits and ".-_:~" only, so it goes into a URL path segment
// or a log line as it is. ParseID splits one; it and the queues also take
// "<queue>/<name>", the same ID with a slash for a separator.
type JobID string

// DefaultQueue is the queue of a Job whose Queue is empty.
const DefaultQueue = "default"

// Defaults of Job fields.
const (
	DefaultMaxAttempts = 20
	DefaultRetention   = 24 * time.Hour
	DefaultMaxPayload  = 512 << 10
)

// A Job is a unit of background work. Only Type is required.
type Job struct {
	// Queue names the queue; default DefaultQueue. Letters, digits and
	// ".-_:" only, at most 100 bytes.
	Queue string
	// Type selects the handler.
	Type string
	// Payload is the handler's input, at most the queue's MaxPayload
	// bytes (default DefaultMaxPayload).
	Payload []byte
	// ID, when set, names the job instead of a random ID, and makes
	// Enqueue idempotent: enqueueing the same Type and Payload under an ID
	// that exists (pending, or ended within its Retention) returns the
	// existing job's ID and a nil error without enqueueing anything; a
	// different Type or Payload under it is ErrDuplicate. Set it to
	// something the caller can compute again (an order number, a request's
	// idempotency key) to retry an Enqueue whose outcome is unknown. Same
	// alphabet as Queue.
	ID string

	// Priority orders ready jobs of one queue: higher first; jobs of
	// equal priority in the order they became ready. 0 to 9.
	Priority int
	// RunAt, when in the future, delays the job until then.
	RunAt time.Time

	// MaxAttempts bounds deliveries that end in failure or an expired
	// lease; then the job is dead. Default DefaultMaxAttempts.
	MaxAttempts int
	// Timeout bounds one attempt in the Worker; 0 means the Worker's.
	Timeout time.Duration
	// Retention keeps the job's status and result after it ended; default
	// DefaultRetention.
	Retention time.Duration

	// UniqueKey, with UniqueFor, makes the job unique: while the key is
	// held (from enqueue until UniqueFor has passed or the job ended),
	// enqueueing another job with the same key in the same queue answers
	// the first job's ID with ErrDuplicate.
	UniqueKey string
	UniqueFor time.Duration

	// Headers carry metadata from the code that enqueues to the handler
	// that runs the job, beside the payload: a W3C traceparent and
	// tracestate, a request ID, a tenant. The queue stores them with the
	// job and hands them to every delivery (Delivery.Job.Headers) and to
	// Status (JobInfo.Headers); Worker middleware reads them. The map is a
	// propagation carrier as it is (OpenTelemetry's propagation.MapCarrier
	// is a map[string]string). Keys are case-sensitive, 1 to
	// MaxHeaderKey bytes of letters, digits and "-_."; lowercase keys
	// ("traceparent", "request-id") match what propagators write. Values
	// are valid UTF-8. Keys and values together are at most
	// MaxHeaderBytes (ErrHeadersTooLarge); a bad key or value is
	// ErrInvalidJob. An Enqueue answered by an existing job of the same
	// ID (a retry) keeps the first job's headers.
	Headers map[string]string
}

// Bounds of Job.Headers: headers travel with every delivery, so they are
// for small metadata, not data (which belongs in the payload).
const (
	// MaxHeaderBytes bounds the sum of the lengths of a job's header keys
	// and values.
	MaxHeaderBytes = 8 << 10
	// MaxHeaderKey bounds the length of one header key.
	MaxHeaderKey = 64
)

// State is where a job is in its life.
type State string

// States of a job. Done, Dead and Canceled are final.
const (
	StateScheduled State = "scheduled" // waiting for RunAt or a retry's backoff
	StateReady     State = "ready"     // waiting for a worker
	StateActive    State = "active"    // leased to a worker
	StateDone      State = "done"
	StateDead      State = "dead" // attempts spent or a permanent failure
	StateCanceled  State = "canceled"
)

// Final reports whether the job has ended.
func (s State) Final() bool { return s == StateDone || s == StateDead || s == StateCanceled }

// JobInfo is what Status and Wait report.
type JobInfo struct {
	ID       JobID
	Queue    string
	Type     string
	State    State
	Payload  []byte
	Result   []byte // set by Ack
	Attempt  int    // deliveries so far
	LastErr  string // the last failure's message (a panic's value, not its stack)
	Priority int
	Headers  map[string]string // Job.Headers, nil when it had none

	EnqueuedAt time.Time
	RunAt      time.Time // next time it may run, for scheduled jobs
	StartedAt  time.Time // the last delivery
	EndedAt    time.Time
}
