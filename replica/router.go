package replica

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/observe"
)

// A ReplicaRouter hands out the connection pool a statement should use.
// It learns the topology from Config.Probe, every Config.ProbeInterval,
// and honours every context option (see UsesPrimary, KeyOf and MarkOf for
// their readers). replicatest.Run checks these clauses:
//
//   - Writes go to the primary. Among nodes claiming to be primary, the
//     highest Generation wins; the others are fenced (no writes, no
//     reads), unless a Config.WriteSharder is set: then a write whose
//     context has a key (WithKey) goes to the node named Shard(key), or
//     fails with ErrNoPrimary when that node is down, and a write without
//     a key goes to the preferred primary (the highest Generation, then
//     the first in New's order).
//   - Without a healthy primary (DefaultFailAfter failed probes), Writer
//     fails with ErrNoPrimary at once; a promoted replica takes the writes
//     within one ProbeInterval of the probe that sees it.
//   - Reads spread over every fit replica and never go to the primary
//     while one is fit. A replica is unfit when its probe reports a lag
//     beyond Config.MaxLag (from the next probe on) or after
//     DefaultFailAfter failed probes; it is readmitted after
//     DefaultReadmitAfter good ones. With no fit replica, reads go to the
//     primary.
//   - A UsePrimary context reads the primary. A tracked context (Track,
//     TrackFrom) reads the primary until its Mark.Until, and otherwise a
//     fit replica whose probed Position is at least Mark.Position, or
//     the primary when there is none.
type ReplicaRouter interface {
	// Writer returns the pool of the primary (of ctx's key, with a
	// WriteSharder), or fails with ErrNoPrimary at once when no such
	// primary is known to be up.
	Writer(ctx context.Context) (*sql.DB, error)
	// Reader returns the pool of a node fit to serve a read in ctx: a
	// replica within the lag bound that has the writes ctx must see, or
	// the primary when none is or ctx asks for it (UsePrimary).
	Reader(ctx context.Context) (*sql.DB, error)
}

// Router routes statements over a primary and its replicas, learning the
// topology from the databases themselves. See the package doc.
//
// Choosing the primary: among the healthy nodes that claim to be primary,
// the one with the highest Generation; among equals, the one in use
// before, else the first in the order New was given (so the order states
// the preferred primary of a master-master pair). The others that claim
// to be primary are fenced: they get neither writes nor reads, as an old
// primary that came back after a promotion may hold writes the new one
// never saw. With a Config.WriteSharder every healthy primary takes the
// writes of its keys, and none is fenced.
type Router struct {
	cfg   Config
	nodes []*member
	epoch time.Time // origin of the monotonic nanotimes below

	view atomic.Pointer[view]

	mu      sync.Mutex    // serializes probe rounds' updates and view rebuilds
	changed chan struct{} // closed and replaced when the view changes
	rounds  atomic.Uint64 // probe rounds started
	applied uint64        // the latest round applied, under mu
	trail   primaryTrail  // the primary's recent write positions, under mu

	kick      chan struct{} // a failed query asks for a probe round now
	ready     chan struct{} // closed when the first probe round is in
	readyOnce sync.Once

	// Lifecycle: Close sets closing and closes closed under lifeMu, the
	// lock under which spawn checks closing and adds to wg, so Close
	// cannot return before a goroutine it should wait for has started.
	lifeMu  sync.Mutex
	closing bool
	closed  chan struct{}
	ctx     context.Context // ends with Close, and with it every probe
	stop    context.CancelFunc
	wg      sync.WaitGroup

	classes classCache

	met routerMetrics
	log *slog.Logger
}

var _ ReplicaRouter = (*Router)(nil)

// member is a Node with what the Router knows of it.
type member struct {
	Node

	met nodeMetrics

	// Written under Router.mu by probe rounds.
	state    State
	probed   bool // a probe has succeeded once
	healthy  bool
	fails    int // probes failed in a row
	oks      int // probes succeeded in a row
	lastErr  error
	probedAt time.Time // wall time the latest successful probe was sent
	sentAt   int64     // the same, on the Router's monotonic clock

	// Read by pickers without the lock.
	servingUntil atomic.Int64  // monotonic nanotime until which a read may go here
	position     atomic.Uint64 // State.Position of the latest probe

	// The probe connection, kept between rounds while no probe uses it.
	probeMu   sync.Mutex
	probeConn *sql.Conn
}

