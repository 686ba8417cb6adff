package redisqueue_test

// Real-time tests in this file: TestWorkerKilledMidJob and
// TestPausedWorkerLateAckRefused (real worker processes killed or stopped
// against a real Redis, with real 1 s leases; no duration asserted, only
// generous deadlines for a hang).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// The process fault tests run this test binary as a worker process that
// they kill or pause; the child finds its orders in these variables.
const (
	childMode   = "SCALEOUT_QUEUE_CHILD" // "hang", "late-ack" or "worker"
	childAddr   = "SCALEOUT_QUEUE_ADDR"
	childPrefix = "SCALEOUT_QUEUE_PREFIX"
)

func startChild(t *testing.T, mode, prefix string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	return startChildAt(t, mode, testenv.RedisAddr(t), prefix)
}

// startChildAt starts a child on the Redis at addr.
func startChildAt(t *testing.T, mode, addr, prefix string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestQueueChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childMode+"="+mode, childAddr+"="+addr, childPrefix+"="+prefix)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, out
}

// waitFor blocks until the child has pushed n entries on its signal list.
func waitFor(t *testing.T, c redis.UniversalClient, key string, n int64) []string {
	t.Helper()
	var got []string
	require.Eventually(t, func() bool {
		got, _ = c.LRange(t.Context(), key, 0, -1).Result()
		return int64(len(got)) >= n
	}, 20*time.Second, 10*time.Millisecond, "the child never signalled %s", key)
	return got
}

// TestWorkerKilledMidJob: a worker process is killed with SIGKILL while
// its handler runs; the job is delivered again after its lease to another
// worker and completes, with a higher fencing token.
func TestWorkerKilledMidJob(t *testing.T) {
	c := testenv.RedisClient(t)
	prefix := testenv.Prefix(t)
	q, err := redisqueue.New(c, redisqueue.Config{Prefix: prefix, Backoff: func(int) time.Duration { return 50 * time.Millisecond }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	id, err := q.Enqueue(t.Context(), queue.Job{Queue: "faults", Type: "slow"})
	require.NoError(t, err)

	child, out := startChild(t, "hang", prefix)
	waitFor(t, c, prefix+"started", 1)
	require.NoError(t, child.Process.Signal(syscall.SIGKILL), "kill -9 the worker mid-job")
	_ = child.Wait()

	w, err := queue.NewWorker(q, queue.WorkerConfig{Queues: map[string]int{"faults": 1}, Lease: time.Second})
	require.NoError(t, err)
	var token uint64
	require.NoError(t, w.HandleFunc("slow", func(_ context.Context, d *queue.Delivery) error {
		token = d.Token
		return nil
	}))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer wcancel()
	info, err := q.Wait(wctx, id)
	cancel()
	<-done
	require.NoError(t, err, "child output:\n%s", out)
	require.Equal(t, queue.StateDone, info.State)
	require.Equal(t, 2, info.Attempt, "the dead worker's attempt counted, then the job ran again")
	started := waitFor(t, c, prefix+"started", 1)
	var first uint64
	_, err = fmt.Sscan(started[0], &first)
	require.NoError(t, err)
	require.Greater(t, token, first, "the redelivery carries a higher fencing token")
}

// TestPausedWorkerLateAckRefused: a worker process is stopped (SIGSTOP,
// as a long GC pause or a partition would) past its lease; the job is
// delivered again and completed elsewhere; when the first worker resumes,
// its Ack is refused and the result stays the second worker's.
func TestPausedWorkerLateAckRefused(t *testing.T) {
	c := testenv.RedisClient(t)
	prefix := testenv.Prefix(t)
	q, err := redisqueue.New(c, redisqueue.Config{Prefix: prefix, Backoff: func(int) time.Duration { return 10 * time.Millisecond }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	id, err := q.Enqueue(t.Context(), queue.Job{Queue: "faults", Type: "slow"})
	require.NoError(t, err)

	child, out := startChild(t, "late-ack", prefix)
	waitFor(t, c, prefix+"started", 1)
	require.NoError(t, child.Process.Signal(syscall.SIGSTOP))

	// The child's 1 s lease runs out while it is stopped.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	d, err := q.Dequeue(ctx, []string{"faults"}, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, id, d.ID)
	require.NoError(t, d.Ack(ctx, []byte("second worker")))

	require.NoError(t, child.Process.Signal(syscall.SIGCONT))
	require.NoError(t, child.Wait(), "child output:\n%s", out)
	require.Contains(t, out.String(), "late ack: "+queue.ErrLeaseLost.Error(), "the resumed worker's Ack is refused by fencing")
	info, err := q.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, queue.StateDone, info.State)
	require.Equal(t, "second worker", string(info.Result))
}

// TestQueueChild is the worker process of the fault tests; run on its own
// it does nothing.
func TestQueueChild(t *testing.T) {
	mode := os.Getenv(childMode)
	if mode == "" {
		return
	}
	c := redis.NewClient(&redis.Options{Addr: os.Getenv(childAddr), ContextTimeoutEnabled: true})
	defer c.Close()
	prefix := os.Getenv(childPrefix)
	q, err := redisqueue.New(c, redisqueue.Config{Prefix: prefix})
	require.NoError(t, err)
	defer q.Close()
	ctx := context.Background()
	switch mode {
	case "hang": // a real Worker, whose handler is running when the process is killed
		w, err := queue.NewWorker(q, queue.WorkerConfig{Queues: map[string]int{"faults": 1}, Lease: time.Second})
		require.NoError(t, err)
		require.NoError(t, w.HandleFunc("slow", func(ctx context.Context, d *queue.Delivery) error {
			if err := c.RPush(ctx, prefix+"started", d.Token).Err(); err != nil {
				return err
			}
			<-ctx.Done()
			return ctx.Err()
		}))
		_ = w.Run(ctx) // until killed
	case "late-ack":
		d, err := q.Dequeue(ctx, []string{"faults"}, time.Second)
		require.NoError(t, err)
		require.NoError(t, c.RPush(ctx, prefix+"started", d.Token).Err())
		time.Sleep(500 * time.Millisecond) // stopped during this; resumed after the lease ran out
		for time.Until(d.LeaseUntil) > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		err = d.Ack(ctx, []byte("late worker"))
		fmt.Printf("late ack: %v\n", err)
		if !errors.Is(err, queue.ErrLeaseLost) {
			t.Fatalf("late ack = %v, want ErrLeaseLost", err)
		}
	case "worker": // a real Worker on queue "pq", telling each job it runs, until killed
		w, err := queue.NewWorker(q, queue.WorkerConfig{Queues: map[string]int{"pq": 1}, Concurrency: 4})
		require.NoError(t, err)
		require.NoError(t, w.HandleFunc("p", func(ctx context.Context, d *queue.Delivery) error {
			return c.RPush(ctx, prefix+"ran", string(d.ID)).Err()
		}))
		_ = w.Run(ctx)
	}
}
