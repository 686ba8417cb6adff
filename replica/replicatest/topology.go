package replicatest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scaleout/scaleout/replica"
)

// Topology is an in-memory primary with replicas, for tests of code that
// routes through package replica: each node has a *sql.DB (an in-memory
// driver) whose every statement answers one row holding the node's name,
// so a test can see where a statement ran; and the Topology is the
// replica.Probe that reports the roles, lags and failures the test sets.
//
// Replication is simulated by positions: every Exec on a primary advances
// the topology's position, and a replica follows at once unless Paused.
// Lag is whatever SetLag says (a paused replica does not lag by itself);
// a replica given a lag reports a position one write short of the one it
// has, as a lagging server would, so that the Router's bound of a lag by
// the primary's positions (replica.State.Lag) takes nothing off the lag a
// test set unless later writes have reached the replica.
//
// The Topology probes a node the way a real probe does, by a query
// through the replica.Querier it is given (a pool, a *sql.Conn or a
// transaction): the node that answers is the node probed. So a probe
// fails as the node's statements do (SetDown), takes as long as they do
// (SetLatency), and needs a connection as they do (SetDialLatency).
// Probe queries are not listed by Served.
//
// A Topology is safe for concurrent use. tb.Cleanup closes its pools, so
// their goroutines end inside a testing/synctest bubble too. tb may be nil
// outside a test (in an Example): the caller then Closes the Topology, and
// a node name that is not in it panics instead of failing the test.
type Topology struct {
	t       testing.TB
	mu      sync.Mutex
	nodes   []*node
	byName  map[string]*node
	written uint64 // position of the latest write on a primary
}

// writeSize is how far one write moves the position: about the WAL a
// small PostgreSQL transaction takes, so that a replica one write behind
// lacks more than the Router's allowance for a page header.
const writeSize = 100

type node struct {
	name string
	db   *sql.DB

	// Guarded by Topology.mu.
	role       replica.Role
	lag        time.Duration
	down       bool
	latency    time.Duration // added to every statement
	dial       time.Duration // added to opening a connection
	conns      int           // connections opened
	detached   bool
	paused     bool
	position   uint64 // a replica's applied position
	generation uint64
	served     []string
}

var _ replica.PositionProbe = (*Topology)(nil)

// New returns a Topology whose first node is the primary (generation 1)
// and the others its replicas, all up, caught up and without lag.
func New(tb testing.TB, primary string, replicas ...string) *Topology {
	// Positions start at 1, so that a lagging replica has one before it.
	t := &Topology{t: tb, byName: map[string]*node{}, written: 1}
	for i, name := range append([]string{primary}, replicas...) {
		if t.byName[name] != nil || name == "" {
			t.fatalf("replicatest: node names must be unique and non-empty: %q", name)
		}
		n := &node{name: name, role: replica.RoleReplica, position: t.written}
		if i == 0 {
			n.role, n.generation = replica.RolePrimary, 1
		}
		n.db = sql.OpenDB(connector{t: t, n: n})
		t.nodes = append(t.nodes, n)
		t.byName[name] = n
	}
	if tb != nil {
		tb.Cleanup(func() { _ = t.Close() })
	}
	return t
}

func (t *Topology) fatalf(format string, args ...any) {
	if t.t == nil {
		panic(fmt.Sprintf(format, args...))
	}
	t.t.Helper()
	t.t.Fatalf(format, args...)
}

// Nodes returns the nodes for replica.New, in the order given to New,
// with their current roles declared.
func (t *Topology) Nodes() []replica.Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]replica.Node, len(t.nodes))
	for i, n := range t.nodes {
		out[i] = replica.Node{Name: n.name, DB: n.db, Role: n.role}
	}
	return out
}

// DB returns the pool of the named node.
func (t *Topology) DB(name string) *sql.DB { return t.node(name).db }

func (t *Topology) node(name string) *node {
	n, ok := t.byName[name]
	if !ok {
		t.fatalf("replicatest: no node %q", name)
	}
	return n
}

