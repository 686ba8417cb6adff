// Command webfarm runs a whole scaled-out web farm on this machine and a
// live dashboard to watch it work and heal:
//
//   - an active-passive pair of load balancers (failover.Pair,
//     balance.Health, balance/httpproxy) on one public address, in front
//     of N stateless clones on private loopback ports;
//   - sessions in a shared store (session.Manager), so a user stays logged
//     in whichever clone serves them;
//   - user profiles partitioned across shards (shard.Rendezvous) in a
//     database with a primary and replicas (replica.Router: reads on
//     replicas, read-your-writes through the session), read through a
//     cache (cache.Loader);
//   - a job queue (queue.Worker on every clone) for slow reports, whose
//     completion the user polls, and a periodic precompute job
//     (queue.Scheduler) that puts the top users in the cache;
//   - a migrator elected among the clones (failover.Run) that moves users
//     when a shard is added, fenced by its token, once every live clone
//     reads the old shards as well as the new;
//   - simulated users sending traffic, and a dashboard with buttons to
//     kill a clone, kill the active balancer, add a clone, add a shard;
//   - the library's admin page (package admin) at /admin/ beside the
//     dashboard: the queue's exact depth, dead letters and pause button,
//     the election, the database's nodes and lag, with charts of the last
//     minutes.
//
// With no flags everything is in this process and in memory. Flags switch
// each part to a real server: -redis or -redis-cluster (sessions, queue,
// election, and the cache unless -memcached), -memcached (cache),
// -pg-primary and -pg-replica (the database). -procs runs every clone and
// balancer as a process of its own, killed with SIGKILL by the buttons; it
// needs -redis (or -redis-cluster) and -pg-primary, which the processes
// share.
//
//	go run ./examples/webfarm
//	go run ./examples/webfarm -procs -redis 127.0.0.1:6379 -pg-primary postgres://… -pg-replica postgres://…
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/scaleout/scaleout/admin"
	"github.com/scaleout/scaleout/observe"
)

type options struct {
	addr, admin          string
	clones, users        int
	procs                bool
	redis, redisCluster  string
	memcached            string
	pgPrimary, pgReplica string
	dbLatency            time.Duration
	prefix               string

	// A node process's own flags (-role clone|lb).
	role, name, controller string
	hb, peer, peerHB       string
	priority               int
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("webfarm", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "public address of the farm")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:8090", "address of the dashboard")
	fs.IntVar(&o.clones, "clones", 3, "clones to start with")
	fs.IntVar(&o.users, "users", 8, "simulated users sending traffic (0: none)")
	fs.BoolVar(&o.procs, "procs", false, "run clones and balancers as separate processes")
	fs.StringVar(&o.redis, "redis", "", "Redis address for sessions, jobs, election and cache")
	fs.StringVar(&o.redisCluster, "redis-cluster", "", "Redis Cluster addresses, comma-separated, instead of -redis")
	fs.StringVar(&o.memcached, "memcached", "", "Memcached address for the cache")
	fs.StringVar(&o.pgPrimary, "pg-primary", "", "PostgreSQL DSN of the primary")
	fs.StringVar(&o.pgReplica, "pg-replica", "", "PostgreSQL DSNs of replicas, comma-separated")
	fs.DurationVar(&o.dbLatency, "db-latency", 20*time.Millisecond, "latency of the in-memory database")
	fs.StringVar(&o.prefix, "prefix", "webfarm_", "prefix of the farm's keys and tables")
	fs.StringVar(&o.role, "role", "farm", "internal: farm, clone or lb")
	fs.StringVar(&o.name, "name", "", "internal: the node's name")
	fs.StringVar(&o.controller, "controller", "", "internal: the controller's URL")
	fs.StringVar(&o.hb, "hb", "", "internal: a balancer's heartbeat address")
	fs.StringVar(&o.peer, "peer", "", "internal: the other balancer's name")
	fs.StringVar(&o.peerHB, "peer-hb", "", "internal: the other balancer's heartbeat address")
	fs.IntVar(&o.priority, "priority", 0, "internal: a balancer's priority")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if !validName.MatchString(o.prefix + "s0") {
		return o, fmt.Errorf("-prefix %q: lowercase letters, digits and _ only", o.prefix)
	}
	if o.procs && ((o.redis == "" && o.redisCluster == "") || o.pgPrimary == "") {
		return o, errors.New("-procs needs -redis (or -redis-cluster) and -pg-primary: separate processes cannot share in-memory stores")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
}

// run runs the role o names until ctx ends.
func run(ctx context.Context, o options, out io.Writer) error {
	var adm *admin.Handler
	var dbMeter observe.Meter
	if o.role == "farm" {
		// The demo's controller listens on loopback: its admin page serves
		// this machine only. A real service sets Authorize.
		var err error
		if adm, err = admin.New(admin.Config{AllowLoopback: true, Interval: time.Second, Title: "Web farm admin"}); err != nil {
			return err
		}
		dbMeter = adm.Meter("database")
	}
	b, err := openBackends(o, dbMeter)
	if err != nil {
		return err
	}
	defer b.Close()
	switch o.role {
	case "clone":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "ready %s\n", l.Addr())
		return runClone(ctx, o.name, l, b, o.controller)
	case "lb":
		l, err := net.Listen("tcp", o.hb)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "ready %s\n", l.Addr())
		secret, err := hex.DecodeString(os.Getenv(secretEnv))
		if err != nil || len(secret) == 0 {
			return fmt.Errorf("$%s must hold the pair's secret in hex", secretEnv)
		}
		return runLB(ctx, lbConfig{name: o.name, peer: o.peer, hb: l, peerHB: o.peerHB, public: o.addr,
			priority: o.priority, secret: secret, controller: o.controller})
	case "farm":
		return runFarm(ctx, o, b, adm, out)
	default:
		return fmt.Errorf("unknown -role %q", o.role)
	}
}

