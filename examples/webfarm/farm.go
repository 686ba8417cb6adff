package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/scaleout/scaleout/admin"
	"github.com/scaleout/scaleout/examples/webfarm/dashboard"
	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/replica"
)

// farm is the controller: it starts the clones and the balancer pair (as
// goroutines, or as processes with -procs), tells them the topology,
// gathers their figures for the dashboard and carries out its buttons.
type farm struct {
	o        options
	b        *backends
	admin    string // the controller's own address: dashboard, topology
	secret   []byte
	observer failover.Elector
	adm      *admin.Handler // the library's admin page, at /admin/
	traffic  traffic
	ctx      context.Context

	mu        sync.Mutex
	topo      topology
	nodes     map[string]*node
	order     []string // node names in start order
	lbs       [2]*lbNode
	nextClone int
	stats     map[string]cloneStats // last seen, kept after a clone dies
	rates     map[string]float64
	lbState   map[string]lbStatus
	events    []string
	// have is the topology version each node applied last, as its
	// topology polls say; moveFrom the version that added Previous.
	have     map[string]int
	moveFrom int
}

// node is a running clone or balancer.
type node struct {
	name, addr string
	kill       func()
	done       chan struct{} // closed when it has stopped
}

func (n *node) alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// lbNode is a balancer slot of the pair; its heartbeat address survives
// restarts so that the peer keeps finding it.
type lbNode struct {
	name, peer string
	hbAddr     string
	priority   int
	node       *node
}

func newFarm(ctx context.Context, o options, b *backends, addr string, adm *admin.Handler) (*farm, error) {
	f := &farm{o: o, b: b, admin: addr, adm: adm, ctx: ctx, nodes: map[string]*node{},
		stats: map[string]cloneStats{}, rates: map[string]float64{}, lbState: map[string]lbStatus{}}
	f.secret = make([]byte, 32)
	if _, err := rand.Read(f.secret); err != nil {
		return nil, err
	}
	var err error
	if f.observer, err = b.elector("controller"); err != nil {
		return nil, err
	}
	if in, ok := b.jobs.(queue.Inspector); ok {
		adm.Queues("jobs", in)
	}
	adm.Election("migrator", f.observer, "")
	f.topo.Shards = []string{"s0", "s1"}
	for _, s := range f.topo.Shards {
		if err := f.createTable(ctx, s); err != nil {
			return nil, err
		}
	}
	f.topo.Version = 1
	return f, nil
}

