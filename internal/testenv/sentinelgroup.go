package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelGroupOptions configures StartSentinelGroup. The zero value is valid.
type SentinelGroupOptions struct {
	// DownAfter is the sentinels' down-after-milliseconds: how long a master must
	// not answer before they start a failover. Default 1 s (a deployment's
	// default is 30 s; tests want the switch, not the wait, but a shorter one
	// sees a master starved by a busy CI machine as down, and switches unasked).
	DownAfter time.Duration
	// Replicas is the number of replicas of the master; default 1.
	Replicas int
}

// switchTimeout bounds the wait for a failover to settle: the sentinels' vote, the
// promotion and the clients' view of it take a few seconds on a busy machine.
const switchTimeout = 60 * time.Second

// A SentinelGroup is a private master, its replicas and three sentinels (quorum 2),
// all on free loopback ports, for a test that fails a master over: the shared
// group of scripts/services.sh serves every package's tests at once, and a switch
// there would reach into theirs. Its methods must be called from the test's
// goroutine; t.Cleanup kills every process.
type SentinelGroup struct {
	t         testing.TB
	name      string
	nodes     []*RedisNode
	sentinels []*server
	opts      SentinelGroupOptions
}

// A RedisNode is one redis-server of a SentinelGroup or a Cluster.
type RedisNode struct {
	s         server
	mu        sync.Mutex
	replicaOf string   // host:port, or "" for a master; read when it (re)starts
	extra     []string // more arguments
}

// Addr returns the node's host:port; it stays the same across Kill and Rejoin.
func (n *RedisNode) Addr() string { return n.s.addr() }

// Kill sends SIGKILL and waits until the process has exited: whatever it had not
// sent its replicas is lost, as in a crash.
func (n *RedisNode) Kill() { n.s.kill() }

// Pause freezes the node with SIGSTOP until Resume.
func (n *RedisNode) Pause() { n.s.pause() }

// Resume lets a paused node run again.
func (n *RedisNode) Resume() { n.s.resume() }

// Running reports whether the node's process runs.
func (n *RedisNode) Running() bool { return n.s.pid() != 0 }