func (t *Topology) set(name string, f func(n *node)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(t.node(name))
}

// SetLag sets the lag a replica's probes report.
func (t *Topology) SetLag(name string, lag time.Duration) { t.set(name, func(n *node) { n.lag = lag }) }

// SetDown makes a node unreachable (its probes and statements fail as a
// refused connection does), or reachable again.
func (t *Topology) SetDown(name string, down bool) { t.set(name, func(n *node) { n.down = down }) }

// SetLatency makes every statement on a node, probes included, take d
// longer before it runs; a statement whose context ends first fails with
// the context's error, as a query to a slow server does. 0 removes it.
func (t *Topology) SetLatency(name string, d time.Duration) {
	t.set(name, func(n *node) { n.latency = d })
}

// SetDialLatency makes opening a connection to a node take d longer (a
// distant or TLS server); a connection whose context ends first fails
// with the context's error. Connections already open are not slowed.
func (t *Topology) SetDialLatency(name string, d time.Duration) {
	t.set(name, func(n *node) { n.dial = d })
}

// SetDetached makes a replica report that it receives no changes.
func (t *Topology) SetDetached(name string, detached bool) {
	t.set(name, func(n *node) { n.detached = detached })
}

// Pause stops a replica from applying writes, as pg_wal_replay_pause()
// does; Resume catches it up.
func (t *Topology) Pause(name string) { t.set(name, func(n *node) { n.paused = true }) }

// Resume undoes Pause.
func (t *Topology) Resume(name string) {
	t.set(name, func(n *node) { n.paused, n.position = false, t.written })
}

// Promote makes a node a primary with a generation above every other
// node's, as pg_promote() does. The old primary keeps claiming the role
// until the test sets it down or demotes it.
func (t *Topology) Promote(name string) { t.makePrimary(name, 1) }

// Claim makes a node a primary of the same generation as the highest,
// as a peer in a master-master topology is.
func (t *Topology) Claim(name string) { t.makePrimary(name, 0) }

// makePrimary makes a node a primary whose generation is the highest so
// far plus above.
func (t *Topology) makePrimary(name string, above uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var gen uint64
	for _, n := range t.nodes {
		gen = max(gen, n.generation)
	}
	n := t.node(name)
	n.role, n.generation, n.lag, n.paused, n.detached = replica.RolePrimary, gen+above, 0, false, false
}

// Demote makes a node a replica that follows the current primary.
func (t *Topology) Demote(name string) {
	t.set(name, func(n *node) { n.role, n.generation, n.position = replica.RoleReplica, 0, t.written })
}

// Connections returns how many connections to the named node have been
// opened so far, by its pool.
func (t *Topology) Connections(name string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.node(name).conns
}

// Served returns the statements the named node has run, oldest first.
func (t *Topology) Served(name string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.node(name).served)
}

// Close closes every node's pool; t.Cleanup calls it.
func (t *Topology) Close() error {
	for _, n := range t.nodes {
		_ = n.db.Close()
	}
	return nil
}

// probeStatement is the query a probe sends: the driver answers it like
// any other with the node's name, without recording it as served.
const probeStatement = "/* replicatest: probe */ SELECT node"

