package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver of -pg-primary and -pg-replica
	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/memcachedcache"
	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/examples/webfarm/memdb"
	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/rediselector"
	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/redisstore"
)

// backends are the shared stores every clone uses: in this process by
// default, or real servers chosen by flags. In-process stores are shared
// by the goroutine clones of one farm; separate processes (-procs) need
// the real ones.
type backends struct {
	mode     string
	sessions session.SessionStore
	cache    cache.ObjectCache
	jobs     queue.JobQueue
	db       *replica.Router
	elector  func(id string) (failover.Elector, error)
	prefix   string // of every key and table the farm writes
	closers  []func() error
}

func (b *backends) Close() error {
	var err error
	for i := len(b.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, b.closers[i]())
	}
	return err
}

// openBackends builds the stores of o's flags; the database router
// reports to dbMeter (nil: nowhere).
func openBackends(o options, dbMeter observe.Meter) (_ *backends, err error) {
	b := &backends{prefix: o.prefix}
	defer func() {
		if err != nil {
			_ = b.Close()
		}
	}()
	var parts []string

	var rdb redis.UniversalClient
	switch {
	case o.redisCluster != "":
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(o.redisCluster, ","), ContextTimeoutEnabled: true})
		parts = append(parts, "redis cluster")
	case o.redis != "":
		rdb = redis.NewClient(&redis.Options{Addr: o.redis, ContextTimeoutEnabled: true})
		parts = append(parts, "redis")
	}
	if rdb != nil {
		b.closers = append(b.closers, rdb.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := rdb.Ping(ctx).Err(); err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		if b.sessions, err = redisstore.New(rdb, redisstore.Config{Prefix: o.prefix + "sess:"}); err != nil {
			return nil, err
		}
		if b.jobs, err = redisqueue.New(rdb, redisqueue.Config{Prefix: o.prefix + "q:"}); err != nil {
			return nil, err
		}
		b.elector = func(id string) (failover.Elector, error) {
			return rediselector.New(rdb, rediselector.Config{Role: o.prefix + "migrator", Config: failover.Config{ID: id}})
		}
	} else {
		mem, err := session.NewMemory(session.MemoryConfig{})
		if err != nil {
			return nil, err
		}
		b.closers = append(b.closers, mem.Close)
		b.sessions = mem
		q, err := queue.NewMemory(queue.MemoryConfig{})
		if err != nil {
			return nil, err
		}
		b.jobs = q
		store := failover.NewMemoryStore()
		b.elector = func(id string) (failover.Elector, error) {
			return store.Candidate(failover.Config{ID: id})
		}
	}

	switch {
	case o.memcached != "":
		c, err := memcachedcache.New(memcache.New(o.memcached), memcachedcache.Config{Prefix: o.prefix + "c:"})
		if err != nil {
			return nil, err
		}
		b.cache = c
		parts = append(parts, "memcached")
	case rdb != nil:
		c, err := rediscache.New(rdb, rediscache.Config{Prefix: o.prefix + "c:"})
		if err != nil {
			return nil, err
		}
		b.cache = c
	default:
		c, err := cache.NewMemory(cache.MemoryConfig{})
		if err != nil {
			return nil, err
		}
		b.cache = c
	}

	var nodes []replica.Node
	var probe replica.Probe
	if o.pgPrimary != "" {
		for i, dsn := range append([]string{o.pgPrimary}, splitList(o.pgReplica)...) {
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				return nil, err
			}
			b.closers = append(b.closers, db.Close)
			nodes = append(nodes, replica.Node{Name: fmt.Sprintf("pg-%d", i+1), DB: db})
		}
		probe = new(replica.PostgreSQL)
		parts = append(parts, "postgresql")
	} else {
		c := memdb.NewCluster("db", memdb.Config{Replicas: 2, Latency: o.dbLatency, ReplicationDelay: 150 * time.Millisecond})
		b.closers = append(b.closers, c.Close)
		nodes, probe = c.Nodes(), c.Probe()
	}
	if b.db, err = replica.New(replica.Config{Probe: probe, ProbeInterval: 250 * time.Millisecond, MaxLag: 2 * time.Second, Meter: dbMeter}, nodes...); err != nil {
		return nil, err
	}
	b.closers = append(b.closers, b.db.Close)

	b.mode = "in-memory"
	if len(parts) > 0 {
		b.mode = strings.Join(parts, "+")
		if rdb == nil || o.pgPrimary == "" {
			b.mode += " (rest in-memory)"
		}
	}
	return b, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
