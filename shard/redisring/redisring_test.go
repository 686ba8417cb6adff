package redisring_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/shard"
	"github.com/scaleout/scaleout/shard/redisring"
)

func TestConsistentHashIgnoresShardOrder(t *testing.T) {
	for name, build := range map[string]redisring.Builder{
		"rendezvous": redisring.Rendezvous, "maglev": redisring.Maglev,
		"ring": redisring.Ring, "bounded": redisring.Bounded,
	} {
		t.Run(name, func(t *testing.T) {
			a := redisring.ConsistentHash(build)([]string{"a", "b", "c", "d"})
			b := redisring.ConsistentHash(build)([]string{"d", "b", "a", "c"})
			for i := range 2000 {
				k := fmt.Sprintf("key:%d", i)
				require.Equal(t, a.Get(k), b.Get(k))
				require.Contains(t, []string{"a", "b", "c", "d"}, a.Get(k))
			}
		})
	}
}

func TestConsistentHashWithNoLiveShards(t *testing.T) {
	h := redisring.ConsistentHash(redisring.Maglev)(nil)
	require.Equal(t, "", h.Get("anything"))
}

// TestRingOnRealServers puts a go-redis Ring with a Maglev hash in front of
// three private Redis servers: every key is stored on the server Maglev
// names; when one server dies, go-redis marks it down and the keys of the
// two survivors stay where they are.
func TestRingOnRealServers(t *testing.T) {
	servers := map[string]*testenv.RedisServer{
		"r1": testenv.StartRedis(t, testenv.RedisOptions{}),
		"r2": testenv.StartRedis(t, testenv.RedisOptions{}),
		"r3": testenv.StartRedis(t, testenv.RedisOptions{}),
	}
	addrs := map[string]string{}
	for name, s := range servers {
		addrs[name] = s.Addr()
	}
	ring := redis.NewRing(&redis.RingOptions{
		Addrs:              addrs,
		NewConsistentHash:  redisring.ConsistentHash(redisring.Maglev),
		HeartbeatFrequency: 50 * time.Millisecond,
		DialTimeout:        200 * time.Millisecond,
		ReadTimeout:        200 * time.Millisecond,
		MaxRetries:         -1,
	})
	t.Cleanup(func() { _ = ring.Close() })
	ctx := context.Background()
	prefix := testenv.Prefix(t)

	want, err := shard.NewMaglev(shard.Members("r1", "r2", "r3"), shard.MaglevConfig{})
	require.NoError(t, err)
	const n = 300
	for i := range n {
		require.NoError(t, ring.Set(ctx, fmt.Sprintf("%s%d", prefix, i), i, 0).Err())
	}
	for i := range n {
		k := fmt.Sprintf("%s%d", prefix, i)
		direct := redis.NewClient(&redis.Options{Addr: addrs[want.Shard(k)]})
		require.NoError(t, direct.Get(ctx, k).Err(), "key %s not on %s", k, want.Shard(k))
		require.NoError(t, direct.Close())
	}

	servers["r2"].Kill()
	survivors, err := shard.NewMaglev(shard.Members("r1", "r3"), shard.MaglevConfig{})
	require.NoError(t, err)
	// go-redis marks a shard down after three failed heartbeats.
	require.Eventually(t, func() bool {
		return ring.Set(ctx, prefix+"probe-"+time.Now().String(), 1, 0).Err() == nil && ring.Len() == 2
	}, 10*time.Second, 50*time.Millisecond)

	kept, moved := 0, 0
	for i := range n {
		k := fmt.Sprintf("%s%d", prefix, i)
		require.Contains(t, []string{"r1", "r3"}, survivors.Shard(k))
		if want.Shard(k) == "r2" {
			moved++
			continue
		}
		// Maglev moves a few table entries beyond the dead server's; the
		// rest of the survivors' keys are still found through the ring.
		if survivors.Shard(k) == want.Shard(k) {
			require.NoError(t, ring.Get(ctx, k).Err(), k)
			kept++
		}
	}
	require.Greater(t, kept, (n-moved)*9/10)
	require.True(t, slices.Contains([]string{"r1", "r3"}, survivors.Shard(prefix)))
}
