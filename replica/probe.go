package replica

import (
	"context"
	"database/sql"
)

// A Querier runs a query: *sql.DB, *sql.Conn and *sql.Tx are Queriers.
// The Router probes each node over a connection of its own (a *sql.Conn),
// so that a probe neither waits for a pool saturated by traffic nor pays
// for a new connection every round.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ Querier = (*sql.DB)(nil)
	_ Querier = (*sql.Conn)(nil)
)

// A Probe asks one database node what it is (primary or replica) and, for
// a replica, how far behind it is: the lag check and the role check a
// promotion needs, in one round trip.
//
// The Router calls it on every node each Config.ProbeInterval,
// concurrently, with q the node's probe connection: a *sql.Conn taken
// from the node's pool (Node.DB) for probes alone, kept across rounds,
// replaced after any failed probe and given back to the pool by
// Router.Close. ctx is bounded by Config.ProbeTimeout, which counts the
// queries only (opening the connection is bounded by
// Config.ConnectTimeout), and ProbedNode(ctx) names the node. An error
// counts as a failed probe. Rounds may overlap (Router.Probe beside the
// periodic round): the overlapping probe of a node then gets a connection
// of its own, so a Probe never shares q with another call.
//
// Implementations: PostgreSQL and MySQL. A Probe must be safe for
// concurrent use, and must not keep q after it returns.
type Probe interface {
	Probe(ctx context.Context, q Querier) (State, error)
}

// A PositionProbe is a Probe that can also tell a primary's current write
// position, so that read-your-writes can send a read to any replica that
// has applied the reader's last write (State.Position at least this)
// instead of to the primary for a whole window. PostgreSQL is one.
type PositionProbe interface {
	Probe
	// WritePosition returns the position that includes every write the
	// primary has acknowledged so far. The Router calls it on the
	// primary's pool (Node.DB) after a tracked write.
	WritePosition(ctx context.Context, q Querier) (uint64, error)
}

// probedNodeKey carries the name of the node a Probe is called on.
type probedNodeKey struct{}

// ProbedNode returns the name of the node the Router is probing, from the
// context it gives a Probe: a stable key for what a Probe remembers of a
// node between rounds, which the connection is not (it is replaced after
// a failure). ok is false outside a Router's probe.
func ProbedNode(ctx context.Context) (name string, ok bool) {
	name, ok = ctx.Value(probedNodeKey{}).(string)
	return name, ok
}

func withProbedNode(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, probedNodeKey{}, name)
}
