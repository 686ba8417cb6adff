// Package memdb stands in for PostgreSQL in the web farm demo when no
// database is given: a Cluster is an in-memory primary with read replicas,
// each a *sql.DB over an in-process database/sql driver, replicating
// asynchronously, with a replica.PositionProbe that reads roles, lag and
// positions from the in-memory state. The farm's code is then the same
// with memdb as with PostgreSQL (pgx) through package replica.
//
// It is not a SQL database. Its data is named tables of text keys and
// values, and it runs only these statements, with the text PostgreSQL
// runs too (keywords in any case, any whitespace, an optional trailing
// semicolon; <t> a table name, optionally schema-qualified, folded to
// lower case; $1 and $2 placeholders bound to string or []byte values):
//
//	CREATE TABLE IF NOT EXISTS <t> (k text PRIMARY KEY, v text NOT NULL)
//	DROP TABLE IF EXISTS <t>
//	SELECT v FROM <t> WHERE k = $1
//	SELECT count(*) FROM <t>
//	SELECT k, v FROM <t> ORDER BY k
//	INSERT INTO <t> (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v
//	DELETE FROM <t> WHERE k = $1
//	SELECT pg_is_in_recovery()
//
// Any other statement fails with an error that quotes it. Errors are
// *Error values carrying PostgreSQL's SQLSTATE and message: a write on a
// replica fails with "cannot execute INSERT in a read-only transaction",
// a read of a table a replica has not received yet with
// "relation \"t\" does not exist".
//
// Replication: every write that changes something on the primary is a
// commit with the next sequence number (the position the Probe reports);
// each replica applies the commits in order, each no earlier than its
// commit time plus Config.ReplicationDelay. Replicas apply what is due
// whenever the Cluster is used (a statement or a probe on any node), so
// there is no background goroutine and the timing is exact under
// testing/synctest. Kill makes a node fail like a server that refuses
// connections (a killed replica applies nothing), Revive brings it back
// (a revived replica catches up at once with what is due).
//
// Transactions are minimal: statements inside one apply at once, Commit
// does nothing, and Rollback fails after a write, which it cannot undo.
package memdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/scaleout/scaleout/replica"
)

// Config configures a Cluster. Zero values mean the documented defaults.
type Config struct {
	// Replicas is the number of replicas; 0 means 2, a negative number
	// none.
	Replicas int
	// Latency is added to every statement and probe, to make the database
	// "slow"; default 0.
	Latency time.Duration
	// ReplicationDelay is how long after a commit on the primary a
	// replica applies it; default 0, at once.
	ReplicationDelay time.Duration
}

// Cluster is an in-memory primary with replicas, each a *sql.DB, the
// replicas applying the primary's commits asynchronously. It is safe for
// concurrent use.
type Cluster struct {
	cfg    Config
	nodes  []*node
	byName map[string]*node
	byDB   map[*sql.DB]*node

	mu     sync.Mutex
	seq    uint64  // sequence number of the latest commit
	log    []entry // commits base+1 … seq, kept until every replica applied them
	base   uint64
	closed bool
}

// node is one server of the cluster.
type node struct {
	c    *Cluster
	name string
	role replica.Role
	db   *sql.DB

	// Guarded by Cluster.mu.
	tables  map[string]map[string]string
	applied uint64 // sequence number of the latest commit applied
	down    bool
}

// entry is one commit in the replication log.
type entry struct {
	at time.Time
	op op
}

// op is a change to the tables.
type op struct {
	kind        kind
	table, k, v string
}

// NewCluster returns a cluster named name ("db" when empty): a primary
// named "<name>-primary" and replicas "<name>-replica-1", … , empty and
// up. Close it when done.
func NewCluster(name string, cfg Config) *Cluster {
	if name == "" {
		name = "db"
	}
	switch {
	case cfg.Replicas == 0:
		cfg.Replicas = 2
	case cfg.Replicas < 0:
		cfg.Replicas = 0
	}
	cfg.Latency = max(cfg.Latency, 0)
	cfg.ReplicationDelay = max(cfg.ReplicationDelay, 0)
	c := &Cluster{cfg: cfg, byName: map[string]*node{}, byDB: map[*sql.DB]*node{}}
	for i := range cfg.Replicas + 1 {
		n := &node{c: c, name: name + "-primary", role: replica.RolePrimary, tables: map[string]map[string]string{}}
		if i > 0 {
			n.name, n.role = fmt.Sprintf("%s-replica-%d", name, i), replica.RoleReplica
		}
		n.db = sql.OpenDB(connector{n})
		c.nodes = append(c.nodes, n)
		c.byName[n.name] = n
		c.byDB[n.db] = n
	}
	return c
}

