package redisqueue_test

// Real-time tests in this file: TestWaitRidesOutTransientErrors and
// TestWaitReturnsPermanentErrors (a real Redis; no duration asserted,
// only generous deadlines for a hang), and TestWaitAcrossRedisRestart (a real
// Redis killed and restarted: it checks the Wait is still blocked after
// 1 s of the server being down, and asserts no duration).

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// replyError is an error reply of the server, as go-redis returns one.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

// failStatusReads makes the next n pipelines that read a job's hash (Wait's
// status reads) fail with err, as the client would report it, before
// anything is sent.
type failStatusReads struct {
	n   atomic.Int64
	err error
}

func (h *failStatusReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failStatusReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}

func (h *failStatusReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && strings.EqualFold(cmds[0].Name(), "hgetall") && h.n.Add(-1) >= 0 {
			for _, c := range cmds {
				c.SetErr(h.err)
			}
			return h.err
		}
		return next(ctx, cmds)
	}
}

// A waiter rides out every failure that passes on its own (a restart, a
// failover, a Cluster resharding) and returns the job's end, however its
// reads of the job's status fail in between.
func TestWaitRidesOutTransientErrors(t *testing.T) {
	errs := []error{
		io.EOF,
		io.ErrUnexpectedEOF,
		&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
		&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
		redis.ErrPoolTimeout,
		replyError("LOADING Redis is loading the dataset in memory"),
		replyError("READONLY You can't write against a read only replica."),
		replyError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
		replyError("MOVED 3999 127.0.0.1:6381"),
		replyError("ASK 3999 127.0.0.1:6381"),
		replyError("TRYAGAIN Multiple keys request during rehashing of slot"),
		replyError("CLUSTERDOWN The cluster is down"),
	}
	for _, topo := range testenv.RedisTopologies {
		t.Run(topo.Name, func(t *testing.T) {
			for _, injected := range errs {
				t.Run(injected.Error(), func(t *testing.T) {
					t.Parallel()
					rdb := topo.Client(t)
					hook := &failStatusReads{err: injected}
					rdb.AddHook(hook)
					q := newQueue(t, rdb, redisqueue.Config{})
					ctx := t.Context()
					id, err := q.Enqueue(ctx, queue.Job{Queue: "w", Type: "x"})
					require.NoError(t, err)

					hook.n.Store(3) // the first three reads fail
					got := waitAsync(q, id)
					require.Eventually(t, func() bool { return hook.n.Load() < 0 }, 5*time.Second, time.Millisecond,
						"Wait stopped reading the job's status")
					d, err := q.Dequeue(ctx, []string{"w"}, time.Minute)
					require.NoError(t, err)
					require.NoError(t, d.Ack(ctx, []byte("ok")))
					info := requireEnded(t, got)
					require.Equal(t, queue.StateDone, info.State)
				})
			}
		})
	}
}

// An error that would be the same on every try ends the Wait.
func TestWaitReturnsPermanentErrors(t *testing.T) {
	rdb := testenv.RedisClient(t)
	hook := &failStatusReads{err: replyError("NOPERM this user has no permissions to run the 'hgetall' command")}
	rdb.AddHook(hook)
	q := newQueue(t, rdb, redisqueue.Config{})
	id, err := q.Enqueue(t.Context(), queue.Job{Queue: "w", Type: "x"})
	require.NoError(t, err)
	hook.n.Store(1)
	_, err = q.Wait(ctxTimeout(t, 5*time.Second), id)
	require.ErrorContains(t, err, "NOPERM")
}

// Redis dies while a job's lease runs out under a Wait, and comes back
// (append-only: the job survived): the waiter rides out the refused
// connections and returns the job's end.
func TestWaitAcrossRedisRestart(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{AppendOnly: true})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	q := newQueue(t, rdb, redisqueue.Config{Prefix: "wr:", Backoff: shortBackoff})
	ctx := t.Context()
	id, err := q.Enqueue(ctx, queue.Job{Queue: "w", Type: "x"})
	require.NoError(t, err)
	_, err = q.Dequeue(ctx, []string{"w"}, 300*time.Millisecond) // a worker that will die
	require.NoError(t, err)

	got := waitAsync(q, id)
	time.Sleep(100 * time.Millisecond)
	srv.Kill() // the waiter looks at the job when its lease runs out, in 200 ms
	time.Sleep(time.Second)
	select {
	case r := <-got:
		t.Fatalf("Wait returned while Redis was down: %+v, %v", r.info, r.err)
	default:
	}
	srv.Restart()
	d, err := q.Dequeue(ctxTimeout(t, 10*time.Second), []string{"w"}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, id, d.ID)
	require.NoError(t, d.Ack(ctx, nil))
	info := requireEnded(t, got)
	require.Equal(t, queue.StateDone, info.State)
	require.Equal(t, 2, info.Attempt)
}

type waitResult struct {
	info queue.JobInfo
	err  error
}

func waitAsync(q *redisqueue.Queue, id queue.JobID) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		info, err := q.Wait(ctx, id)
		ch <- waitResult{info, err}
	}()
	return ch
}

func requireEnded(t *testing.T, ch <-chan waitResult) queue.JobInfo {
	t.Helper()
	select {
	case r := <-ch:
		require.NoError(t, r.err)
		return r.info
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the job ended")
		return queue.JobInfo{}
	}
}
