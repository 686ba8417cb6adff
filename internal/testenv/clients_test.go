package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func randHex(t testing.TB) string {
	var b [8]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return hex.EncodeToString(b[:])
}

// sibling returns a key that shares all of prefix but its last byte, to catch cleanups
// that delete more than the prefix.
func sibling(prefix string) string {
	return strings.TrimSuffix(prefix, ":") + "x:k"
}

func TestRedisClientCleanupDeletesOnlyItsPrefix(t *testing.T) {
	t.Parallel()
	addr := RedisAddr(t)
	ctx := t.Context()
	probe := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = probe.Close() })

	const n = 1234 // more than one SCAN page and one UNLINK batch
	var prefix string
	outside := []string{KeyPrefixRoot + "outside:" + randHex(t)}
	t.Run("writer", func(t *testing.T) {
		c := RedisClient(t)
		prefix = Prefix(t)
		outside = append(outside, sibling(prefix))
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range n {
				p.Set(ctx, fmt.Sprintf("%sk%d", prefix, i), "v", time.Hour)
			}
			p.HSet(ctx, prefix+"{tagged}hash", "f", "v")
			return nil
		})
		require.NoError(t, err)
		for _, k := range outside {
			require.NoError(t, probe.Set(ctx, k, "keep", time.Hour).Err())
		}
		require.NoError(t, c.Close()) // a test may close its client; cleanup still runs
	})
	t.Cleanup(func() { probe.Del(context.Background(), outside...) })

	left, _, err := probe.Scan(ctx, 0, globEscape(prefix)+"*", 10000).Result()
	require.NoError(t, err)
	require.Empty(t, left)
	require.EqualValues(t, len(outside), probe.Exists(ctx, outside...).Val(), "keys outside the prefix must survive")
}

func TestRedisClusterClientCleanupDeletesOnlyItsPrefix(t *testing.T) {
	t.Parallel()
	addrs := RedisClusterAddrs(t)
	ctx := t.Context()
	probe := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { _ = probe.Close() })

	const n = 600 // spread over every master
	var prefix string
	var keys []string
	outside := []string{KeyPrefixRoot + "outside:" + randHex(t)}
	t.Run("writer", func(t *testing.T) {
		c := RedisClusterClient(t)
		prefix = Prefix(t)
		outside = append(outside, sibling(prefix))
		for i := range n {
			keys = append(keys, fmt.Sprintf("%sk%d", prefix, i))
		}
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Set(ctx, k, "v", time.Hour)
			}
			return nil
		})
		require.NoError(t, err)
		var mu sync.Mutex
		masters := map[string]int{}
		require.NoError(t, probe.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			keys, _, err := m.Scan(ctx, 0, globEscape(prefix)+"*", 10000).Result()
			mu.Lock()
			defer mu.Unlock()
			masters[m.Options().Addr] = len(keys)
			return err
		}))
		for addr, n := range masters {
			require.NotZero(t, n, "no keys on master %s", addr)
		}
		require.Len(t, masters, 3, "keys should land on all three masters")
		for _, k := range outside {
			require.NoError(t, probe.Set(ctx, k, "keep", time.Hour).Err())
		}
	})
	t.Cleanup(func() {
		for _, k := range outside {
			probe.Del(context.Background(), k)
		}
	})

	found, err := deleteClusterPrefix(ctx, addrs, prefix)
	require.NoError(t, err)
	require.Zero(t, found, "cleanup left keys under the prefix")
	for _, k := range keys[:20] {
		require.Zero(t, probe.Exists(ctx, k).Val(), k)
	}
	for _, k := range outside {
		require.EqualValues(t, 1, probe.Exists(ctx, k).Val(), "%s must survive", k)
	}
}

func testMemcachedCleanup(t *testing.T, addr string, client func(t *testing.T) *memcache.Client) {
	probe := memcache.New(addr)
	const n = 300
	var prefix string
	outside := []string{KeyPrefixRoot + "outside:" + randHex(t)}
	t.Run("writer", func(t *testing.T) {
		c := client(t)
		prefix = Prefix(t)
		outside = append(outside, sibling(prefix))
		for i := range n {
			require.NoError(t, c.Set(&memcache.Item{Key: fmt.Sprintf("%sk%d", prefix, i), Value: []byte("v"), Expiration: 3600}))
		}
		for _, k := range outside {
			require.NoError(t, probe.Set(&memcache.Item{Key: k, Value: []byte("keep"), Expiration: 3600}))
		}
	})
	t.Cleanup(func() {
		for _, k := range outside {
			_ = probe.Delete(k)
		}
	})
	for i := range n {
		_, err := probe.Get(fmt.Sprintf("%sk%d", prefix, i))
		require.ErrorIs(t, err, memcache.ErrCacheMiss)
	}
	for _, k := range outside {
		_, err := probe.Get(k)
		require.NoError(t, err, "%s must survive", k)
	}
}

func TestMemcachedClientCleanupDeletesOnlyItsPrefix(t *testing.T) {
	t.Parallel()
	testMemcachedCleanup(t, MemcachedAddr(t), func(t *testing.T) *memcache.Client { return MemcachedClient(t) })
}

// The same on a private server, so the cleanup is tested wherever memcached is installed.
func TestMemcachedCleanupOnPrivateServer(t *testing.T) {
	t.Parallel()
	srv := StartMemcached(t)
	testMemcachedCleanup(t, srv.Addr(), func(t *testing.T) *memcache.Client {
		c := memcache.New(srv.Addr())
		prefix := Prefix(t)
		t.Cleanup(func() {
			_, err := deleteMemcachedPrefix(context.Background(), srv.Addr(), prefix)
			require.NoError(t, err)
		})
		return c
	})
}

func TestPostgresPrimaryStreamsToReplica(t *testing.T) {
	t.Parallel()
	primary, err := sql.Open("pgx", PGPrimaryDSN(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = primary.Close() })
	replica, err := sql.Open("pgx", PGReplicaDSN(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = replica.Close() })
	ctx := t.Context()

	var recovering bool
	require.NoError(t, primary.QueryRowContext(ctx, "select pg_is_in_recovery()").Scan(&recovering))
	require.False(t, recovering, "the primary must accept writes")
	require.NoError(t, replica.QueryRowContext(ctx, "select pg_is_in_recovery()").Scan(&recovering))
	require.True(t, recovering, "the replica must be a standby")

	table := "scaleout_testenv_" + randHex(t)
	_, err = primary.ExecContext(ctx, "create table "+table+" (v text)")
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = primary.ExecContext(context.Background(), "drop table if exists "+table) })
	_, err = primary.ExecContext(ctx, "insert into "+table+" values ('hello')")
	require.NoError(t, err)

	var got string
	require.Eventually(t, func() bool {
		return replica.QueryRowContext(ctx, "select v from "+table).Scan(&got) == nil
	}, 20*time.Second, 20*time.Millisecond, "the insert never reached the replica")
	require.Equal(t, "hello", got)

	_, err = replica.ExecContext(ctx, "insert into "+table+" values ('no')")
	require.Error(t, err, "a standby must refuse writes")
}
