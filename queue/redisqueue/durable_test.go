package redisqueue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/queuetest"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

func TestWaitReplicasConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true}) // never dialed
	t.Cleanup(func() { _ = c.Close() })
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	t.Cleanup(func() { _ = ring.Close() })
	for _, tc := range []struct {
		name string
		c    redis.UniversalClient
		cfg  redisqueue.Config
		ok   bool
	}{
		{"default", c, redisqueue.Config{}, true},
		{"one replica", c, redisqueue.Config{WaitReplicas: 1}, true},
		{"with timeout", c, redisqueue.Config{WaitReplicas: 2, WaitTimeout: 50 * time.Millisecond}, true},
		{"negative replicas", c, redisqueue.Config{WaitReplicas: -1}, false},
		{"negative timeout", c, redisqueue.Config{WaitReplicas: 1, WaitTimeout: -time.Second}, false},
		{"timeout without replicas", c, redisqueue.Config{WaitTimeout: time.Second}, false},
		{"timeout under a millisecond", c, redisqueue.Config{WaitReplicas: 1, WaitTimeout: time.Microsecond}, false},
		{"a ring cannot wait", redis.UniversalClient(ring), redisqueue.Config{WaitReplicas: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := redisqueue.New(tc.c, tc.cfg)
			if tc.ok {
				require.NoError(t, err)
				require.NoError(t, q.Close())
			} else {
				require.ErrorIs(t, err, queue.ErrInvalidConfig)
			}
		})
	}
}

// TestDurableConformance: the kit passes with every write waiting for a
// replica, on the Sentinel group and the Cluster (one replica per master).
func TestDurableConformance(t *testing.T) {
	for _, topo := range []testenv.RedisTopology{testenv.SentinelTopology, testenv.RedisTopologies[1]} {
		t.Run(topo.Name, func(t *testing.T) {
			rdb := topo.Client(t)
			prefix := testenv.Prefix(t)
			queuetest.Run(t, func(t *testing.T) queue.JobQueue {
				return newQueue(t, rdb, redisqueue.Config{Prefix: prefix, Backoff: shortBackoff, WaitReplicas: 1, WaitTimeout: 5 * time.Second})
			})
		})
	}
}

// TestNotReplicated: with replication cut, every write is applied on the
// master and fails with a *NotReplicatedError after WaitTimeout, carrying
// the count; a Dequeue leases nothing (it gives the job back: a lease on
// the master alone could hand the job's fencing token out twice after a
// failover).
func TestNotReplicated(t *testing.T) {
	t.Parallel()
	g := testenv.StartSentinelGroup(t, testenv.SentinelGroupOptions{})
	q := newQueue(t, g.Client(t), redisqueue.Config{WaitReplicas: 1, WaitTimeout: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acked, err := q.Enqueue(ctx, queue.Job{Queue: "q", Type: "x"})
	require.NoError(t, err)
	d, err := q.Dequeue(ctx, []string{"q"}, time.Minute)
	require.NoError(t, err)

	heal := g.CutReplication()
	start := time.Now()
	id, err := q.Enqueue(ctx, queue.Job{Queue: "q", Type: "x"})
	require.ErrorIs(t, err, redisqueue.ErrNotReplicated)
	var nr *redisqueue.NotReplicatedError
	require.True(t, errors.As(err, &nr), "%v", err)
	require.Equal(t, redisqueue.NotReplicatedError{Acked: 0, Want: 1, Timeout: 100 * time.Millisecond}, *nr)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "WAIT waits its timeout")
	require.NotEmpty(t, id, "the job is on the master: its ID is returned with the error")
	require.ErrorIs(t, d.Ack(ctx, nil), redisqueue.ErrNotReplicated)
	_, err = q.Dequeue(ctx, []string{"q"}, time.Minute)
	require.ErrorIs(t, err, redisqueue.ErrNotReplicated)
	heal()

	info, err := q.Status(ctx, acked)
	require.NoError(t, err)
	require.Equal(t, queue.StateDone, info.State, "the Ack is on the master")
	require.Eventually(t, func() bool { // the give-back runs in the background
		info, err = q.Status(ctx, id)
		return err == nil && info.State == queue.StateReady
	}, 5*time.Second, 10*time.Millisecond, "the Dequeue that failed did not give its job back: %+v, %v", info, err)
	require.Zero(t, info.Attempt)
	// Replication back: the job is delivered, with Attempt 1.
	var got *queue.Delivery
	require.Eventually(t, func() bool {
		got, err = q.Dequeue(ctx, []string{"q"}, time.Minute)
		return err == nil
	}, 20*time.Second, 50*time.Millisecond, "replication never came back: %v", err)
	require.Equal(t, id, got.ID)
	require.Equal(t, 1, got.Attempt)
	require.NoError(t, got.Ack(ctx, nil))
}