// view is an immutable snapshot of the routing decision.
type view struct {
	primary   *member            // preferred primary, nil when none is up
	primaries map[string]*member // every writable primary, for WriteSharder
	replicas  []*member          // replicas the balancer picks among
	readers   map[string]*member // the same, by name
	fenced    map[string]bool
}

// New returns a Router over nodes and starts probing them; call Close to
// stop. Nodes need unique non-empty names and a DB. New does not block:
// with a Probe, a Writer or Reader call made before the first round of
// probes has ended waits for it (up to ConnectTimeout + ProbeTimeout +
// ProbeInterval, or its ctx), rather than failing with ErrNoPrimary for
// want of an answer.
func New(cfg Config, nodes ...Node) (*Router, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%w: no nodes", ErrInvalidConfig)
	}
	r := &Router{
		cfg:     cfg,
		epoch:   time.Now(),
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		ready:   make(chan struct{}),
		closed:  make(chan struct{}),
		log:     cfg.Logger,
		met: routerMetrics{
			fallbacks: observe.NewCounter(cfg.Meter, observe.ReplicaPrimaryFallbacks),
			noPrimary: observe.NewCounter(cfg.Meter, observe.ReplicaNoPrimary),
		},
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.ctx, r.stop = context.WithCancel(context.Background())
	seen := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		switch {
		case n.Name == "":
			return nil, fmt.Errorf("%w: a node has no name", ErrInvalidConfig)
		case seen[n.Name]:
			return nil, fmt.Errorf("%w: duplicate node name %q", ErrInvalidConfig, n.Name)
		case n.DB == nil:
			return nil, fmt.Errorf("%w: node %q has no DB", ErrInvalidConfig, n.Name)
		case n.Weight < 0:
			return nil, fmt.Errorf("%w: node %q has a negative weight", ErrInvalidConfig, n.Name)
		}
		seen[n.Name] = true
		m := &member{Node: n, met: newNodeMetrics(cfg.Meter, n.Name)}
		if cfg.Probe == nil {
			m.state.Role, m.healthy, m.probed = n.Role, true, true
		}
		r.nodes = append(r.nodes, m)
	}
	if s := cfg.WriteSharder; s != nil {
		for _, name := range s.Shards() {
			if !seen[name] {
				return nil, fmt.Errorf("%w: WriteSharder shard %q is not a node", ErrInvalidConfig, name)
			}
		}
	}
	r.mu.Lock()
	err = r.rebuild()
	r.mu.Unlock()
	if err != nil {
		r.stop()
		return nil, err
	}
	if cfg.Probe == nil {
		r.readyOnce.Do(func() { close(r.ready) })
	} else {
		_ = r.spawn(r.probeLoop) // nobody can have closed r yet
	}
	return r, nil
}

// spawn runs fn in a goroutine Close waits for, or fails with ErrClosed
// after Close. Every goroutine of the Router starts here.
func (r *Router) spawn(fn func()) error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.closing {
		return ErrClosed
	}
	r.wg.Go(fn)
	return nil
}

// isClosed reports whether Close has been called.
func (r *Router) isClosed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// now is the Router's monotonic clock.
func (r *Router) now() int64 { return int64(time.Since(r.epoch)) }

