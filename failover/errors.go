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
	// ErrClosed is returned by every method of a closed Elector (Memory,
	// rediselector.Elector) but Close.
	ErrClosed = errors.New("failover: closed")
	// ErrAlreadyRunning is returned at once by Pair.Run while the Pair
	// runs, and by Run while another Run runs on the same Elector.
	ErrAlreadyRunning = errors.New("failover: already running")
)
