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
	// ErrNoSession: a context function (RenewID, Login, Destroy) was
	// called outside a handler wrapped by Manager.LoadAndSave.
	ErrNoSession = errors.New("session: no session in the context (is the handler wrapped by Manager.LoadAndSave?)")
)

// CheckID returns ErrInvalidID for an ID a store must refuse: empty, or
// longer than MaxIDLength.
func CheckID(id string) error {
	if id == "" || len(id) > MaxIDLength {
		return ErrInvalidID
	}
	return nil
}