// createTable creates shard s's table and waits until every healthy
// replica has it, so that no clone reads a replica without it once the
// shard is published.
func (f *farm) createTable(ctx context.Context, s string) error {
	t, err := table(f.b.prefix, s)
	if err != nil {
		return err
	}
	tracked := replica.Track(ctx)
	if _, err = f.b.db.DB().ExecContext(tracked, "CREATE TABLE IF NOT EXISTS "+t+" (k text PRIMARY KEY, v text NOT NULL)"); err != nil {
		return err
	}
	mark, _ := replica.MarkOf(tracked)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		caughtUp := true
		for _, n := range f.b.db.Status() {
			if n.State.Role == replica.RoleReplica && n.Healthy && n.State.Position < mark.Position {
				caughtUp = false
			}
		}
		if caughtUp {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("table %s did not reach the replicas: %w", t, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (f *farm) event(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eventLocked(format, args...)
}

func (f *farm) eventLocked(format string, args ...any) {
	f.events = append(f.events, time.Now().Format("15:04:05")+" "+fmt.Sprintf(format, args...))
	if len(f.events) > 30 {
		f.events = f.events[len(f.events)-30:]
	}
}

// start brings up the clones and the balancer pair.
func (f *farm) start() error {
	for range f.o.clones {
		if _, err := f.addClone(); err != nil {
			return err
		}
	}
	for i := range f.lbs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addr := l.Addr().String()
		_ = l.Close()
		f.lbs[i] = &lbNode{name: fmt.Sprintf("lb-%d", i+1), peer: fmt.Sprintf("lb-%d", 2-i), hbAddr: addr, priority: 2 - i}
	}
	for _, lb := range f.lbs {
		if err := f.startLB(lb); err != nil {
			return err
		}
	}
	return nil
}

// addClone starts one more clone and adds it to the topology.
func (f *farm) addClone() (string, error) {
	f.mu.Lock()
	f.nextClone++
	name := fmt.Sprintf("clone-%d", f.nextClone)
	f.mu.Unlock()
	n, err := f.launchClone(name)
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes[name], f.order = n, append(f.order, name)
	f.topo.Clones = append(f.topo.Clones, cloneAddr{Name: name, Addr: n.addr})
	f.topo.Version++
	f.eventLocked("%s started on %s", name, n.addr)
	return name, nil
}

func (f *farm) launchClone(name string) (*node, error) {
	if f.o.procs {
		return f.spawn(name, "-role", "clone", "-name", name, "-controller", "http://"+f.admin)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(f.ctx)
	n := &node{name: name, addr: l.Addr().String(), kill: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		if err := runClone(ctx, name, l, f.b, "http://"+f.admin); err != nil {
			f.event("%s stopped: %v", name, err)
		}
	}()
	return n, nil
}

func (f *farm) startLB(lb *lbNode) error {
	peerHB := f.lbs[0].hbAddr
	if lb == f.lbs[0] {
		peerHB = f.lbs[1].hbAddr
	}
	var n *node
	var err error
	if f.o.procs {
		n, err = f.spawn(lb.name, "-role", "lb", "-name", lb.name, "-peer", lb.peer, "-hb", lb.hbAddr,
			"-peer-hb", peerHB, "-priority", fmt.Sprint(lb.priority), "-controller", "http://"+f.admin)
	} else {
		var l net.Listener
		for range 50 { // the killed one's port may take a moment to free
			if l, err = net.Listen("tcp", lb.hbAddr); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(f.ctx)
		n = &node{name: lb.name, addr: lb.hbAddr, kill: cancel, done: make(chan struct{})}
		go func() {
			defer close(n.done)
			err := runLB(ctx, lbConfig{name: lb.name, peer: lb.peer, hb: l, peerHB: peerHB, public: f.o.addr,
				priority: lb.priority, secret: f.secret, controller: "http://" + f.admin})
			if err != nil {
				f.event("%s stopped: %v", lb.name, err)
			}
		}()
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	lb.node = n
	f.eventLocked("%s started", lb.name)
	f.mu.Unlock()
	return nil
}

// killClone kills a random live clone, keeping at least one.
func (f *farm) killClone() (string, error) {
	f.mu.Lock()
	var live []*node
	for _, name := range f.order {
		if n := f.nodes[name]; n.alive() {
			live = append(live, n)
		}
	}
	f.mu.Unlock()
	if len(live) < 2 {
		return "", errors.New("only one clone is left")
	}
	n := live[mrand.IntN(len(live))]
	n.kill()
	<-n.done
	f.event("%s killed", n.name)
	return n.name, nil
}

// killBalancer kills the active balancer; it comes back, passive, a few
// seconds later.
func (f *farm) killBalancer() (string, error) {
	f.mu.Lock()
	var victim *lbNode
	for _, lb := range f.lbs {
		if lb.node != nil && lb.node.alive() && f.lbState[lb.name].Role == dashboard.RoleActive {
			victim = lb
		}
	}
	f.mu.Unlock()
	if victim == nil {
		return "", errors.New("no active balancer right now")
	}
	victim.node.kill()
	<-victim.node.done
	f.event("%s (active) killed; its peer takes over", victim.name)
	go func() {
		select {
		case <-f.ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
		if err := f.startLB(victim); err != nil {
			f.event("%s restart failed: %v", victim.name, err)
		}
	}()
	return victim.name, nil
}

// addShard adds a shard; the migrator leader among the clones moves the
// users it now owns.
func (f *farm) addShard(ctx context.Context) (string, error) {
	f.mu.Lock()
	if len(f.topo.Previous) > 0 {
		f.mu.Unlock()
		return "", errors.New("data is still moving to the last shard added")
	}
	name := fmt.Sprintf("s%d", len(f.topo.Shards))
	f.mu.Unlock()
	if err := f.createTable(ctx, name); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.topo.Previous = slices.Clone(f.topo.Shards)
	f.topo.Shards = append(f.topo.Shards, name)
	f.topo.Move = false
	f.topo.Version++
	f.moveFrom = f.topo.Version
	f.eventLocked("shard %s added; moving its users", name)
	return name, nil
}

// spawn runs this program as a node process and waits until it serves.
func (f *farm) spawn(name string, args ...string) (*node, error) {
	return spawnNode(f.ctx, f.o, f.secret, name, args...)
}

// poll gathers the nodes' figures every second, until ctx ends.
func (f *farm) poll(ctx context.Context) {
	client := &http.Client{Timeout: 500 * time.Millisecond}
	get := func(url string, v any) error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(v)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		f.mu.Lock()
		nodes := make(map[string]*node, len(f.nodes))
		for k, v := range f.nodes {
			nodes[k] = v
		}
		lbs := f.lbs
		f.mu.Unlock()
		for name, n := range nodes {
			var st cloneStats
			if !n.alive() || get("http://"+n.addr+"/internal/stats", &st) != nil {
				continue
			}
			f.mu.Lock()
			f.rates[name] = float64(st.Requests - f.stats[name].Requests)
			f.stats[name] = st
			f.mu.Unlock()
		}
		for _, lb := range lbs {
			var st lbStatus
			if lb == nil || lb.node == nil || !lb.node.alive() || get("http://"+lb.hbAddr+"/internal/status", &st) != nil {
				st = lbStatus{Role: dashboard.RoleDead}
			}
			f.mu.Lock()
			if prev := f.lbState[lb.name].Role; prev != "" && prev != st.Role {
				f.eventLocked("%s is %s", lb.name, st.Role)
			}
			f.lbState[lb.name] = st
			f.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// queueDepth is the depth of the farm's job queue: its jobs not yet
// ended (ready, scheduled or running), counted by the queue itself
// (queue.Inspector), in memory or in Redis. Counting it from the clones'
// "accepted" and "done" counters was wrong whenever a clone died: its
// counters died with it while its jobs ran on elsewhere.
func queueDepth(ctx context.Context, jobs queue.JobQueue) (int64, error) {
	in, ok := jobs.(queue.Inspector)
	if !ok {
		return 0, fmt.Errorf("webfarm: the job queue %T cannot count its jobs", jobs)
	}
	c, err := in.Counts(ctx, queue.DefaultQueue)
	if err != nil {
		return 0, err
	}
	return int64(c.Pending()), nil
}

// state is the dashboard's snapshot.
func (f *farm) state(ctx context.Context) dashboard.State {
	st := dashboard.State{Time: time.Now().UTC(), Public: f.o.addr, Mode: f.b.mode}
	f.mu.Lock()
	topo := f.topo
	var hits, misses uint64
	for _, name := range f.order {
		n, s := f.nodes[name], f.stats[name]
		st.Clones = append(st.Clones, dashboard.Clone{Name: name, Addr: n.addr, Up: n.alive(), Requests: s.Requests, RPS: f.rates[name]})
		hits += s.CacheHits
		misses += s.CacheMisses
		st.Queue.Accepted += s.JobsAccepted
		st.Queue.Done += s.JobsDone
		st.Queue.Failed += s.JobsFailed
	}
	for _, lb := range f.lbs {
		if lb != nil {
			s := f.lbState[lb.name]
			role := s.Role
			if role == "" {
				role = dashboard.RoleDead
			}
			st.Balancers = append(st.Balancers, dashboard.Balancer{Name: lb.name, Role: role, Epoch: int64(s.Epoch)})
		}
	}
	st.Events = slices.Clone(f.events)
	f.mu.Unlock()

	st.Cache = dashboard.CacheStats(int64(hits), int64(misses))
	if depth, err := queueDepth(ctx, f.b.jobs); err == nil {
		st.Queue.Pending = depth
	}
	st.Traffic = dashboard.Traffic{OK: f.traffic.ok.Load(), Failed: f.traffic.failed.Load()}
	for _, s := range topo.Shards {
		var n int64
		if t, err := table(f.b.prefix, s); err == nil {
			_ = f.b.db.DB().QueryRowContext(ctx, "SELECT count(*) FROM "+t).Scan(&n)
		}
		st.Shards = append(st.Shards, dashboard.Shard{Name: s, Keys: n})
	}
	if l, err := f.observer.Leader(ctx); err == nil {
		st.Leader = dashboard.Leader{ID: l.ID, Token: int64(l.Token), Vacant: l.Vacant}
	} else {
		st.Leader.Vacant = true
	}
	for _, n := range f.b.db.Status() {
		role := dashboard.DBReplica
		if n.State.Role == replica.RolePrimary {
			role = dashboard.DBPrimary
		}
		st.Database = append(st.Database, dashboard.DBNode{Name: n.Name, Role: role, Healthy: n.Healthy,
			Serving: n.Serving, LagMs: float64(n.State.Lag) / float64(time.Millisecond)})
	}
	return st
}

// handler serves the dashboard, its API and the nodes' topology.
func (f *farm) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", dashboard.Handler("/api/state", "/api/actions"))
	mux.Handle("/admin/", http.StripPrefix("/admin", f.adm))
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, f.state(r.Context()))
	})
	mux.HandleFunc("POST /api/actions/{action}", func(w http.ResponseWriter, r *http.Request) {
		var what string
		var err error
		switch r.PathValue("action") {
		case dashboard.ActionKillClone:
			what, err = f.killClone()
		case dashboard.ActionAddClone:
			what, err = f.addClone()
		case dashboard.ActionKillBalancer:
			what, err = f.killBalancer()
		case dashboard.ActionAddShard:
			what, err = f.addShard(r.Context())
		default:
			http.Error(w, "unknown action", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		_, _ = fmt.Fprintf(w, "%s: %s\n", r.PathValue("action"), what)
	})
	mux.HandleFunc("GET /internal/topology", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		if have, err := strconv.Atoi(r.FormValue("have")); err == nil {
			f.heard(r.FormValue("node"), have)
		}
		t := f.topo
		f.mu.Unlock()
		writeJSON(w, http.StatusOK, t)
	})
	mux.HandleFunc("POST /internal/migrated", func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Version int
			Token   uint64
			By      string
		}
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if m.Version == f.topo.Version && f.topo.Move {
			f.topo.Previous, f.topo.Move = nil, false
			f.topo.Version++
			f.eventLocked("%s (leader, token %d) finished moving users", m.By, m.Token)
		}
	})
	return mux
}

// heard records that node applied topology version have and, once every
// live clone applied the version that added Previous (or a later one),
// lets the migrator move rows (Move). f.mu is held.
func (f *farm) heard(node string, have int) {
	if f.have == nil {
		f.have = map[string]int{}
	}
	f.have[node] = have
	if len(f.topo.Previous) == 0 || f.topo.Move {
		return
	}
	for _, c := range f.topo.Clones {
		if n := f.nodes[c.Name]; n != nil && n.alive() && f.have[c.Name] < f.moveFrom {
			return
		}
	}
	f.topo.Move = true
	f.topo.Version++
	f.eventLocked("every clone reads the old shards too; moving users")
}

// stop kills every node and waits for them.
func (f *farm) stop() {
	f.mu.Lock()
	var all []*node
	for _, n := range f.nodes {
		all = append(all, n)
	}
	for _, lb := range f.lbs {
		if lb != nil && lb.node != nil {
			all = append(all, lb.node)
		}
	}
	f.mu.Unlock()
	for _, n := range all {
		n.kill()
	}
	for _, n := range all {
		<-n.done
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
