package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/shard"
)

// ClusterOptions configures StartCluster. The zero value is valid.
type ClusterOptions struct {
	// NodeTimeout is cluster-node-timeout: how long a master must not answer
	// before its replica takes over. Default 1 s (Redis's default is 15 s).
	NodeTimeout time.Duration
}

// A Cluster is a private Redis Cluster of three masters with a replica each, on free
// loopback ports, for a test that fails a shard over: the shared cluster of
// scripts/services.sh serves every package's tests at once. Its methods must be
// called from the test's goroutine; t.Cleanup kills every node.
type Cluster struct {
	t     testing.TB
	nodes []*RedisNode
}

// StartCluster starts the six nodes, joins them with redis-cli --cluster create and
// returns once every node reports cluster_state:ok and every replica is in sync.
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if opts.NodeTimeout == 0 {
		opts.NodeTimeout = time.Second
	}
	cli, act, msg := findBinary(os.Getenv, "redis-cli", "redis-tools")
	apply(t, act, msg)
	c := &Cluster{t: t}
	root := t.TempDir()
	var addrs []string
	for i := range 6 {
		n := startNode(t, filepath.Join(root, "node"+strconv.Itoa(i)), "", []string{
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
		})
		c.nodes = append(c.nodes, n)
		addrs = append(addrs, n.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), switchTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitHealthy(nil, "")
	return c
}

// Addrs returns every node's address, for ClusterOptions.Addrs.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr()
	}
	return out
}

// Client returns a ClusterClient on the cluster with go-redis's defaults but
// ContextTimeoutEnabled; t.Cleanup closes it.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Nodes returns the six nodes.
func (c *Cluster) Nodes() []*RedisNode { return c.nodes }

func (c *Cluster) node(addr string) *RedisNode {
	for _, n := range c.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// slotOwner asks the node at addr which master serves slot (CLUSTER SHARDS).
func slotOwner(ctx context.Context, addr string, slot int) (master string, err error) {
	cl := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	defer func() { _ = cl.Close() }()
	shards, err := cl.ClusterShards(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if r.Start <= int64(slot) && int64(slot) <= r.End {
				for _, n := range sh.Nodes {
					if n.Role == "master" {
						return net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10)), nil
					}
				}
			}
		}
	}
	return "", fmt.Errorf("node %s: slot %d unassigned", addr, slot)
}

// replicasOf returns the addresses of the replicas of the master at addr, from its
// CLUSTER NODES (CLUSTER SLOTS leaves out a replica until its offset has been
// gossiped).
func replicasOf(ctx context.Context, addr string) ([]string, error) {
	cl := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	defer func() { _ = cl.Close() }()
	nodes, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	var self string
	lines := strings.Split(strings.TrimSpace(nodes), "\n")
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 2 && strings.Contains(f[2], "myself") {
			self = f[0]
		}
	}
	var out []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 3 && f[3] == self && strings.Contains(f[2], "slave") && !strings.Contains(f[2], "fail") {
			out = append(out, strings.SplitN(f[1], "@", 2)[0])
		}
	}
	return out, nil
}

// healthy: every running node says cluster_state:ok and agrees on who serves slot
// (and it is not "not"); that master takes writes and its running replicas are in
// sync with it.
func (c *Cluster) healthy(ctx context.Context, slot int, not string) (string, error) {
	var agreed string
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		cl := redis.NewClient(&redis.Options{Addr: n.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
		info, err := cl.ClusterInfo(ctx).Result()
		_ = cl.Close()
		if err != nil {
			return "", err
		}
		if !strings.Contains(info, "cluster_state:ok\r\n") {
			return "", fmt.Errorf("node %s: cluster state not ok", n.Addr())
		}
		m, err := slotOwner(ctx, n.Addr(), slot)
		if err != nil {
			return "", err
		}
		if agreed != "" && m != agreed {
			return "", fmt.Errorf("nodes disagree on slot %d: %s and %s", slot, agreed, m)
		}
		agreed = m
	}
	if agreed == not {
		return "", fmt.Errorf("slot %d is still served by %s", slot, not)
	}
	running, masters := 0, 0
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		running++
		cl := redis.NewClient(&redis.Options{Addr: n.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
		info, err := cl.Info(ctx, "replication").Result()
		_ = cl.Close()
		if err != nil {
			return "", err
		}
		switch {
		case strings.Contains(info, "role:master\r\n"):
			masters++
		case !strings.Contains(info, "master_link_status:up\r\n"):
			return "", fmt.Errorf("replica %s: link to its master not up", n.Addr())
		}
	}
	if masters != 3 {
		return "", fmt.Errorf("%d masters of %d running nodes, want 3 and the others in sync replicas", masters, running)
	}
	return agreed, nil
}

func (c *Cluster) waitHealthy(key *string, not string) string {
	c.t.Helper()
	slot := 0
	if key != nil {
		slot = keySlot(*key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), switchTimeout)
	defer cancel()
	var addr string
	var last error
	if err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		addr, last = c.healthy(ctx, slot, not)
		return last == nil, nil
	}); err != nil {
		c.t.Fatalf("testenv: cluster not healthy after %v: %v", switchTimeout, last)
	}
	return addr
}

