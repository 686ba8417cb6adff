//go:build unix

package main

// Real-time tests in this file: TestProcessFarm (the farm as real
// processes on the real servers, killed with SIGKILL) and
// TestFarmOnRedisCluster (a real Redis Cluster and
// PostgreSQL); neither asserts a duration: the waits are generous bounds
// against a hang.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
)

// TestProcessFarm is the end-to-end test: the farm built and run as
// separate processes (-procs) on the real servers of scripts/services.sh,
// driven by logged-in users while a clone and then the active balancer
// are killed with SIGKILL. The dashboard's test in a real browser is in
// the module browsertest.
func TestProcessFarm(t *testing.T) {
	redisAddr, mcAddr := testenv.RedisAddr(t), testenv.MemcachedAddr(t)
	primary, standby := testenv.PGPrimaryDSN(t), testenv.PGReplicaDSN(t)

	bin := filepath.Join(t.TempDir(), "webfarm")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	prefix := "webfarm_" + randomHex(4) + "_"
	t.Cleanup(func() { cleanup(t, redisAddr, primary, prefix) })
	admin, public := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-procs", "-users", "0", "-addr", public, "-admin", admin, "-prefix", prefix,
		"-redis", redisAddr, "-memcached", mcAddr, "-pg-primary", primary, "-pg-replica", standby)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })

	c := farmClient{t: t, admin: admin, public: public}
	exercise(t, c, 8)
	require.Equal(t, "redis+memcached+postgresql", c.state().Mode)
}

// cleanup removes the farm's keys and tables.
func cleanup(t *testing.T, redisAddr, primary, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} { // rediselector puts its role in a hash tag
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			_ = rdb.Del(ctx, iter.Val()).Err()
		}
	}
	dropTables(t, primary, prefix)
}

func dropTables(t *testing.T, primary, prefix string) {
	db := testenv.PostgresDB(t, primary)
	for i := range 10 {
		_, _ = db.Exec(fmt.Sprintf("DROP TABLE IF EXISTS %ss%d", prefix, i))
	}
}

// TestFarmOnRedisCluster runs the farm in this process with its sessions,
// jobs, election and cache on Redis Cluster and its database on the
// PostgreSQL primary and standby, through the same faults.
func TestFarmOnRedisCluster(t *testing.T) {
	addrs := testenv.RedisClusterAddrs(t)
	primary, standby := testenv.PGPrimaryDSN(t), testenv.PGReplicaDSN(t)
	prefix := "webfarm_" + randomHex(4) + "_"
	t.Cleanup(func() { cleanupCluster(t, addrs, primary, prefix) })
	c := startFarm(t, "-prefix", prefix, "-redis-cluster", strings.Join(addrs, ","), "-pg-primary", primary, "-pg-replica", standby)
	exercise(t, c, 8)
	require.Equal(t, "redis cluster+postgresql", c.state().Mode)
}

func cleanupCluster(t *testing.T, addrs []string, primary, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	defer rdb.Close()
	_ = rdb.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} {
			iter := node.Scan(ctx, 0, pattern, 1000).Iterator()
			for iter.Next(ctx) {
				_ = rdb.Del(ctx, iter.Val()).Err()
			}
		}
		return nil
	})
	dropTables(t, primary, prefix)
}
