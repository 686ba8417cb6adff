package redisqueue

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// transientReplies start the error replies of a server that cannot serve
// a call now but will: one loading its dataset after a restart (LOADING),
// a replica not yet promoted (READONLY, MASTERDOWN, NOREPLICAS), a busy
// script (BUSY), a blocked call cut by a role change (UNBLOCKED), a full
// server (max number of clients), and on a Cluster a slot that moved
// (MOVED, ASK: go-redis follows a few redirections, then returns them), is
// being migrated (TRYAGAIN) or a cluster without quorum (CLUSTERDOWN).
var transientReplies = []string{
	"LOADING", "READONLY", "MASTERDOWN", "NOREPLICAS", "BUSY", "UNBLOCKED",
	"max number of clients", "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN",
}

// transient reports whether err, from a call to Redis, passes on its own:
// the connection failed (reset, EOF, refused, timed out, no connection to
// be had from the pool), or the server answered one of transientReplies.
// Anything else (a closed client, a script error, WRONGTYPE, NOPERM) is the
// same on the next try.
func transient(err error) bool {
	if errors.Is(err, redis.ErrClosed) {
		return false
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		for _, p := range transientReplies {
			if redis.HasErrorPrefix(err, p) {
				return true
			}
		}
		return false
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted)
}

// Bounds of the pause between two tries of a call that met a transient
// error: it doubles from the first to the last.
const (
	retryPauseMin = 25 * time.Millisecond
	retryPauseMax = time.Second
)