// MasterOf returns the node serving key's slot now, as the first running node sees it.
func (c *Cluster) MasterOf(key string) *RedisNode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		m, err := slotOwner(ctx, n.Addr(), keySlot(key))
		if err != nil {
			c.t.Fatalf("testenv: cluster: %v", err)
		}
		return c.node(m)
	}
	c.t.Fatal("testenv: cluster: no node runs")
	return nil
}

// FailoverShard runs CLUSTER FAILOVER on the replica of the master serving key's
// slot (a coordinated switch: the replica catches up first, nothing acknowledged is
// lost) and returns the new master once every node agrees and the old master
// replicates from it.
func (c *Cluster) FailoverShard(key string) *RedisNode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), switchTimeout)
	defer cancel()
	m := c.MasterOf(key)
	// A node that Rejoin brought back replicates already, but the master may
	// hear of it as its replica only a moment later, by gossip.
	var replicas []string
	var last error
	if err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		replicas, last = replicasOf(ctx, m.Addr())
		return last == nil && len(replicas) > 0, nil
	}); err != nil {
		c.t.Fatalf("testenv: cluster: no replica of %s to fail over to (%v)", m.Addr(), last)
	}
	cl := redis.NewClient(&redis.Options{Addr: replicas[0], ContextTimeoutEnabled: true})
	defer func() { _ = cl.Close() }()
	if err := cl.ClusterFailover(ctx).Err(); err != nil {
		c.t.Fatalf("testenv: CLUSTER FAILOVER on %s: %v", replicas[0], err)
	}
	return c.node(c.waitHealthy(&key, m.Addr()))
}

// KillMaster SIGKILLs the master serving key's slot and returns it; its replica takes
// over after NodeTimeout. WaitSwitched waits for that; Rejoin brings the node back.
func (c *Cluster) KillMaster(key string) *RedisNode {
	c.t.Helper()
	m := c.MasterOf(key)
	m.Kill()
	return m
}

// WaitSwitched waits until every running node agrees that a node other than old
// serves key's slot and the cluster is ok, and returns the new master.
func (c *Cluster) WaitSwitched(old *RedisNode, key string) *RedisNode {
	c.t.Helper()
	return c.node(c.waitHealthy(&key, old.Addr()))
}

// Rejoin starts a killed node again on its port with its nodes.conf: it learns that
// it was failed over and becomes a replica of the new master, empty (nothing is kept
// on disk) until it has synced. It returns once the cluster is healthy.
func (c *Cluster) Rejoin(n *RedisNode) {
	c.t.Helper()
	if n.Running() {
		c.t.Fatalf("testenv: Rejoin: %s is running", n.Addr())
	}
	if err := n.s.start(); err != nil {
		c.t.Fatalf("testenv: Rejoin: %v", err)
	}
	c.waitHealthy(nil, "")
	// The node comes back as a master of no slots for a moment, until it learns of
	// the failover: wait until it replicates.
	ctx, cancel := context.WithTimeout(context.Background(), switchTimeout)
	defer cancel()
	var last error
	if err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		cl := redis.NewClient(&redis.Options{Addr: n.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
		defer func() { _ = cl.Close() }()
		info, err := cl.Info(ctx, "replication").Result()
		if err != nil {
			last = err
			return false, nil
		}
		last = fmt.Errorf("not a replica in sync")
		return strings.Contains(info, "role:slave\r\n") && strings.Contains(info, "master_link_status:up\r\n"), nil
	}); err != nil {
		c.t.Fatalf("testenv: Rejoin: %s: %v", n.Addr(), last)
	}
	c.waitHealthy(nil, "")
}

// keySlot is the Redis Cluster slot of key.
func keySlot(key string) int { return int(shard.Slot(key)) }