// Probe implements replica.Probe: it asks q which node it reaches, and
// reports the state the test set for that node.
func (t *Topology) Probe(ctx context.Context, q replica.Querier) (replica.State, error) {
	n, err := t.probed(ctx, q)
	if err != nil {
		return replica.State{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st := replica.State{Role: n.role, Generation: n.generation, Position: t.written}
	if n.role == replica.RoleReplica {
		st.Lag, st.Detached, st.Position, st.Generation = n.lag, n.detached, n.position, 0
		if n.lag > 0 {
			st.Position--
		}
	}
	return st, nil
}

// probed returns the node q reaches, by asking it.
func (t *Topology) probed(ctx context.Context, q replica.Querier) (*node, error) {
	var name string
	if err := q.QueryRowContext(ctx, probeStatement).Scan(&name); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.byName[name]
	if !ok || name == "" {
		return nil, fmt.Errorf("replicatest: the probed connection is not to a node of this topology")
	}
	return n, nil
}

// WritePosition implements replica.PositionProbe.
func (t *Topology) WritePosition(ctx context.Context, q replica.Querier) (uint64, error) {
	if _, err := t.probed(ctx, q); err != nil {
		return 0, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.written, nil
}

// wait sleeps d, or fails with ctx's error if it ends first.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func refused(n *node) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: fakeAddr(n.name), Err: syscall.ECONNREFUSED}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

// run records a statement on n, after n's latency, failing when n is
// down or when a replica is asked to write.
func (t *Topology) run(ctx context.Context, n *node, query string, write bool) error {
	t.mu.Lock()
	latency := n.latency
	t.mu.Unlock()
	if err := wait(ctx, latency); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if n.down {
		return refused(n)
	}
	if write && n.role != replica.RolePrimary {
		return fmt.Errorf("replicatest: %s is a replica and cannot run %q", n.name, query)
	}
	if query != probeStatement {
		n.served = append(n.served, query)
	}
	if write {
		t.written += writeSize
		for _, r := range t.nodes {
			if r.role == replica.RoleReplica && !r.paused {
				r.position = t.written
			}
		}
	}
	return nil
}

// The driver: a connection per pool connection, statements answered from
// the node.

type connector struct {
	t *Topology
	n *node
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	c.t.mu.Lock()
	dial := c.n.dial
	c.t.mu.Unlock()
	if err := wait(ctx, dial); err != nil {
		return nil, err
	}
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	if c.n.down {
		return nil, refused(c.n)
	}
	c.n.conns++
	return &conn{c}, nil
}

func (c connector) Driver() driver.Driver { return drv{} }

type drv struct{}

func (drv) Open(string) (driver.Conn, error) {
	return nil, fmt.Errorf("replicatest: open pools through Topology")
}

type conn struct{ c connector }

func (c *conn) Prepare(query string) (driver.Stmt, error) { return &stmt{c, query}, nil }
func (c *conn) Close() error                              { return nil }
func (c *conn) Begin() (driver.Tx, error)                 { return c.BeginTx(context.Background(), driver.TxOptions{}) }

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.c.t.run(ctx, c.c.n, "BEGIN", !opts.ReadOnly); err != nil {
		return nil, err
	}
	return tx{}, nil
}

// IsValid lets database/sql drop connections to a node that went down.
func (c *conn) IsValid() bool {
	c.c.t.mu.Lock()
	defer c.c.t.mu.Unlock()
	return !c.c.n.down
}

func (c *conn) ExecContext(ctx context.Context, query string, _ []driver.NamedValue) (driver.Result, error) {
	if err := c.c.t.run(ctx, c.c.n, query, true); err != nil {
		return nil, err
	}
	return driver.RowsAffected(1), nil
}

func (c *conn) QueryContext(ctx context.Context, query string, _ []driver.NamedValue) (driver.Rows, error) {
	write := query != probeStatement && !replica.ReadOnly(query)
	if err := c.c.t.run(ctx, c.c.n, query, write); err != nil {
		return nil, err
	}
	return &rows{name: c.c.n.name}, nil
}

type tx struct{}

func (tx) Commit() error   { return nil }
func (tx) Rollback() error { return nil }

type stmt struct {
	c     *conn
	query string
}

func (s *stmt) Close() error  { return nil }
func (s *stmt) NumInput() int { return -1 }
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.c.ExecContext(context.Background(), s.query, nil)
}
func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.c.QueryContext(context.Background(), s.query, nil)
}

// rows is one row of one column: the serving node's name.
type rows struct {
	name string
	done bool
}

func (r *rows) Columns() []string { return []string{"node"} }
func (r *rows) Close() error      { return nil }
func (r *rows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = r.name
	return nil
}
