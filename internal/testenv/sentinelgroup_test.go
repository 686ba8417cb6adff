package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/redisha"
)

// TestRedisSentinelClient needs the shared group: under SCALEOUT_REQUIRE_SERVICES=1
// (CI) a missing or broken one fails here.
func TestRedisSentinelClient(t *testing.T) {
	t.Parallel()
	c := RedisSentinelClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := Prefix(t) + "k"
	require.NoError(t, c.Set(ctx, key, "v", 0).Err())
	require.Equal(t, "v", c.Get(ctx, key).Val())
	role, err := c.Do(ctx, "ROLE").Slice()
	require.NoError(t, err)
	require.Equal(t, "master", role[0], "a FailoverClient talks to the master")
}

// TestSentinelGroupSwitches fails a private group over both ways the package offers
// and checks that the group ends healthy each time with the acknowledged,
// replicated data on the new master.
func TestSentinelGroupSwitches(t *testing.T) {
	t.Parallel()
	g := StartSentinelGroup(t, SentinelGroupOptions{})
	c := g.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.Set(ctx, "k", "1", 0).Err())
	require.NoError(t, c.Wait(ctx, 1, 5*time.Second).Err())

	first := g.Master()
	second := g.Failover()
	require.NotEqual(t, first.Addr(), second.Addr(), "SENTINEL FAILOVER must switch")
	require.Equal(t, "1", c.Get(ctx, "k").Val())
	require.NoError(t, c.Set(ctx, "k", "2", 0).Err(), "the client follows the switch")
	require.NoError(t, c.Wait(ctx, 1, 5*time.Second).Err())

	start := time.Now()
	killed := g.KillMaster()
	require.Equal(t, second, killed)
	third := g.WaitSwitched(killed)
	t.Logf("kill to a new master taking writes: %v (down-after 1 s)", time.Since(start))
	require.Equal(t, first.Addr(), third.Addr())
	require.Equal(t, "2", c.Get(ctx, "k").Val())
	g.Rejoin(killed)
	require.Equal(t, third, g.Master())
}

// TestSentinelGroupCutReplication: a write made while replication is cut reaches the
// master only, and is lost when that master dies: the case fencing must survive.
func TestSentinelGroupCutReplication(t *testing.T) {
	t.Parallel()
	g := StartSentinelGroup(t, SentinelGroupOptions{})
	c := g.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.Set(ctx, "k", "kept", 0).Err())
	require.NoError(t, c.Wait(ctx, 1, 5*time.Second).Err())
	heal := g.CutReplication()
	require.NoError(t, c.Set(ctx, "k", "lost", 0).Err())
	n, err := c.Wait(ctx, 1, 100*time.Millisecond).Result()
	require.NoError(t, err)
	require.Zero(t, n, "no replica may have the write")
	killed := g.KillMaster()
	heal()
	m := g.WaitSwitched(killed)
	t.Logf("killed %s, new master %s, sentinels %v", killed.Addr(), m.Addr(), g.SentinelAddrs())
	require.Equal(t, "kept", c.Get(ctx, "k").Val(), "the acknowledged write is lost")
	g.Rejoin(killed)
}

// TestClusterSwitches fails a shard of a private cluster over both ways and checks
// that it ends healthy, with the replicated data served by the new master.
func TestClusterSwitches(t *testing.T) {
	t.Parallel()
	cl := StartCluster(t, ClusterOptions{})
	c := cl.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const key = "{k}v"
	require.NoError(t, c.Set(ctx, key, "1", 0).Err())
	first := cl.MasterOf(key)
	second := cl.FailoverShard(key)
	require.NotEqual(t, first, second)
	// go-redis follows the switch at the old master's first MOVED or READONLY
	// reply, which it may return (its redirections are few and quick).
	require.NoError(t, redisha.Retry(ctx, c, func(ctx context.Context) error {
		_, err := redisha.Durable(ctx, c, key, 1, 5*time.Second, func(p redis.Pipeliner) { p.Set(ctx, key, "2", 0) })
		return err
	}))
	require.Equal(t, "2", c.Get(ctx, key).Val(), "the client follows the switch")

	start := time.Now()
	killed := cl.KillMaster(key)
	require.Equal(t, second, killed)
	third := cl.WaitSwitched(killed, key)
	t.Logf("kill to a new master serving the slot: %v (node timeout 1 s)", time.Since(start))
	require.Equal(t, first, third)
	// go-redis learns of a dead master's replacement only at a state reload
	// (every 10 s, or at a MOVED or READONLY reply, which a dead node never
	// sends): until then every call goes to the dead node.
	c.ReloadState(ctx)
	require.Equal(t, "2", c.Get(ctx, key).Val())
	cl.Rejoin(killed)
	require.Equal(t, third, cl.MasterOf(key))
}
