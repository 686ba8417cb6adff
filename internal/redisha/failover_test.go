package redisha_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/redisha"
	"github.com/scaleout/scaleout/internal/testenv"
)

var incr = redis.NewScript(`return redis.call('INCR', KEYS[1])`)

// TestDurable: with the replica in sync a durable write is confirmed; with
// replication cut it is applied on the master and reported ErrNotReplicated. On a
// fresh master the script is sent by body (NOSCRIPT).
func TestDurable(t *testing.T) {
	t.Parallel()
	g := testenv.StartSentinelGroup(t, testenv.SentinelGroupOptions{})
	c := g.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := redisha.DurableScript(ctx, c, incr, []string{"n"}, 1, time.Second)
	require.NoError(t, err)
	require.EqualValues(t, 1, v)
	heal := g.CutReplication()
	defer heal()
	start := time.Now()
	v, err = redisha.DurableScript(ctx, c, incr, []string{"n"}, 1, 200*time.Millisecond)
	require.ErrorIs(t, err, redisha.ErrNotReplicated)
	require.EqualValues(t, 2, v, "the write is applied on the master all the same")
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "WAIT waits its timeout")
	_, err = redisha.Durable(ctx, c, "n", 0, 0, func(p redis.Pipeliner) { p.Incr(ctx, "n") })
	require.NoError(t, err, "replicas 0 does not wait")
}

func TestDurableCluster(t *testing.T) {
	t.Parallel()
	c := testenv.RedisClusterClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, k := range []string{"{a}n", "{b}n", "{c}n"} { // three slots, three masters
		key := testenv.Prefix(t) + k
		v, err := redisha.DurableScript(ctx, c, incr, []string{key}, 1, 5*time.Second)
		require.NoError(t, err)
		require.EqualValues(t, 1, v)
	}
	require.ErrorIs(t, redisha.CheckWait(redis.NewRing(&redis.RingOptions{}), 1), redisha.ErrWaitUnsupported)
	require.NoError(t, redisha.CheckWait(c, 1))
}

// TestRetryAcrossKilledMaster: a write retried with Retry succeeds through the
// SIGKILL of the master, on Sentinel and on a Cluster, and the time from the kill
// to its success is the switch's (on a Cluster without Retry's reload go-redis
// would keep dialling the dead node for up to 10 s).
func TestRetryAcrossKilledMaster(t *testing.T) {
	t.Parallel()
	t.Run("sentinel", func(t *testing.T) {
		t.Parallel()
		g := testenv.StartSentinelGroup(t, testenv.SentinelGroupOptions{})
		c := g.Client(t)
		require.NoError(t, c.Set(context.Background(), "k", "v", 0).Err())
		killed := g.KillMaster()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, redisha.Retry(ctx, c, func(ctx context.Context) error { return c.Set(ctx, "k", "w", 0).Err() }))
		t.Logf("sentinel: kill to first successful write %v (down-after 1 s)", time.Since(start))
		g.WaitSwitched(killed)
		g.Rejoin(killed)
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		cl := testenv.StartCluster(t, testenv.ClusterOptions{})
		c := cl.Client(t)
		const key = "{k}v"
		require.NoError(t, c.Set(context.Background(), key, "v", 0).Err())
		killed := cl.KillMaster(key)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, redisha.Retry(ctx, c, func(ctx context.Context) error { return c.Set(ctx, key, "w", 0).Err() }))
		took := time.Since(start)
		t.Logf("cluster: kill to first successful write %v (node timeout 1 s)", took)
		require.Less(t, took, 8*time.Second, "the slot map is reloaded, not left stale for 10 s")
		cl.WaitSwitched(killed, key)
		cl.Rejoin(killed)
	})
}
