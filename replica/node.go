package replica

import (
	"database/sql"
	"fmt"
	"time"
)

// Role is what a database node does in the topology.
type Role uint8

const (
	RoleUnknown Role = iota // not yet probed, or unreachable
	RolePrimary             // accepts writes
	RoleReplica             // read-only copy of a primary
)

func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleReplica:
		return "replica"
	default:
		return "unknown"
	}
}

// Node is one database server of the topology.
type Node struct {
	// Name identifies the node in Status, errors and the balancer; it must
	// be unique and non-empty. It is shown to operators, so do not put a
	// password-bearing DSN here.
	Name string
	// DB is the node's connection pool. The Router uses it but does not
	// own it: Close leaves it open.
	DB *sql.DB
	// Role is the declared role: used until the first probe answers, and
	// always when Config.Probe is nil (a static topology).
	Role Role
	// Weight and Zone are passed to the balancer (balance.Backend) for
	// weighted and zone-aware strategies.
	Weight int
	Zone   string
}

// State is what one probe learned about a node.
type State struct {
	Role Role
	// Lag is how far a replica's data is behind its primary's: the age of
	// the newest change it has applied, while it has changes it has not
	// applied yet; 0 when it has applied all it received. With a
	// PositionProbe the Router lowers it to the time since the latest
	// primary probe whose position the replica has passed.
	Lag time.Duration
	// Detached marks a replica that is not receiving changes from a
	// primary (PostgreSQL: no streaming WAL receiver; MySQL: the I/O or
	// SQL thread stopped). Its Lag cannot tell how stale it is, so while a
	// primary is up it serves no reads.
	Detached bool
	// Position is the node's place in the change stream: for a primary
	// the position of its latest write, for a replica the position it has
	// applied (PostgreSQL: an LSN). 0 when the probe cannot tell.
	Position uint64
	// Generation orders primaries: when several nodes claim to be primary
	// (an old primary came back after a promotion), the one with the
	// highest Generation wins and the others are fenced off (PostgreSQL:
	// the timeline, which every promotion increments). 0 when unknown.
	Generation uint64
}

// NodeStatus is the Router's current view of one node.
type NodeStatus struct {
	Name  string
	State State // from the latest successful probe
	// Healthy: the node answers its probes (or, without a Probe, was not
	// seen failing).
	Healthy bool
	// Serving: the node is the primary in use, or a replica that gets
	// reads.
	Serving bool
	// Fenced: the node claims to be primary but is not the one in use:
	// another claimant has a higher Generation, or (without a
	// WriteSharder) is preferred among equals. It gets nothing.
	Fenced bool
	// LastErr is the latest probe failure, nil after a success.
	LastErr error
	// ProbedAt is when the latest successful probe was sent.
	ProbedAt time.Time
}

func (s NodeStatus) String() string {
	return fmt.Sprintf("%s: %s healthy=%t serving=%t lag=%v", s.Name, s.State.Role, s.Healthy, s.Serving, s.State.Lag)
}
