package replica

import (
	"context"
	"database/sql"
)

// A Probe asks one database node what it is (primary or replica) and, for
// a replica, how far behind it is: the "LagProbe", and the role
// check a promotion needs, in one round trip. The Router calls it on
// every node each Config.ProbeInterval, concurrently, with a context
// bounded by Config.ProbeTimeout; an error counts as a failed probe.
//
// Implementations: PostgreSQL and MySQL. A Probe must be safe for
// concurrent use.
type Probe interface {
	Probe(ctx context.Context, db *sql.DB) (State, error)
}

// A PositionProbe is a Probe that can also tell a primary's current write
// position, so that read-your-writes can send a read to any replica that
// has applied the reader's last write (State.Position at least this)
// instead of to the primary for a whole window. PostgreSQL is one.
type PositionProbe interface {
	Probe
	// WritePosition returns the position that includes every write the
	// primary has acknowledged so far.
	WritePosition(ctx context.Context, db *sql.DB) (uint64, error)
}