// Nodes returns the nodes for replica.New, the primary first, with their
// roles declared.
func (c *Cluster) Nodes() []replica.Node {
	out := make([]replica.Node, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = replica.Node{Name: n.name, DB: n.db, Role: n.role}
	}
	return out
}

// Kill makes the named node unreachable: its statements, new connections
// and probes fail as a refused connection does (a *net.OpError wrapping
// syscall.ECONNREFUSED), and a replica stops applying commits. An unknown
// name does nothing.
func (c *Cluster) Kill(name string) { c.setDown(name, true) }

// Revive undoes Kill; a replica catches up with the commits due.
func (c *Cluster) Revive(name string) { c.setDown(name, false) }

func (c *Cluster) setDown(name string, down bool) {
	n := c.byName[name]
	if n == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n.down = down
	c.advance(time.Now())
}

// Close closes the nodes' pools; statements and probes fail afterwards.
func (c *Cluster) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	var errs []error
	for _, n := range c.nodes {
		errs = append(errs, n.db.Close())
	}
	return errors.Join(errs...)
}

// advance has every live replica apply the commits due at now, and drops
// from the log those every replica applied. c.mu must be held.
func (c *Cluster) advance(now time.Time) {
	low := c.seq
	for _, n := range c.nodes[1:] {
		for !n.down && n.applied < c.seq {
			e := c.log[n.applied-c.base]
			if now.Before(e.at.Add(c.cfg.ReplicationDelay)) {
				break
			}
			e.op.apply(n.tables)
			n.applied++
		}
		low = min(low, n.applied)
	}
	if k := int(low - c.base); k > 0 {
		m := copy(c.log, c.log[k:])
		clear(c.log[m:])
		c.log, c.base = c.log[:m], low
	}
}

// lag is how long ago the oldest commit n has not applied was made; 0
// when n has applied them all. c.mu must be held.
func (c *Cluster) lag(n *node, now time.Time) time.Duration {
	if n.applied >= c.seq {
		return 0
	}
	return now.Sub(c.log[n.applied-c.base].at)
}

// Probe returns the replica.PositionProbe of the cluster's pools: it
// reports each node's role, a replica's Lag (the time since the oldest
// commit it has not applied, 0 when caught up) and Position (the
// sequence number of the latest commit it applied; the primary's is its
// latest commit, and its Generation 1), from the in-memory state. A
// probe takes Config.Latency and fails as a statement does on a killed
// node.
func (c *Cluster) Probe() replica.Probe { return probe{c} }

type probe struct{ c *Cluster }

var _ replica.PositionProbe = probe{}

// Probe implements replica.Probe.
func (p probe) Probe(ctx context.Context, q replica.Querier) (replica.State, error) {
	n, err := p.c.reach(ctx, q)
	if err != nil {
		return replica.State{}, err
	}
	defer p.c.mu.Unlock()
	if n.role == replica.RolePrimary {
		return replica.State{Role: replica.RolePrimary, Position: p.c.seq, Generation: 1}, nil
	}
	return replica.State{Role: replica.RoleReplica, Lag: p.c.lag(n, time.Now()), Position: n.applied}, nil
}

// WritePosition implements replica.PositionProbe: the sequence number of
// the primary's latest commit.
func (p probe) WritePosition(ctx context.Context, q replica.Querier) (uint64, error) {
	n, err := p.c.reach(ctx, q)
	if err != nil {
		return 0, err
	}
	defer p.c.mu.Unlock()
	if n.role != replica.RolePrimary {
		return 0, &Error{Code: "55000", Message: "recovery is in progress"}
	}
	return p.c.seq, nil
}

