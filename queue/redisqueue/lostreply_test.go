package redisqueue_test

import (
	"bytes"
	"context"
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

// The reply to an Enqueue is lost after Redis stored the job. The Queue
// rides out the broken connection itself (redisha.Retry, even with
// go-redis's retries off): the script runs again, finds the job it
// stored, and the Enqueue succeeds with one job.
func TestEnqueueRetryAfterLostReply(t *testing.T) {
	q, proxy, _ := proxiedQueue(t, redis.Options{MaxRetries: -1})
	ctx := t.Context()
	// Load the script first, so that the dropped EVALSHA is the one that
	// enqueues (not a NOSCRIPT answer).
	_, err := q.Enqueue(ctx, queue.Job{Queue: "warm", Type: "x"})
	require.NoError(t, err)

	proxy.DropReply(isEnqueueScript)
	id, err := q.Enqueue(ctx, queue.Job{Queue: "lost", Type: "ship", Payload: []byte("to: Ada")})
	require.EqualValues(t, 1, proxy.DroppedReplies(), "the first reply was dropped")
	require.NoError(t, err, "the Queue's own retry found the job it had stored")
	requireOneJob(t, q, "lost", id)
}

// An Enqueue whose context ends while its request is on its way fails,
// and yet Redis stores the job when the request arrives: the ambiguous
// outcome the queue package documents. Retrying with the same Job.ID
// returns the same job, with no error, and exactly one job runs.
func TestEnqueueRetryAfterDeadline(t *testing.T) {
	q, proxy, direct := proxiedQueue(t, redis.Options{MaxRetries: -1})
	ctx := t.Context()
	_, err := q.Enqueue(ctx, queue.Job{Queue: "warm", Type: "x"})
	require.NoError(t, err)

	require.NoError(t, q.SetLimits(ctx, "late", queue.Limits{})) // registers the queue

	job := queue.Job{Queue: "late", Type: "ship", ID: "order:1", Payload: []byte("to: Ada")}
	const delay = 300 * time.Millisecond
	proxy.SetDelay(delay)
	_, err = q.Enqueue(ctxTimeout(t, delay/3), job)
	require.Error(t, err, "the Enqueue's deadline passed before any reply")
	time.Sleep(2 * delay) // the request reaches Redis
	proxy.SetDelay(0)
	require.NoError(t, q.Close())

	// The failed Enqueue did enqueue.
	q2 := newQueue(t, direct, redisqueue.Config{})
	id := queue.FormatID("late", "order:1")
	info, err := q2.Status(ctx, id)
	require.NoError(t, err, "the job of the failed Enqueue is in Redis")
	require.Equal(t, queue.StateReady, info.State)

	// The caller retries: the same job, no error, one job.
	got, err := q2.Enqueue(ctx, job)
	require.NoError(t, err, "a retry after a failed Enqueue must not be an error")
	require.Equal(t, id, got)
	requireOneJob(t, q2, "late", id)
}

// The reply to a Dequeue's script is lost after it leased a job. The
// Queue runs the script again with the call's nonce (redisha.Retry; with
// go-redis's retries it would be go-redis), which answers the same
// delivery instead of leasing a second job: no job stays leased to
// nobody, and no attempt is counted twice.
func TestDequeueRetryAfterLostReply(t *testing.T) {
	for _, retries := range []int{-1, 0} { // the Queue's retry; go-redis's own
		t.Run(fmt.Sprintf("MaxRetries=%d", retries), func(t *testing.T) {
			q, proxy, _ := proxiedQueue(t, redis.Options{MaxRetries: retries})
			ctx := t.Context()
			settleOnce(t, q, "dq") // loads the scripts
			a, err := q.Enqueue(ctx, queue.Job{Queue: "dq", Type: "x"})
			require.NoError(t, err)
			b, err := q.Enqueue(ctx, queue.Job{Queue: "dq", Type: "x"})
			require.NoError(t, err)

			proxy.DropReply(isEnqueueScript) // every script call is an EVALSHA
			dropped := proxy.DroppedReplies()
			d, err := q.Dequeue(ctxTimeout(t, 5*time.Second), []string{"dq"}, time.Minute)
			require.NoError(t, err)
			require.Equal(t, dropped+1, proxy.DroppedReplies(), "the first reply was dropped")
			require.Equal(t, a, d.ID, "the run again answers the job the lost reply leased")
			require.Equal(t, 1, d.Attempt)
			d2, err := q.Dequeue(ctxTimeout(t, 2*time.Second), []string{"dq"}, time.Minute)
			require.NoError(t, err, "the second job is still ready")
			require.Equal(t, b, d2.ID)
			require.Equal(t, 1, d2.Attempt)
			require.NoError(t, d.Ack(ctx, nil), "the delivery answered again holds the lease")
			require.NoError(t, d2.Ack(ctx, nil))
		})
	}
}

// A Dequeue whose context ends while its request is on its way returns
// its error at once, and gives back the job its script leases when the
// request arrives: the job is ready again, its attempt not counted, long
// before its lease would run out.
func TestDequeueGiveBackAfterDeadline(t *testing.T) {
	q, proxy, direct := proxiedQueue(t, redis.Options{MaxRetries: -1})
	ctx := t.Context()
	settleOnce(t, q, "gb")
	a, err := q.Enqueue(ctx, queue.Job{Queue: "gb", Type: "x"})
	require.NoError(t, err)
	const delay = 200 * time.Millisecond
	proxy.SetDelay(delay)
	_, err = q.Dequeue(ctxTimeout(t, delay/2), []string{"gb"}, time.Hour)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	proxy.SetDelay(0)
	q2 := newQueue(t, direct, redisqueue.Config{})
	start := time.Now()
	d, err := q2.Dequeue(ctxTimeout(t, 5*time.Second), []string{"gb"}, time.Minute)
	require.NoError(t, err, "the job leased for the failed Dequeue is given back")
	require.Equal(t, a, d.ID)
	require.Equal(t, 1, d.Attempt, "the failed Dequeue's attempt is not counted")
	t.Logf("given back %v after the Dequeue failed (lease 1 h)", time.Since(start))
	require.NoError(t, d.Ack(ctx, nil))
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

// settleOnce dequeues a job of qname and acks it, so that the settling
// scripts are loaded and a dropped EVALSHA is one that runs.
func settleOnce(t *testing.T, q *redisqueue.Queue, qname string) {
	t.Helper()
	ctx := t.Context()
	for _, settle := range []func(d *queue.Delivery) error{
		func(d *queue.Delivery) error { return d.Ack(ctx, nil) },
		func(d *queue.Delivery) error { return d.Fail(ctx, queue.Permanent(errors.New("warm"))) },
		func(d *queue.Delivery) error { return d.Release(ctx) },
		func(d *queue.Delivery) error { return d.Snooze(ctx, 0) },
		func(d *queue.Delivery) error { _, err := q.AckAndDequeue(ctx, d, nil, time.Minute); return err },
	} {
		_, err := q.Enqueue(ctx, queue.Job{Queue: qname + "-warm", Type: "x"})
		require.NoError(t, err)
		d, err := q.Dequeue(ctxTimeout(t, 2*time.Second), []string{qname + "-warm"}, time.Minute)
		require.NoError(t, err)
		require.NoError(t, settle(d))
	}
}

// leaseOne enqueues a job of qname and leases it.
func leaseOne(t *testing.T, q *redisqueue.Queue, qname string) *queue.Delivery {
	t.Helper()
	_, err := q.Enqueue(t.Context(), queue.Job{Queue: qname, Type: "x"})
	require.NoError(t, err)
	d, err := q.Dequeue(ctxTimeout(t, 2*time.Second), []string{qname}, time.Minute)
	require.NoError(t, err)
	return d
}

// containing matches a request that carries s.
func containing(s string) func([]byte) bool {
	return func(req []byte) bool { return bytes.Contains(req, []byte(s)) }
}

// go-redis retries a command whose connection broke on its own, so a
// settling script may run twice for one call: the retry must report the
// first run's success, not ErrLeaseLost (documented as "changing
// nothing") for a settlement that took effect. A second call of the same
// delivery is still refused. (Found by the chaos queue model: a job done
// with the result of an Ack its worker saw refused.)
func TestSettleClientRetryAfterLostReply(t *testing.T) {
	q, proxy, _ := proxiedQueue(t, redis.Options{}) // go-redis's default retries
	ctx := t.Context()
	settleOnce(t, q, "settle")

	t.Run("Ack", func(t *testing.T) {
		d := leaseOne(t, q, "ack")
		proxy.DropReply(containing("result-of-ack"))
		dropped := proxy.DroppedReplies()
		require.NoError(t, d.Ack(ctx, []byte("result-of-ack")), "the Ack took effect; go-redis's retry must say so")
		require.Equal(t, dropped+1, proxy.DroppedReplies(), "the first reply was dropped")
		info, err := q.Status(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, queue.StateDone, info.State)
		require.Equal(t, "result-of-ack", string(info.Result))
		require.ErrorIs(t, d.Ack(ctx, nil), queue.ErrLeaseLost, "a second Ack of the delivery")
	})
	t.Run("AckAndDequeue", func(t *testing.T) {
		d := leaseOne(t, q, "ackdq")
		proxy.DropReply(containing("result-of-ackdq"))
		dropped := proxy.DroppedReplies()
		_, err := q.AckAndDequeue(ctx, d, []byte("result-of-ackdq"), time.Minute)
		require.NoError(t, err, "the Ack took effect; go-redis's retry must say so")
		require.Equal(t, dropped+1, proxy.DroppedReplies(), "the first reply was dropped")
		info, err := q.Status(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, queue.StateDone, info.State)
		require.Equal(t, "result-of-ackdq", string(info.Result))
		_, err = q.AckAndDequeue(ctx, d, nil, time.Minute)
		require.ErrorIs(t, err, queue.ErrLeaseLost, "a second Ack of the delivery")
	})
	t.Run("Fail", func(t *testing.T) {
		d := leaseOne(t, q, "fail")
		proxy.DropReply(containing("cause-of-fail"))
		dropped := proxy.DroppedReplies()
		require.NoError(t, d.Fail(ctx, errors.New("cause-of-fail")), "the Fail took effect; go-redis's retry must say so")
		require.Equal(t, dropped+1, proxy.DroppedReplies(), "the first reply was dropped")
		info, err := q.Status(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, "cause-of-fail", info.LastErr)
		require.Equal(t, 1, info.Attempt)
		require.ErrorIs(t, d.Fail(ctx, errors.New("again")), queue.ErrLeaseLost, "a second Fail of the delivery")
	})
	t.Run("Release", func(t *testing.T) {
		d := leaseOne(t, q, "release-me")
		proxy.DropReply(containing("release-me"))
		dropped := proxy.DroppedReplies()
		require.NoError(t, d.Release(ctx), "the Release took effect; go-redis's retry must say so")
		require.Equal(t, dropped+1, proxy.DroppedReplies(), "the first reply was dropped")
		info, err := q.Status(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, queue.StateReady, info.State)
		require.Equal(t, 0, info.Attempt)
		require.ErrorIs(t, d.Release(ctx), queue.ErrLeaseLost, "a second Release of the delivery")
	})
	t.Run("Snooze", func(t *testing.T) {
		d := leaseOne(t, q, "snooze-me")
		proxy.DropReply(containing("snooze-me"))
		dropped := proxy.DroppedReplies()
		require.NoError(t, d.Snooze(ctx, time.Hour), "the Snooze took effect; go-redis's retry must say so")
		require.Equal(t, dropped+1, proxy.DroppedReplies(), "the first reply was dropped")
		info, err := q.Status(ctx, d.ID)
		require.NoError(t, err)
		require.Equal(t, queue.StateScheduled, info.State)
		require.Equal(t, 0, info.Attempt)
		require.ErrorIs(t, d.Snooze(ctx, time.Hour), queue.ErrLeaseLost, "a second Snooze of the delivery")
	})
}

// The reply to a DeleteDead is lost after Redis deleted the job; go-redis
// (retries on, as a user's client has by default) runs the script again,
// which finds its own deletion and succeeds, rather than reporting that
// there is no such dead job. Another call's DeleteDead of the deleted job
// still gets ErrNotFound.
func TestDeleteDeadAfterLostReply(t *testing.T) {
	q, proxy, direct := proxiedQueue(t, redis.Options{})
	ctx := t.Context()
	id, err := q.Enqueue(ctx, queue.Job{Queue: "dd", Type: "x", MaxAttempts: 1})
	require.NoError(t, err)
	d, err := q.Dequeue(ctxTimeout(t, 2*time.Second), []string{"dd"}, time.Minute)
	require.NoError(t, err)
	require.NoError(t, d.Fail(ctx, queue.Permanent(errors.New("broken"))))
	info, err := q.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, queue.StateDead, info.State)

	proxy.DropReply(isEnqueueScript) // any script call: the DeleteDead's
	require.NoError(t, q.DeleteDead(ctx, id), "the retried script found its own deletion")
	require.EqualValues(t, 1, proxy.DroppedReplies(), "the first reply was dropped")
	_, err = q.Status(ctx, id)
	require.ErrorIs(t, err, queue.ErrNotFound)
	require.ErrorIs(t, q.DeleteDead(ctx, id), queue.ErrNotFound, "a second DeleteDead")
	n, err := direct.ZCard(ctx, testenv.Prefix(t)+"{dd}:dead").Result()
	require.NoError(t, err)
	require.Zero(t, n, "the dead set still names the job")
}

// The Inspector rides out refused connections (a master restarting or
// switching) within its context, with go-redis's retries off, as the
// Queue's other calls do: Counts, List, Pause, Queues and DeleteDead made
// while the server refuses connections answer once it is back.
func TestInspectorRidesOutRefusedConnections(t *testing.T) {
	q, proxy, _ := proxiedQueue(t, redis.Options{MaxRetries: -1})
	ctx := t.Context()
	id, err := q.Enqueue(ctx, queue.Job{Queue: "iq", Type: "x", MaxAttempts: 1})
	require.NoError(t, err)
	d, err := q.Dequeue(ctxTimeout(t, 2*time.Second), []string{"iq"}, time.Minute)
	require.NoError(t, err)
	require.NoError(t, d.Fail(ctx, queue.Permanent(errors.New("broken"))))

	calls := map[string]func(ctx context.Context) error{
		"Counts": func(ctx context.Context) error { _, err := q.Counts(ctx, "iq"); return err },
		"List": func(ctx context.Context) error {
			_, err := q.List(ctx, "iq", queue.StateDead, "", 10)
			return err
		},
		"Pause":      func(ctx context.Context) error { return q.Pause(ctx, "iq") },
		"Resume":     func(ctx context.Context) error { return q.Resume(ctx, "iq") },
		"Queues":     func(ctx context.Context) error { _, err := q.Queues(ctx); return err },
		"DeleteDead": func(ctx context.Context) error { return q.DeleteDead(ctx, id) },
	}
	for _, name := range []string{"Counts", "List", "Pause", "Resume", "Queues", "DeleteDead"} {
		proxy.Refuse(true)
		proxy.ResetAll() // pooled connections break too, as a restart breaks them
		healed := time.AfterFunc(300*time.Millisecond, func() { proxy.Refuse(false) })
		err := calls[name](ctxTimeout(t, 10*time.Second))
		healed.Stop()
		proxy.Refuse(false)
		require.NoError(t, err, "%s while the server refused connections for 300 ms", name)
	}
}
