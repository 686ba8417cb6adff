package failover

import "errors"

// Errors of this package.
var (
	ErrNoLeader      = errors.New("failover: no leader")
	ErrLeaseExpired  = errors.New("failover: lease expired before it was renewed")
	ErrLost          = errors.New("failover: leadership lost to another candidate")
	ErrResigned      = errors.New("failover: resigned")
	ErrStaleToken    = errors.New("failover: stale fencing token")
	ErrInvalidConfig = errors.New("failover: invalid configuration")
	ErrClosed        = errors.New("failover: closed")
	// ErrPairRunning is returned by Pair.Run when the Pair already runs.
	ErrPairRunning = errors.New("failover: pair already running")
)