// reach finds q's node, waits the latency and, when the node is up,
// returns with c.mu held and the replicas advanced.
func (c *Cluster) reach(ctx context.Context, q replica.Querier) (*node, error) {
	n := c.nodeOf(q)
	if n == nil {
		return nil, errors.New("memdb: the probed pool is not a node of this cluster")
	}
	if err := n.wait(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if err := n.usable(); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	c.advance(time.Now())
	return n, nil
}

// nodeOf returns the node of a pool, or of a connection taken from one
// (the Router probes on a *sql.Conn of its own); nil when q reaches no
// node of c.
func (c *Cluster) nodeOf(q replica.Querier) *node {
	switch q := q.(type) {
	case *sql.DB:
		return c.byDB[q]
	case *sql.Conn:
		var n *node
		_ = q.Raw(func(dc any) error {
			if mc, ok := dc.(*conn); ok && mc.n.c == c {
				n = mc.n
			}
			return nil
		})
		return n
	}
	return nil
}

// wait fails at once when n is down, else sleeps the latency.
func (n *node) wait(ctx context.Context) error {
	n.c.mu.Lock()
	err := n.usable()
	n.c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if n.c.cfg.Latency <= 0 {
		return nil
	}
	t := time.NewTimer(n.c.cfg.Latency)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// usable fails when n is down or the cluster closed. c.mu must be held.
func (n *node) usable() error {
	switch {
	case n.c.closed:
		return errors.New("memdb: the cluster is closed")
	case n.down:
		return refused(n.name)
	}
	return nil
}

// refused is the error of a connection to a server that is not running.
func refused(name string) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: addr(name), Err: syscall.ECONNREFUSED}
}

type addr string

func (a addr) Network() string { return "tcp" }
func (a addr) String() string  { return string(a) }

// Error is a statement's failure, as PostgreSQL would report it.
type Error struct {
	Code    string // SQLSTATE, such as "42P01" (undefined table)
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("memdb: %s (SQLSTATE %s)", e.Message, e.Code) }

// SQLState returns the SQLSTATE code, as pgx's and lib/pq's errors do.
func (e *Error) SQLState() string { return e.Code }

// The statements.

type kind uint8

const (
	kCreate kind = iota
	kDrop
	kGet
	kCount
	kScan
	kUpsert
	kDelete
	kRecovery
)

// statement is one form memdb runs: its pattern, whose groups are the
// table (when the form has one) then the placeholders' numbers, and, for a
// write, PostgreSQL's name of its command.
type statement struct {
	kind  kind
	re    *regexp.Regexp
	write string
}

func pattern(s string) *regexp.Regexp {
	const (
		table = `([A-Za-z_][A-Za-z0-9_$]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_$]*)?)`
		param = `\$([1-9][0-9]{0,3})`
	)
	s = strings.NewReplacer("<t>", table, "<p>", param).Replace(s)
	return regexp.MustCompile(`(?is)^\s*` + s + `\s*;?\s*$`)
}

var statements = []statement{
	{kCreate, pattern(`CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+<t>\s*\(\s*k\s+text\s+PRIMARY\s+KEY\s*,\s*v\s+text\s+NOT\s+NULL\s*\)`), "CREATE TABLE"},
	{kDrop, pattern(`DROP\s+TABLE\s+IF\s+EXISTS\s+<t>`), "DROP TABLE"},
	{kGet, pattern(`SELECT\s+v\s+FROM\s+<t>\s+WHERE\s+k\s*=\s*<p>`), ""},
	{kCount, pattern(`SELECT\s+count\s*\(\s*\*\s*\)\s+FROM\s+<t>`), ""},
	{kScan, pattern(`SELECT\s+k\s*,\s*v\s+FROM\s+<t>\s+ORDER\s+BY\s+k`), ""},
	{kUpsert, pattern(`INSERT\s+INTO\s+<t>\s*\(\s*k\s*,\s*v\s*\)\s*VALUES\s*\(\s*<p>\s*,\s*<p>\s*\)\s*` +
		`ON\s+CONFLICT\s*\(\s*k\s*\)\s*DO\s+UPDATE\s+SET\s+v\s*=\s*EXCLUDED\s*\.\s*v`), "INSERT"},
	{kDelete, pattern(`DELETE\s+FROM\s+<t>\s+WHERE\s+k\s*=\s*<p>`), "DELETE"},
	{kRecovery, pattern(`SELECT\s+pg_is_in_recovery\s*\(\s*\)`), ""},
}

// parsed is a statement with its table and placeholders.
type parsed struct {
	*statement
	table  string
	params []int // the placeholders' numbers, in order (k, then v)
	inputs int   // the highest placeholder number
}

