package testenv

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The environment variables of the shared Sentinel group (scripts/services.sh).
const (
	EnvRedisSentinelAddrs  = "SCALEOUT_REDIS_SENTINEL_ADDRS"
	EnvRedisSentinelMaster = "SCALEOUT_REDIS_SENTINEL_MASTER"
)

// RedisSentinelAddrs returns the addresses of the shared group's sentinels.
func RedisSentinelAddrs(t testing.TB) []string {
	t.Helper()
	return splitAddrs(lookupEnv(t, EnvRedisSentinelAddrs))
}

// RedisSentinelMaster returns the name of the shared group's master.
func RedisSentinelMaster(t testing.TB) string {
	t.Helper()
	return lookupEnv(t, EnvRedisSentinelMaster)
}

// RedisSentinelClient returns a Sentinel client (redis.NewFailoverClient, go-redis's
// defaults but ContextTimeoutEnabled, which scaleout's constructors require) on the
// shared group. Its t.Cleanup deletes every key under Prefix(t) on the master and
// closes the client. No test may fail the shared group over: StartSentinelGroup starts
// a private one.
func RedisSentinelClient(t testing.TB) *redis.Client {
	t.Helper()
	addrs, master := RedisSentinelAddrs(t), RedisSentinelMaster(t)
	prefix := Prefix(t)
	c := newFailoverClient(master, addrs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		t.Fatalf("testenv: the Sentinel group %s at %s=%s does not answer: %v (is scripts/services.sh up?)",
			master, EnvRedisSentinelAddrs, strings.Join(addrs, ","), err)
	}
	t.Cleanup(func() {
		defer func() { _ = c.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		cc := newFailoverClient(master, addrs)
		defer func() { _ = cc.Close() }()
		if _, err := deleteRedisPrefix(ctx, cc, prefix, false); err != nil {
			t.Errorf("testenv: deleting keys %s* on Sentinel master %s: %v", prefix, master, err)
		}
	})
	return c
}

func newFailoverClient(master string, sentinels []string) *redis.Client {
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            master,
		SentinelAddrs:         sentinels,
		ContextTimeoutEnabled: true,
	})
}

// SentinelTopology is the shared Sentinel group as a RedisTopology.
var SentinelTopology = RedisTopology{"sentinel", func(t testing.TB) redis.UniversalClient { return RedisSentinelClient(t) }}

// RedisTopologiesWithSentinel are RedisTopologies and the Sentinel group: the
// deployments of a store that claims to run on replicated Redis.
var RedisTopologiesWithSentinel = append(append([]RedisTopology(nil), RedisTopologies...), SentinelTopology)

// EnvFailovers sets how many switches the failover tests of the Redis-backed
// primitives run (see Failovers).
const EnvFailovers = "SCALEOUT_FAILOVERS"

// Failovers returns how many master switches a failover test runs, alternately a
// forced one and a killed master: SCALEOUT_FAILOVERS, default 2 (one of each), so
// that CI stays short and a run for figures can ask for 20.
func Failovers() int {
	if n, err := strconv.Atoi(os.Getenv(EnvFailovers)); err == nil && n > 0 {
		return n
	}
	return 2
}