func startNode(t testing.TB, dir string, replicaOf string, extra []string) *RedisNode {
	t.Helper()
	n := &RedisNode{replicaOf: replicaOf, extra: extra}
	n.s = server{
		name: "redis-server",
		dir:  dir,
		args: func(port int) []string {
			n.mu.Lock()
			defer n.mu.Unlock()
			a := []string{
				"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
				"--daemonize", "no", "--logfile", "", "--dir", ".",
				"--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0",
			}
			if n.replicaOf != "" {
				h, p, _ := net.SplitHostPort(n.replicaOf)
				a = append(a, "--replicaof", h, p)
			}
			return append(a, n.extra...)
		},
		ready: func(addr string) error {
			line, err := ask(addr, "PING\r\n")
			if err == nil && line != "+PONG" {
				err = fmt.Errorf("PING answered %q", line)
			}
			return err
		},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	launch(t, &n.s, "redis-server")
	return n
}

// StartSentinelGroup starts a master, opts.Replicas replicas and three sentinels that
// monitor it under the name "mymaster", and returns once the sentinels know each
// other and every replica is in sync: a failover can start at once.
func StartSentinelGroup(t testing.TB, opts SentinelGroupOptions) *SentinelGroup {
	t.Helper()
	if opts.DownAfter == 0 {
		opts.DownAfter = time.Second
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	g := &SentinelGroup{t: t, name: "mymaster", opts: opts}
	root := t.TempDir()
	master := startNode(t, filepath.Join(root, "node0"), "", nil)
	g.nodes = append(g.nodes, master)
	for i := 1; i <= opts.Replicas; i++ {
		g.nodes = append(g.nodes, startNode(t, filepath.Join(root, "node"+strconv.Itoa(i)), master.Addr(), nil))
	}
	for i := range 3 {
		dir := filepath.Join(root, "sentinel"+strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		conf := filepath.Join(dir, "sentinel.conf")
		s := &server{
			name: "redis-server",
			dir:  dir,
			args: func(port int) []string {
				// A sentinel rewrites its file with what it learns; the first
				// start writes what it monitors.
				if _, err := os.Stat(conf); err != nil {
					mh, mp, _ := net.SplitHostPort(master.Addr())
					body := fmt.Sprintf("bind 127.0.0.1\nport %d\ndir %s\n"+
						"sentinel monitor %s %s %s 2\n"+
						"sentinel down-after-milliseconds %s %d\n"+
						"sentinel failover-timeout %s %d\n"+
						"sentinel parallel-syncs %s 1\n",
						port, dir, g.name, mh, mp, g.name, opts.DownAfter.Milliseconds(),
						g.name, max(4*opts.DownAfter, 2*time.Second).Milliseconds(), g.name)
					_ = os.WriteFile(conf, []byte(body), 0o644)
				}
				return []string{conf, "--sentinel", "--port", strconv.Itoa(port)}
			},
			ready: func(addr string) error {
				line, err := ask(addr, "PING\r\n")
				if err == nil && line != "+PONG" {
					err = fmt.Errorf("PING answered %q", line)
				}
				return err
			},
		}
		launch(t, s, "redis-server")
		g.sentinels = append(g.sentinels, s)
	}
	g.waitHealthy("")
	return g
}

// MasterName is the name the sentinels monitor the group under.
func (g *SentinelGroup) MasterName() string { return g.name }

// SentinelAddrs returns the sentinels' addresses.
func (g *SentinelGroup) SentinelAddrs() []string {
	out := make([]string, len(g.sentinels))
	for i, s := range g.sentinels {
		out[i] = s.addr()
	}
	return out
}

// Options returns the options of a FailoverClient on the group: go-redis's defaults
// but ContextTimeoutEnabled, as the Sentinel deployment of a user would have them.
func (g *SentinelGroup) Options() *redis.FailoverOptions {
	return &redis.FailoverOptions{MasterName: g.name, SentinelAddrs: g.SentinelAddrs(), ContextTimeoutEnabled: true}
}

// Client returns a FailoverClient on the group (see Options); t.Cleanup closes it.
func (g *SentinelGroup) Client(t testing.TB) *redis.Client {
	c := redis.NewFailoverClient(g.Options())
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Nodes returns the group's redis-servers (not the sentinels), in the order started:
// the first was the master at the start.
func (g *SentinelGroup) Nodes() []*RedisNode { return g.nodes }

// Node returns the node listening on addr, or nil.
func (g *SentinelGroup) Node(addr string) *RedisNode {
	for _, n := range g.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// Master returns the node every sentinel names as master now; it fails the test if
// they disagree.
func (g *SentinelGroup) Master() *RedisNode {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr, err := g.agreedMaster(ctx)
	if err != nil {
		g.t.Fatalf("testenv: sentinel group: %v", err)
	}
	return g.Node(addr)
}

// agreedMaster returns the master address all sentinels name, or an error.
func (g *SentinelGroup) agreedMaster(ctx context.Context) (string, error) {
	var agreed string
	for _, s := range g.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.addr(), ContextTimeoutEnabled: true})
		a, err := sc.GetMasterAddrByName(ctx, g.name).Result()
		_ = sc.Close()
		if err != nil {
			return "", fmt.Errorf("sentinel %s: %w", s.addr(), err)
		}
		addr := net.JoinHostPort(a[0], a[1])
		if agreed != "" && addr != agreed {
			return "", fmt.Errorf("sentinels disagree: %s and %s", agreed, addr)
		}
		agreed = addr
	}
	return agreed, nil
}

// healthy: the sentinels agree on master (and not on "not"), know each other and
// see it up; it is a master that takes writes, with every other running node
// replicating from it, link up.
func (g *SentinelGroup) healthy(ctx context.Context, not string) (string, error) {
	addr, err := g.agreedMaster(ctx)
	if err != nil {
		return "", err
	}
	if addr == not {
		return "", fmt.Errorf("the sentinels still name %s", addr)
	}
	for _, s := range g.sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.addr(), ContextTimeoutEnabled: true})
		m, err := sc.Master(ctx, g.name).Result()
		_ = sc.Close()
		if err != nil {
			return "", err
		}
		if m["flags"] != "master" || m["num-other-sentinels"] != "2" {
			return "", fmt.Errorf("sentinel %s: flags %q, %s other sentinels", s.addr(), m["flags"], m["num-other-sentinels"])
		}
	}
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	if err := c.Set(ctx, "testenv:sentinel:probe", "1", time.Second).Err(); err != nil {
		return "", fmt.Errorf("master %s: %w", addr, err)
	}
	for _, n := range g.nodes {
		if n.Addr() == addr || !n.Running() {
			continue
		}
		if err := replicaSynced(ctx, n.Addr(), addr); err != nil {
			return "", err
		}
	}
	return addr, nil
}

