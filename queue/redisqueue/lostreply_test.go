package redisqueue_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// isEnqueueScript matches the request that runs the enqueue script.
func isEnqueueScript(req []byte) bool { return bytes.Contains(bytes.ToLower(req), []byte("evalsha")) }

// proxiedQueue returns a Queue whose client goes through a FaultProxy in
// front of the shared Redis, the proxy, and a direct client on the same
// keys to look at what Redis holds.
func proxiedQueue(t *testing.T, opt redis.Options) (*redisqueue.Queue, *testenv.FaultProxy, *redis.Client) {
	t.Helper()
	direct := testenv.RedisClient(t) // also deletes the test's keys at the end
	proxy := testenv.StartFaultProxy(t, testenv.RedisAddr(t))
	opt.Addr = proxy.Addr()
	opt.ContextTimeoutEnabled = true
	rdb := redis.NewClient(&opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return newQueue(t, rdb, redisqueue.Config{}), proxy, direct
}

// requireOneJob dequeues id and then finds the queue empty.
func requireOneJob(t *testing.T, q *redisqueue.Queue, qname string, id queue.JobID) {
	t.Helper()
	d, err := q.Dequeue(ctxTimeout(t, 2*time.Second), []string{qname}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, id, d.ID)
	require.NoError(t, d.Ack(t.Context(), nil))
	_, err = q.Dequeue(ctxTimeout(t, 200*time.Millisecond), []string{qname}, time.Minute)
	require.ErrorIs(t, err, context.DeadlineExceeded, "a second job was enqueued")
}

// The reply to an Enqueue is lost after Redis stored the job: the caller
// gets an error although the job exists. Retrying with the same Job.ID
// returns the same job, with no error, and exactly one job runs.
func TestEnqueueRetryAfterLostReply(t *testing.T) {
	q, proxy, direct := proxiedQueue(t, redis.Options{MaxRetries: -1})
	ctx := t.Context()
	// Load the script first, so that the dropped EVALSHA is the one that
	// enqueues (not a NOSCRIPT answer).
	_, err := q.Enqueue(ctx, queue.Job{Queue: "warm", Type: "x"})
	require.NoError(t, err)

	job := queue.Job{Queue: "lost", Type: "ship", ID: "order:1", Payload: []byte("to: Ada")}
	proxy.DropReply(isEnqueueScript)
	_, err = q.Enqueue(ctx, job)
	require.Error(t, err, "the reply was dropped")
	require.EqualValues(t, 1, proxy.DroppedReplies())
	require.NoError(t, q.Close())

	// The failed Enqueue did enqueue: the ambiguous outcome the package
	// documents.
	q2 := newQueue(t, direct, redisqueue.Config{})
	id := queue.JobID("lost/order:1")
	info, err := q2.Status(ctx, id)
	require.NoError(t, err, "the job of the failed Enqueue is in Redis")
	require.Equal(t, queue.StateReady, info.State)

	// The caller retries: the same job, no error, one job.
	got, err := q2.Enqueue(ctx, job)
	require.NoError(t, err, "a retry after a lost reply must not be an error")
	require.Equal(t, id, got)
	requireOneJob(t, q2, "lost", id)
}

// go-redis retries a command whose connection broke on its own (MaxRetries,
// 3 by default), so the enqueue script may run twice for one Enqueue. A job
// without a caller-chosen ID must still be one job, and Enqueue must not
// call it a duplicate of itself.
func TestEnqueueClientRetryAfterLostReply(t *testing.T) {
	q, proxy, _ := proxiedQueue(t, redis.Options{}) // go-redis's default retries
	ctx := t.Context()
	_, err := q.Enqueue(ctx, queue.Job{Queue: "warm", Type: "x"})
	require.NoError(t, err)

	proxy.DropReply(isEnqueueScript)
	id, err := q.Enqueue(ctx, queue.Job{Queue: "lost2", Type: "x", Payload: []byte("p")})
	require.EqualValues(t, 1, proxy.DroppedReplies(), "the first reply was dropped")
	require.NoError(t, err, "go-redis's own retry found the job it had stored")
	requireOneJob(t, q, "lost2", id)
}
