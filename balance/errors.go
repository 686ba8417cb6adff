package balance

import "errors"

// Errors returned by balancers. Test with errors.Is; returned errors wrap
// these with the offending value.
var (
	ErrNoBackend      = errors.New("balance: no backend available")
	ErrInvalidBackend = errors.New("balance: invalid backend")
	ErrInvalidConfig  = errors.New("balance: invalid configuration")
)
