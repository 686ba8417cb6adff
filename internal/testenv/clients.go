package testenv

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	_ "github.com/jackc/pgx/v5/stdlib" // the driver PostgresDB opens
	"github.com/redis/go-redis/v9"
)

// cleanupTimeout bounds the key deletion a client's t.Cleanup does.
const cleanupTimeout = 30 * time.Second

// RedisClient returns a client on the shared Redis server (SCALEOUT_REDIS_ADDR), with
// ContextTimeoutEnabled set as scaleout's Redis-backed constructors require. Its
// t.Cleanup deletes every key under Prefix(t) and closes the client.
func RedisClient(t testing.TB) *redis.Client {
	t.Helper()
	addr := RedisAddr(t)
	prefix := Prefix(t)
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		t.Fatalf("testenv: %s=%s does not answer PING: %v (is scripts/services.sh up?)", EnvRedisAddr, addr, err)
	}
	t.Cleanup(func() {
		defer func() { _ = c.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		cc := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
		defer func() { _ = cc.Close() }()
		if _, err := deleteRedisPrefix(ctx, cc, prefix, false); err != nil {
			t.Errorf("testenv: deleting keys %s* on %s: %v", prefix, addr, err)
		}
	})
	return c
}

// RedisClusterClient returns a client on the shared Redis Cluster
// (SCALEOUT_REDIS_CLUSTER_ADDRS). Its t.Cleanup deletes every key under Prefix(t) on
// every master and closes the client.
func RedisClusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	addrs := RedisClusterAddrs(t)
	prefix := Prefix(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
		return n.Ping(ctx).Err()
	}); err != nil {
		_ = c.Close()
		t.Fatalf("testenv: the cluster at %s=%s does not answer: %v (is scripts/services.sh up?)",
			EnvRedisClusterAddrs, strings.Join(addrs, ","), err)
	}
	t.Cleanup(func() {
		defer func() { _ = c.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if _, err := deleteClusterPrefix(ctx, addrs, prefix); err != nil {
			t.Errorf("testenv: deleting keys %s* on the cluster: %v", prefix, err)
		}
	})
	return c
}

// MemcachedClient returns a client on the shared memcached server
// (SCALEOUT_MEMCACHED_ADDR). Its t.Cleanup deletes every key under Prefix(t).
func MemcachedClient(t testing.TB) *memcache.Client {
	t.Helper()
	addr := MemcachedAddr(t)
	prefix := Prefix(t)
	c := memcache.New(addr)
	c.Timeout = 2 * time.Second
	if err := c.Ping(); err != nil {
		t.Fatalf("testenv: %s=%s does not answer: %v (is scripts/services.sh up?)", EnvMemcachedAddr, addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if _, err := deleteMemcachedPrefix(ctx, addr, prefix); err != nil {
			t.Errorf("testenv: deleting keys %s* on memcached %s: %v", prefix, addr, err)
		}
	})
	return c
}

// deleteRedisPrefix deletes the keys under prefix on one node and returns how many it
// found. perKey sends one UNLINK per key (cluster nodes refuse multi-key commands across
// slots).
func deleteRedisPrefix(ctx context.Context, c *redis.Client, prefix string, perKey bool) (int, error) {
	const batch = 500
	n := 0
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		var err error
		if perKey {
			_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					p.Unlink(ctx, k)
				}
				return nil
			})
		} else {
			err = c.Unlink(ctx, keys...).Err()
		}
		keys = keys[:0]
		return err
	}
	it := c.Scan(ctx, 0, globEscape(prefix)+"*", 1000).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
		n++
		if len(keys) == batch {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := it.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

func deleteClusterPrefix(ctx context.Context, addrs []string, prefix string) (int, error) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	defer func() { _ = cc.Close() }()
	counts := make(chan int, 64)
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := deleteRedisPrefix(ctx, m, prefix, true)
		counts <- n
		return err
	})
	close(counts)
	total := 0
	for n := range counts {
		total += n
	}
	return total, err
}

// errMetadumpUnsupported: the server cannot list its keys.
var errMetadumpUnsupported = errors.New("memcached does not support lru_crawler metadump")

// memcachedKeys lists the keys under prefix with "lru_crawler metadump all".
func memcachedKeys(ctx context.Context, addr, prefix string) ([]string, error) {
	var keys []string
	err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		var busy bool
		var err error
		keys, busy, err = metadump(ctx, addr, prefix)
		return !busy, err
	})
	return keys, err
}

func metadump(ctx context.Context, addr, prefix string) (keys []string, busy bool, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = conn.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("lru_crawler metadump all\r\n")); err != nil {
		return nil, false, err
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case line == "END":
			return keys, false, nil
		case strings.HasPrefix(line, "BUSY"):
			return nil, true, nil // another crawl is running: try again
		case line == "ERROR", strings.HasPrefix(line, "CLIENT_ERROR"), strings.HasPrefix(line, "SERVER_ERROR"):
			return nil, false, fmt.Errorf("%w: %s", errMetadumpUnsupported, line)
		}
		for _, f := range strings.Fields(line) {
			if enc, ok := strings.CutPrefix(f, "key="); ok {
				k, err := url.PathUnescape(enc)
				if err != nil {
					k = enc
				}
				if strings.HasPrefix(k, prefix) {
					keys = append(keys, k)
				}
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, false, err
	}
	return nil, false, errors.New("memcached closed the connection during metadump")
}

func deleteMemcachedPrefix(ctx context.Context, addr, prefix string) (int, error) {
	keys, err := memcachedKeys(ctx, addr, prefix)
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	for _, k := range keys {
		if _, err := fmt.Fprintf(conn, "delete %s\r\n", k); err != nil {
			return 0, err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if line = strings.TrimSpace(line); line != "DELETED" && line != "NOT_FOUND" {
			return 0, fmt.Errorf("delete %s: %s", k, line)
		}
	}
	return len(keys), nil
}

// A RedisTopology is one kind of Redis deployment a store's tests run on.
type RedisTopology struct {
	Name   string
	Client func(t testing.TB) redis.UniversalClient
}

// RedisTopologies are the deployments every Redis-backed store is tested
// on: the single server and the Cluster, each a fresh client with cleanup.
var RedisTopologies = []RedisTopology{
	{"single", func(t testing.TB) redis.UniversalClient { return RedisClient(t) }},
	{"cluster", func(t testing.TB) redis.UniversalClient { return RedisClusterClient(t) }},
}

// PostgresDB opens a database/sql pool on dsn with the pgx driver; t.Cleanup
// closes it.
func PostgresDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("testenv: open %s: %v", dsn, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
