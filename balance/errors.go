package balance

import "errors"

// Errors returned by balancers. Test with errors.Is; returned errors wrap
// these with the offending value.
var (
	ErrNoBackend      = errors.New("balance: no backend available")
	ErrInvalidBackend = errors.New("balance: invalid backend")
	ErrInvalidConfig  = errors.New("balance: invalid configuration")
	// ErrAlreadyRunning is what Run returns at once when the same Health,
	// DNS or LoadProber is already running: each runs one loop at a time.
	ErrAlreadyRunning = errors.New("balance: already running")
	// ErrClosed is what a closed Health returns from Update and Run.
	ErrClosed = errors.New("balance: closed")
	// ErrAborted, passed to Choice.Done (or wrapped in the error passed),
	// reports a request its caller abandoned: the client went away or sent
	// a broken body. It releases the Choice (in-flight counts) but counts
	// neither as a failure nor as a success of the backend, so that
	// clients cannot get a healthy backend ejected, nor a failing one kept.
	ErrAborted = errors.New("balance: request aborted by its caller")
)
