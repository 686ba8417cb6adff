package replica

import "errors"

// Errors returned by the router. Test with errors.Is; returned errors wrap
// these with the detail.
var (
	// ErrNoPrimary: no node is known to accept writes right now (the
	// primary is down and no replica has been promoted yet). Writes fail
	// with it at once instead of waiting on a dead server.
	ErrNoPrimary = errors.New("replica: no primary available")
	// ErrNoReplica: no node may serve this read (Config.StrictReads is set
	// and no replica is fit, or no node is reachable at all).
	ErrNoReplica = errors.New("replica: no node can serve the read")
	// ErrInvalidConfig: New was given an unusable Config or node list.
	ErrInvalidConfig = errors.New("replica: invalid configuration")
	// ErrInvalidMark: Mark.UnmarshalText was given a malformed mark.
	ErrInvalidMark = errors.New("replica: invalid mark")
	// ErrClosed: the Router was closed.
	ErrClosed = errors.New("replica: router closed")
)