// replicaSynced: the node at addr replicates from master and its link is up.
func replicaSynced(ctx context.Context, addr, master string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("replica %s: %w", addr, err)
	}
	h, p, _ := net.SplitHostPort(master)
	for _, want := range []string{"role:slave", "master_host:" + h, "master_port:" + p, "master_link_status:up"} {
		if !strings.Contains(info, want+"\r\n") {
			return fmt.Errorf("replica %s: no %q in INFO replication", addr, want)
		}
	}
	return nil
}

func (g *SentinelGroup) waitHealthy(not string) string {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), switchTimeout)
	defer cancel()
	var addr string
	var last error
	if err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		addr, last = g.healthy(ctx, not)
		return last == nil, nil
	}); err != nil {
		g.t.Fatalf("testenv: sentinel group not healthy after %v: %v", switchTimeout, last)
	}
	return addr
}

// Failover forces a failover (SENTINEL FAILOVER) and returns once every sentinel
// names the new master, it takes writes and the old master replicates from it: the
// group is healthy again. It returns the new master.
func (g *SentinelGroup) Failover() *RedisNode {
	g.t.Helper()
	old := g.Master()
	ctx, cancel := context.WithTimeout(context.Background(), switchTimeout)
	defer cancel()
	sc := redis.NewSentinelClient(&redis.Options{Addr: g.sentinels[0].addr(), ContextTimeoutEnabled: true})
	defer func() { _ = sc.Close() }()
	// A failover still settling (the previous one's failover-timeout) answers
	// INPROG; NOGOODSLAVE while the replica's link is not yet reported up.
	if err := poll(ctx, 100*time.Millisecond, func() (bool, error) {
		err := sc.Failover(ctx, g.name).Err()
		if err != nil && (strings.Contains(err.Error(), "INPROG") || strings.Contains(err.Error(), "NOGOODSLAVE")) {
			return false, nil
		}
		return err == nil, err
	}); err != nil {
		g.t.Fatalf("testenv: SENTINEL FAILOVER %s: %v", g.name, err)
	}
	return g.Node(g.waitHealthy(old.Addr()))
}

// KillMaster SIGKILLs the current master and returns it; the sentinels elect a new
// one after DownAfter. WaitSwitched waits for it; Rejoin brings the old one back.
func (g *SentinelGroup) KillMaster() *RedisNode {
	g.t.Helper()
	m := g.Master()
	m.Kill()
	return m
}

// WaitSwitched waits until the sentinels agree on a master other than old, which
// takes writes, and returns it. Other running nodes must replicate from it.
func (g *SentinelGroup) WaitSwitched(old *RedisNode) *RedisNode {
	g.t.Helper()
	return g.Node(g.waitHealthy(old.Addr()))
}

// Rejoin starts a killed node again, as a replica of the current master (as the
// sentinels would make it: it never serves as a master with the data it lost), and
// waits until the group is healthy.
func (g *SentinelGroup) Rejoin(n *RedisNode) {
	g.t.Helper()
	if n.Running() {
		g.t.Fatalf("testenv: Rejoin: %s is running", n.Addr())
	}
	m := g.Master()
	if m == nil || m == n {
		g.t.Fatalf("testenv: Rejoin: the sentinels still name %s master", n.Addr())
	}
	n.mu.Lock()
	n.replicaOf = m.Addr()
	n.mu.Unlock()
	if err := n.s.start(); err != nil {
		g.t.Fatalf("testenv: Rejoin: %v", err)
	}
	g.waitHealthy("")
}

// CutReplication drops the master's links to its replicas (CLIENT KILL TYPE
// replica) while each replica is paused, so that the writes that follow reach the
// master only, until Heal. A replica paused for longer than DownAfter is seen down
// by the sentinels: keep the window short.
func (g *SentinelGroup) CutReplication() (heal func()) {
	g.t.Helper()
	m := g.Master()
	var paused []*RedisNode
	for _, n := range g.nodes {
		if n != m && n.Running() {
			n.Pause()
			paused = append(paused, n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
	defer func() { _ = c.Close() }()
	if err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		g.t.Fatalf("testenv: CLIENT KILL TYPE replica on %s: %v", m.Addr(), err)
	}
	return func() {
		for _, n := range paused {
			n.Resume()
		}
	}
}