// waitReady waits for the first probe round.
func (r *Router) waitReady(ctx context.Context) (*view, error) {
	select {
	case <-r.ready:
	default:
		// The first round lasts ConnectTimeout + ProbeTimeout at most;
		// ProbeInterval is a margin for the goroutines to be scheduled.
		t := time.NewTimer(r.cfg.ConnectTimeout + r.cfg.ProbeTimeout + r.cfg.ProbeInterval)
		defer t.Stop()
		select {
		case <-r.ready:
		case <-t.C:
		case <-r.closed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case <-r.closed:
		return nil, ErrClosed
	default:
	}
	return r.view.Load(), nil
}

// Writer returns the primary's pool; see ReplicaRouter. With a
// WriteSharder and a key in ctx (WithKey), it is the pool of the key's
// primary, or ErrNoPrimary when that one is down.
func (r *Router) Writer(ctx context.Context) (*sql.DB, error) {
	m, err := r.writer(ctx)
	if err != nil {
		return nil, err
	}
	return m.DB, nil
}

func (r *Router) writer(ctx context.Context) (*member, error) {
	m, err := r.writer1(ctx)
	if err != nil {
		if errors.Is(err, ErrNoPrimary) {
			r.met.noPrimary.Inc()
		}
		return nil, err
	}
	m.met.writes.Inc()
	return m, nil
}

func (r *Router) writer1(ctx context.Context) (*member, error) {
	v, err := r.waitReady(ctx)
	if err != nil {
		return nil, err
	}
	if r.cfg.WriteSharder != nil {
		if key, ok := ctx.Value(keyKey{}).(string); ok {
			name := r.cfg.WriteSharder.Shard(key)
			if m := v.primaries[name]; m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("%w: %q, the primary of key %q, is down", ErrNoPrimary, name, key)
		}
	}
	if v.primary == nil {
		return nil, r.noPrimary()
	}
	return v.primary, nil
}

// noPrimary builds ErrNoPrimary with the latest reason a primary failed.
func (r *Router) noPrimary() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.nodes {
		if m.state.Role == RolePrimary && m.lastErr != nil {
			return fmt.Errorf("%w: %s: %v", ErrNoPrimary, m.Name, m.lastErr)
		}
	}
	return ErrNoPrimary
}

// Reader returns the pool of a node fit for a read in ctx; see
// ReplicaRouter and the package doc for the rules.
func (r *Router) Reader(ctx context.Context) (*sql.DB, error) {
	m, c, err := r.reader(ctx)
	if err != nil {
		return nil, err
	}
	c.Done(nil) // the pool's user runs the query: nothing to time
	return m.DB, nil
}

// reader chooses the node for a read. The caller must Done the Choice
// (a zero Choice when the primary serves).
func (r *Router) reader(ctx context.Context) (*member, balance.Choice, error) {
	v, err := r.waitReady(ctx)
	if err != nil {
		return nil, balance.Choice{}, err
	}
	if usesPrimary(ctx) {
		return r.fallback(v, true)
	}
	var need uint64 // the position the read must see; 0: any
	if t := trackerFrom(ctx); t != nil {
		if t.pinned.Load() > 0 || time.Now().UnixNano() < t.windowUntil.Load() {
			return r.fallback(v, true)
		}
		need = t.position.Load()
	}
	if n := len(v.replicas); n > 0 {
		var now int64 // unbounded staleness: every servingUntil is MaxInt64, skip the clock
		if r.cfg.Probe != nil && r.cfg.MaxLag > 0 {
			now = r.now()
		}
		for range n {
			c, err := r.cfg.Balancer.Pick(ctx, "")
			if err != nil {
				if ctx.Err() != nil {
					return nil, c, err
				}
				break
			}
			// The balancer may already hold a newer set than v: check.
			m := v.readers[c.Backend().Addr]
			if m != nil && now < m.servingUntil.Load() && m.position.Load() >= need {
				m.met.reads.Inc()
				return m, c, nil
			}
			c.Done(nil)
		}
	}
	m, c, err := r.fallback(v, need > 0)
	if err == nil {
		r.met.fallbacks.Inc()
	}
	return m, c, err
}

// fallback serves a read on the primary, unless StrictReads forbids it
// and the read does not need the primary for consistency.
func (r *Router) fallback(v *view, needPrimary bool) (*member, balance.Choice, error) {
	if r.cfg.StrictReads && !needPrimary {
		return nil, balance.Choice{}, ErrNoReplica
	}
	if v.primary == nil {
		r.met.noPrimary.Inc()
		return nil, balance.Choice{}, fmt.Errorf("%w: no fit replica and %w", ErrNoReplica, ErrNoPrimary)
	}
	v.primary.met.reads.Inc()
	return v.primary, balance.Choice{}, nil
}

// Status returns the Router's current view of every node, in the order of
// New.
func (r *Router) Status() []NodeStatus {
	v := r.view.Load()
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]NodeStatus, len(r.nodes))
	for i, m := range r.nodes {
		serving := v.primaries[m.Name] == m || (v.readers[m.Name] == m && now < m.servingUntil.Load())
		out[i] = NodeStatus{
			Name: m.Name, State: m.state, Healthy: m.healthy, Serving: serving,
			Fenced: v.fenced[m.Name], LastErr: m.lastErr, ProbedAt: m.probedAt,
		}
	}
	return out
}

