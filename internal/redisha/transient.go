package redisha

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// transientPrefixes start the error replies of a server that cannot serve a call now
// but will: loading its dataset (LOADING), a replica not yet promoted or an old
// master demoted (READONLY, MASTERDOWN, NOREPLICAS), a busy script (BUSY), a blocked
// call cut by a role change (UNBLOCKED), a full server, and on a Cluster a slot that
// moved (MOVED, ASK: go-redis follows a few redirections, then returns them), is
// being migrated (TRYAGAIN) or a cluster without quorum (CLUSTERDOWN).
var transientPrefixes = []string{
	"LOADING", "READONLY", "MASTERDOWN", "NOREPLICAS", "BUSY", "UNBLOCKED",
	"ERR max number of clients", "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN",
}

// Transient reports whether err, from a call to Redis, passes on its own: the
// connection failed (refused, reset, EOF, timed out, no connection to be had from the
// pool), or the server answered one of the replies of a switch, also when a script
// met it (go-redis reports "ERR Error running script ...: -READONLY ..."). Anything
// else (a closed client, a done context, a script's own error, WRONGTYPE, NOPERM) is
// the same on the next try.
func Transient(err error) bool {
	if errors.Is(err, errReadReplica) {
		return true
	}
	if err == nil || errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if redis.IsReadOnlyError(err) || redis.IsLoadingError(err) || redis.IsMasterDownError(err) ||
		redis.IsClusterDownError(err) || redis.IsTryAgainError(err) || redis.IsNoReplicasError(err) ||
		redis.IsMaxClientsError(err) {
		return true
	}
	if _, ok := redis.IsMovedError(err); ok {
		return true
	}
	if _, ok := redis.IsAskError(err); ok {
		return true
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		msg := reply.Error()
		if strings.Contains(msg, "cannot be used with replica instances") {
			return true // WAIT sent to a node demoted since the client looked
		}
		for _, p := range transientPrefixes {
			if strings.HasPrefix(msg, p) || strings.Contains(msg, ": -"+p+" ") {
				return true
			}
		}
		return false
	}
	return connection(err)
}

// connection reports a failure of the connection itself rather than a reply.
func connection(err error) bool {
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrPoolExhausted)
}