// runFarm runs the controller, the nodes and the simulated users.
func runFarm(ctx context.Context, o options, b *backends, adm *admin.Handler, out io.Writer) error {
	l, err := net.Listen("tcp", o.admin)
	if err != nil {
		return err
	}
	f, err := newFarm(ctx, o, b, l.Addr().String(), adm)
	if err != nil {
		return err
	}
	go func() { _ = adm.Run(ctx) }()
	srv := &http.Server{Handler: f.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	if err := f.start(); err != nil {
		f.stop()
		return err
	}
	defer f.stop()
	go f.poll(ctx)
	if o.users > 0 {
		go runUsers(ctx, "http://"+o.addr, o.users, &f.traffic)
	}
	fmt.Fprintf(out, "webfarm (%s): public http://%s, dashboard http://%s\n", b.mode, o.addr, l.Addr())
	<-ctx.Done()
	return ctx.Err()
}

// secretEnv carries the balancers' heartbeat secret to their processes
// (the environment, unlike the command line, is not shown to other users).
const secretEnv = "WEBFARM_SECRET"

// spawnNode starts this program as a node process with the farm's backend
// flags and waits for its "ready" line.
func spawnNode(ctx context.Context, o options, secret []byte, name string, args ...string) (*node, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args = append(args, "-addr", o.addr, "-prefix", o.prefix, "-redis", o.redis, "-redis-cluster", o.redisCluster,
		"-memcached", o.memcached, "-pg-primary", o.pgPrimary, "-pg-replica", o.pgReplica)
	cmd := nodeCommand(ctx, exe, args...)
	cmd.Env = append(os.Environ(), secretEnv+"="+hex.EncodeToString(secret)) // raw bytes may hold a NUL
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &node{name: name, kill: func() { _ = cmd.Process.Kill() }, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(n.done) }()
	ready := make(chan string, 1)
	go func() {
		var addr string
		_, _ = fmt.Fscanf(stdout, "ready %s\n", &addr)
		ready <- addr
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case n.addr = <-ready:
		if n.addr == "" {
			n.kill()
			return nil, fmt.Errorf("%s did not start", name)
		}
		return n, nil
	case <-time.After(30 * time.Second):
		n.kill()
		return nil, fmt.Errorf("%s did not start within 30s", name)
	}
}