// Changed returns a channel that is closed at the next change of the
// routing view (a node taken out or readmitted, a new primary).
func (r *Router) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Close stops the probes, cancelling those under way, waits for the
// Router's goroutines to end, and gives the probe connections back to
// their pools. It closes none of the nodes' pools, which the caller owns;
// calls after Close (or that were waiting for the first probe round) fail
// with ErrClosed, and AutoPromote returns.
func (r *Router) Close() error {
	r.lifeMu.Lock()
	if !r.closing {
		r.closing = true
		close(r.closed)
		r.stop()
	}
	r.lifeMu.Unlock()
	r.wg.Wait()
	r.closeProbeConns()
	return nil
}

// rebuild recomputes the view from the members' state. r.mu must be held.
func (r *Router) rebuild() error {
	old := r.view.Load()
	now := r.now()
	v := &view{readers: map[string]*member{}, primaries: map[string]*member{}, fenced: map[string]bool{}}

	var claimants []*member
	for _, m := range r.nodes {
		if m.healthy && m.state.Role == RolePrimary {
			claimants = append(claimants, m)
		}
	}
	if len(claimants) > 0 {
		best := claimants[0]
		for _, m := range claimants[1:] {
			if m.state.Generation > best.state.Generation ||
				(m.state.Generation == best.state.Generation && old != nil && m == old.primary && best != old.primary) {
				best = m
			}
		}
		v.primary = best
		for _, m := range claimants {
			if r.cfg.WriteSharder != nil {
				v.primaries[m.Name] = m
			} else if m != best {
				v.fenced[m.Name] = true
			}
		}
		if r.cfg.WriteSharder == nil {
			v.primaries[best.Name] = best
		}
	}

	// Replicas: healthy, attached (or nothing to be attached to), and
	// within MaxLag; then the floor.
	var fit, spare []*member
	for _, m := range r.nodes {
		if !m.healthy || m.state.Role != RoleReplica {
			continue
		}
		m.position.Store(m.state.Position)
		switch {
		case r.cfg.MaxLag < 0 || r.cfg.Probe == nil:
			m.servingUntil.Store(math.MaxInt64)
			fit = append(fit, m)
		case m.state.Detached && v.primary != nil:
			m.servingUntil.Store(0)
			spare = append(spare, m)
		default:
			until := m.sentAt + int64(r.cfg.MaxLag-m.state.Lag)
			m.servingUntil.Store(until)
			if now < until {
				fit = append(fit, m)
			} else {
				spare = append(spare, m)
			}
		}
	}
	if len(fit) < r.cfg.MinServing && len(spare) > 0 {
		slices.SortStableFunc(spare, func(a, b *member) int {
			if a.state.Detached != b.state.Detached {
				if a.state.Detached {
					return 1
				}
				return -1
			}
			return int(a.state.Lag - b.state.Lag)
		})
		for _, m := range spare[:min(len(spare), r.cfg.MinServing-len(fit))] {
			m.servingUntil.Store(math.MaxInt64)
			fit = append(fit, m)
		}
	}
	v.replicas = fit
	backends := make([]balance.Backend, len(fit))
	for i, m := range fit {
		v.readers[m.Name] = m
		backends[i] = balance.Backend{Addr: m.Name, Weight: m.Weight, Zone: m.Zone}
	}
	if err := r.cfg.Balancer.Update(backends); err != nil {
		return fmt.Errorf("%w: balancer: %v", ErrInvalidConfig, err)
	}
	r.view.Store(v)
	r.noteViewLocked(old, v)
	if old == nil || !sameView(old, v) {
		close(r.changed)
		r.changed = make(chan struct{})
	}
	return nil
}

func sameView(a, b *view) bool {
	if a.primary != b.primary || !slices.Equal(a.replicas, b.replicas) || len(a.primaries) != len(b.primaries) || len(a.fenced) != len(b.fenced) {
		return false
	}
	for k, m := range a.primaries {
		if b.primaries[k] != m {
			return false
		}
	}
	for k := range a.fenced {
		if !b.fenced[k] {
			return false
		}
	}
	return true
}
