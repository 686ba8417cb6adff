package redisqueue_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// drainQueue dequeues and acks the jobs of qname until none comes for
// 300 ms, counting the deliveries of each.
func drainQueue(t *testing.T, q *redisqueue.Queue, qname string) map[queue.JobID]int {
	t.Helper()
	got := map[queue.JobID]int{}
	for {
		d, err := q.Dequeue(ctxTimeout(t, 300*time.Millisecond), []string{qname}, time.Minute)
		if err != nil {
			return got
		}
		got[d.ID]++
		require.NoError(t, d.Ack(t.Context(), nil))
	}
}

// The reply to an AckThen is lost after Redis acked the job and stored
// its next jobs. The script runs again (the Queue's own retry, or
// go-redis's), finds its nonce in the acked job and reports the first
// run's success: the call succeeds, and each next job exists once, a
// generated ID's job and a unique one alike. A second AckThen of the
// delivery is refused and enqueues nothing.
func TestAckThenAfterLostReply(t *testing.T) {
	for _, retries := range []int{-1, 0} { // the Queue's retry; go-redis's own
		t.Run(fmt.Sprintf("MaxRetries=%d", retries), func(t *testing.T) {
			q, proxy, _ := proxiedQueue(t, redis.Options{MaxRetries: retries})
			ctx := t.Context()
			// Load the script, so that the dropped EVALSHA is one that runs.
			warm := leaseOne(t, q, "chain-warm")
			_, err := warm.AckThen(ctx, nil, queue.Job{Queue: "chain-warm", Type: "x"})
			require.NoError(t, err)

			d := leaseOne(t, q, "chain")
			proxy.DropReply(containing("result-of-chain"))
			dropped := proxy.DroppedReplies()
			ids, err := d.AckThen(ctx, []byte("result-of-chain"),
				queue.Job{Queue: "chain", Type: "publish", Payload: []byte("p")},
				queue.Job{Queue: "chain", Type: "notify", UniqueKey: "u", UniqueFor: time.Hour})
			require.NoError(t, err, "the step took effect; the retry must say so")
			require.Equal(t, dropped+1, proxy.DroppedReplies(), "the first reply was dropped")
			require.Len(t, ids, 2)
			info, err := q.Status(ctx, d.ID)
			require.NoError(t, err)
			require.Equal(t, queue.StateDone, info.State)
			require.Equal(t, "result-of-chain", string(info.Result))

			_, err = d.AckThen(ctx, nil, queue.Job{Queue: "chain", Type: "again"})
			require.ErrorIs(t, err, queue.ErrLeaseLost, "a second AckThen of the delivery")
			require.Equal(t, map[queue.JobID]int{ids[0]: 1, ids[1]: 1}, drainQueue(t, q, "chain"), "each next job once")
		})
	}
}

// A next job of another queue is refused with a *CrossQueueError (and
// queue.ErrUnsupported) before anything is sent, on every topology, so
// that what passes on one server does not fail on a Cluster, where the
// other queue's keys are in another slot. The job stays leased to the
// delivery, and the other queue gets nothing.
func TestAckThenOtherQueue(t *testing.T) {
	for _, topo := range testenv.RedisTopologies {
		t.Run(topo.Name, func(t *testing.T) {
			q := newQueue(t, topo.Client(t), redisqueue.Config{Prefix: testenv.Prefix(t)})
			ctx := t.Context()
			d := leaseOne(t, q, "home")
			_, err := d.AckThen(ctx, nil, queue.Job{Queue: "home", Type: "a"}, queue.Job{Queue: "away", Type: "b", ID: "b"})
			require.ErrorIs(t, err, queue.ErrUnsupported)
			var cq *redisqueue.CrossQueueError
			require.True(t, errors.As(err, &cq), "%v", err)
			require.Equal(t, redisqueue.CrossQueueError{Index: 1, Queue: "home", Next: "away"}, *cq)

			info, err := q.Status(ctx, d.ID)
			require.NoError(t, err)
			require.Equal(t, queue.StateActive, info.State, "a refused AckThen changed the job")
			_, err = q.Status(ctx, queue.FormatID("away", "b"))
			require.ErrorIs(t, err, queue.ErrNotFound)
			require.Empty(t, drainQueue(t, q, "away"))
			require.NoError(t, d.Ack(ctx, nil), "the delivery is still current")
			require.Empty(t, drainQueue(t, q, "home"), "the refused step's job in the home queue was stored")
		})
	}
}
