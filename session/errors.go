package session

import "errors"

// Errors of this package; stores wrap their client's errors with context
// and translate "not found" into found == false, never into an error.
var (
	ErrConflict      = errors.New("session: saved concurrently")
	ErrInvalidID     = errors.New("session: invalid session ID")
	ErrInvalidConfig = errors.New("session: invalid configuration")
	ErrTooLarge      = errors.New("session: data too large for the store")
	ErrClosed        = errors.New("session: store closed")
	// ErrNoSession: a function that changes the session (Put, Update,
	// Remove, Clear, Login, RenewID, Rotate, SetLifetime, Destroy) or
	// Manager.Commit was given a context without a session: one not from
	// a handler wrapped by Manager.LoadAndSave, nor from Manager.Load.
	ErrNoSession = errors.New("session: no session in the context (is the handler wrapped by Manager.LoadAndSave?)")
	// ErrOutcomeUnknown: a commit's write failed in a way that may have
	// applied it (a lost reply), and so many commits of the session
	// followed before the Manager could read it back that it cannot tell
	// whether its own is among them. The request gets the error rather
	// than risk applying its changes twice.
	ErrOutcomeUnknown = errors.New("session: commit outcome unknown after a lost reply")
	// ErrUnknownSession: DestroySession was given a handle that names none
	// of the user's sessions (already ended, or never the user's).
	ErrUnknownSession = errors.New("session: no such session of the user")
)

// CheckID returns ErrInvalidID for an ID a store must refuse: empty, or
// longer than MaxIDLength.
func CheckID(id string) error {
	if id == "" || len(id) > MaxIDLength {
		return ErrInvalidID
	}
	return nil
}
