// Package redisopt checks that a go-redis client lets the library keep its time bounds.
//
// go-redis applies a context's deadline to its sockets only when the client's options
// set ContextTimeoutEnabled; otherwise a call to a server that accepted the connection
// and never answers waits ReadTimeout (3 s by default) on each of its MaxRetries+1
// attempts, whatever the caller's context says. Every bound scaleout documents for a
// Redis-backed primitive (a cache's fail-open timeout, a session store's, an elector's
// renewal before its lease runs out, a queue call's context) rests on the context
// deadline reaching the socket, so every Redis-backed constructor refuses a client that
// ignores it, with an error that names the option to set.
package redisopt

import (
	"errors"

	"github.com/redis/go-redis/v9"
)

// ErrContextTimeouts explains why a client was refused.
var ErrContextTimeouts = errors.New("the go-redis client ignores context deadlines on its sockets, so a hung server would hold each call for ReadTimeout × (MaxRetries+1) whatever its context says: set ContextTimeoutEnabled: true in its redis.Options (ClusterOptions, FailoverOptions, RingOptions, UniversalOptions)")

// Check returns ErrContextTimeouts when c is one of go-redis's clients and its options
// leave ContextTimeoutEnabled false. A client of another type (a wrapper of the
// caller's own) is accepted: its author decides how it treats deadlines.
func Check(c redis.UniversalClient) error {
	var enabled bool
	switch c := c.(type) {
	case *redis.Client:
		enabled = c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		enabled = c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		enabled = c.Options().ContextTimeoutEnabled
	default:
		return nil
	}
	if !enabled {
		return ErrContextTimeouts
	}
	return nil
}