func parse(query string) (*parsed, error) {
	for i := range statements {
		st := &statements[i]
		m := st.re.FindStringSubmatch(query)
		if m == nil {
			continue
		}
		p := &parsed{statement: st}
		groups := m[1:]
		if st.kind != kRecovery {
			p.table = strings.ToLower(strings.Join(strings.Fields(groups[0]), "")) // "s . t" is s.t
			groups = groups[1:]
		}
		for _, g := range groups {
			n, _ := strconv.Atoi(g) // the pattern allows only 1–9999
			p.params = append(p.params, n)
			p.inputs = max(p.inputs, n)
		}
		return p, nil
	}
	return nil, &Error{Code: "0A000", Message: fmt.Sprintf("unsupported statement %q: memdb runs only the web farm's statements", query)}
}

// arg returns the text bound to placeholder $i.
func (p *parsed) arg(args []driver.NamedValue, i int) (string, error) {
	for _, a := range args {
		if a.Ordinal != i {
			continue
		}
		switch v := a.Value.(type) {
		case string:
			return v, nil
		case []byte:
			return string(v), nil
		case nil:
			return "", &Error{Code: "23502", Message: fmt.Sprintf("null value for $%d: columns k and v of relation %q are not null", i, p.table)}
		default:
			return "", &Error{Code: "22023", Message: fmt.Sprintf("argument $%d is a %T, want a string or []byte", i, v)}
		}
	}
	return "", &Error{Code: "22023", Message: fmt.Sprintf("no argument for $%d", i)}
}

// result is what a statement returns.
type result struct {
	columns   []string
	rows      [][]driver.Value
	affected  int64
	committed bool // a write changed the tables
}

// run runs query on n; readOnly is set inside a read-only transaction.
func (n *node) run(ctx context.Context, query string, args []driver.NamedValue, readOnly bool) (*result, error) {
	p, err := parse(query)
	if err != nil {
		return nil, err
	}
	for _, a := range args {
		if a.Name != "" {
			return nil, &Error{Code: "22023", Message: fmt.Sprintf("named argument %q: memdb takes only $n placeholders", a.Name)}
		}
	}
	if len(args) != p.inputs {
		return nil, &Error{Code: "22023", Message: fmt.Sprintf("statement takes %d arguments, got %d", p.inputs, len(args))}
	}
	vals := make([]string, len(p.params))
	for i, num := range p.params {
		if vals[i], err = p.arg(args, num); err != nil {
			return nil, err
		}
	}
	if err := n.wait(ctx); err != nil {
		return nil, err
	}
	c := n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := n.usable(); err != nil {
		return nil, err
	}
	now := time.Now()
	c.advance(now)
	if p.write != "" {
		if readOnly || n.role != replica.RolePrimary {
			return nil, &Error{Code: "25006", Message: fmt.Sprintf("cannot execute %s in a read-only transaction", p.write)}
		}
		return c.write(p, vals, now)
	}
	if p.kind == kRecovery {
		return &result{columns: []string{"pg_is_in_recovery"}, rows: [][]driver.Value{{n.role != replica.RolePrimary}}}, nil
	}
	t, ok := n.tables[p.table]
	if !ok {
		return nil, undefined(p.table)
	}
	switch p.kind {
	case kGet:
		r := &result{columns: []string{"v"}}
		if v, ok := t[vals[0]]; ok {
			r.rows = append(r.rows, []driver.Value{v})
		}
		return r, nil
	case kCount:
		return &result{columns: []string{"count"}, rows: [][]driver.Value{{int64(len(t))}}}, nil
	default: // kScan
		r := &result{columns: []string{"k", "v"}, rows: make([][]driver.Value, 0, len(t))}
		for _, k := range slices.Sorted(maps.Keys(t)) {
			r.rows = append(r.rows, []driver.Value{k, t[k]})
		}
		return r, nil
	}
}

func undefined(table string) error {
	return &Error{Code: "42P01", Message: fmt.Sprintf("relation %q does not exist", table)}
}

// write runs a write on the primary and, when it changes something,
// commits it to the log. c.mu must be held.
func (c *Cluster) write(p *parsed, vals []string, now time.Time) (*result, error) {
	primary := c.nodes[0]
	o := op{kind: p.kind, table: p.table}
	var affected int64
	switch p.kind {
	case kCreate, kDrop:
		if _, ok := primary.tables[p.table]; ok == (p.kind == kCreate) {
			return &result{}, nil // IF [NOT] EXISTS: nothing to do
		}
	case kUpsert:
		if _, ok := primary.tables[p.table]; !ok {
			return nil, undefined(p.table)
		}
		o.k, o.v, affected = vals[0], vals[1], 1
	case kDelete:
		t, ok := primary.tables[p.table]
		if !ok {
			return nil, undefined(p.table)
		}
		if _, ok := t[vals[0]]; !ok {
			return &result{}, nil
		}
		o.k, affected = vals[0], 1
	}
	o.apply(primary.tables)
	c.seq++
	primary.applied = c.seq
	c.log = append(c.log, entry{at: now, op: o})
	c.advance(now) // with no delay, replicas apply at once
	return &result{affected: affected, committed: true}, nil
}

// apply makes the change o to tables, which the primary checked.
func (o op) apply(tables map[string]map[string]string) {
	switch o.kind {
	case kCreate:
		tables[o.table] = map[string]string{}
	case kDrop:
		delete(tables, o.table)
	case kUpsert:
		if t := tables[o.table]; t != nil {
			t[o.k] = o.v
		}
	case kDelete:
		delete(tables[o.table], o.k)
	}
}

// The driver.

type connector struct{ n *node }

func (c connector) Connect(context.Context) (driver.Conn, error) {
	c.n.c.mu.Lock()
	defer c.n.c.mu.Unlock()
	if err := c.n.usable(); err != nil {
		return nil, err
	}
	return &conn{n: c.n}, nil
}

func (connector) Driver() driver.Driver { return drv{} }

type drv struct{}

func (drv) Open(string) (driver.Conn, error) {
	return nil, errors.New("memdb: open pools through a Cluster")
}

// conn is a connection to a node; database/sql uses it from one
// goroutine at a time.
type conn struct {
	n  *node
	tx *tx // the open transaction, if any
}

var (
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
)

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	p, err := parse(query)
	if err != nil {
		return nil, err
	}
	return &stmt{c: c, query: query, inputs: p.inputs}, nil
}

func (c *conn) Close() error { return nil }

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.tx != nil {
		return nil, errors.New("memdb: a transaction is already open on this connection")
	}
	if err := c.Ping(ctx); err != nil {
		return nil, err
	}
	c.tx = &tx{c: c, readOnly: opts.ReadOnly}
	return c.tx, nil
}

func (c *conn) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.n.c.mu.Lock()
	defer c.n.c.mu.Unlock()
	return c.n.usable()
}

// IsValid lets database/sql drop the connections of a killed node.
func (c *conn) IsValid() bool { return c.Ping(context.Background()) == nil }

func (c *conn) ResetSession(ctx context.Context) error {
	if c.Ping(ctx) != nil {
		return driver.ErrBadConn
	}
	return nil
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	r, err := c.run(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(r.affected), nil
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	r, err := c.run(ctx, query, args)
	if err != nil {
		return nil, err
	}
	return &rows{result: r}, nil
}

func (c *conn) run(ctx context.Context, query string, args []driver.NamedValue) (*result, error) {
	readOnly := c.tx != nil && c.tx.readOnly
	r, err := c.n.run(ctx, query, args, readOnly)
	if err == nil && c.tx != nil && r.committed {
		c.tx.wrote = true
	}
	return r, err
}

// tx is a transaction whose statements applied at once.
type tx struct {
	c        *conn
	readOnly bool
	wrote    bool
}

func (t *tx) Commit() error {
	t.c.tx = nil
	return t.c.Ping(context.Background())
}

func (t *tx) Rollback() error {
	t.c.tx = nil
	if t.wrote {
		return errors.New("memdb: cannot roll back a transaction that wrote: its statements applied at once")
	}
	return nil
}

type stmt struct {
	c      *conn
	query  string
	inputs int
}

var (
	_ driver.StmtExecContext  = (*stmt)(nil)
	_ driver.StmtQueryContext = (*stmt)(nil)
)

func (s *stmt) Close() error  { return nil }
func (s *stmt) NumInput() int { return s.inputs }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.c.ExecContext(ctx, s.query, args)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.c.QueryContext(ctx, s.query, args)
}

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

// rows hands out a result copied under the lock.
type rows struct {
	*result
	next int
}

func (r *rows) Columns() []string { return r.columns }
func (r *rows) Close() error      { return nil }

func (r *rows) Next(dest []driver.Value) error {
	if r.next >= len(r.rows) {
		return io.EOF
	}
	copy(dest, r.rows[r.next])
	r.next++
	return nil
}
