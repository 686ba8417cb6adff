package redisqueue_test

// Real-time tests in this file: TestCloseDuringEnqueues (a real Redis; it
// looks for writes landing in a 200 ms window after Close), and
// TestSharedEnqueueEndsWithItsCallers (a hung server behind a real
// FaultProxy; Close's duration is bounded well below the client's 3 s
// ReadTimeout, which it would wait for if the shared call outlived its
// callers).

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// jobKeys counts the job hashes of queue qname under prefix.
func jobKeys(t *testing.T, rdb *redis.Client, prefix, qname string) int {
	t.Helper()
	keys, err := rdb.Keys(t.Context(), prefix+"{"+qname+"}:j:*").Result()
	require.NoError(t, err)
	return len(keys)
}

// Close in the middle of many concurrent Enqueues (run with -race): every
// Enqueue returns, those that succeeded have their job, and nothing is
// written after Close returned.
func TestCloseDuringEnqueues(t *testing.T) {
	rdb := testenv.RedisClient(t)
	prefix := testenv.Prefix(t)
	q, err := redisqueue.New(rdb, redisqueue.Config{Prefix: prefix})
	require.NoError(t, err)
	var mu sync.Mutex
	var ok []queue.JobID
	firstOK := make(chan struct{})
	var signalled sync.Once
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id, err := q.Enqueue(context.Background(), queue.Job{Queue: "c", Type: "x", ID: fmt.Sprintf("%d-%d", g, i)})
				if errors.Is(err, queue.ErrClosed) {
					return
				}
				if err == nil {
					mu.Lock()
					ok = append(ok, id)
					mu.Unlock()
					signalled.Do(func() { close(firstOK) })
				}
			}
		})
	}
	// Close once Enqueues are succeeding, rather than after a sleep that a
	// loaded machine may spend before the first one lands.
	select {
	case <-firstOK:
	case <-time.After(10 * time.Second):
		t.Fatal("no Enqueue succeeded within 10 s")
	}
	require.NoError(t, q.Close())
	closed := jobKeys(t, rdb, prefix, "c")
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Enqueues still running 10 s after Close")
	}
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, closed, jobKeys(t, rdb, prefix, "c"), "jobs were written after Close returned")
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, ok)
	require.LessOrEqual(t, len(ok), closed)
	q2 := newQueue(t, rdb, redisqueue.Config{Prefix: prefix})
	for _, id := range ok {
		_, err := q2.Status(t.Context(), id)
		require.NoError(t, err, "an Enqueue that returned nil has its job")
	}
}

// A call shared by waiting Enqueues lasts no longer than their deadlines:
// against a hung server it ends with them, rather than at the client's
// ReadTimeout, and a Close after that has nothing to wait for.
func TestSharedEnqueueEndsWithItsCallers(t *testing.T) {
	proxy := testenv.StartFaultProxy(t, testenv.RedisAddr(t))
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true}) // ReadTimeout 3 s
	t.Cleanup(func() { _ = rdb.Close() })
	q, err := redisqueue.New(rdb, redisqueue.Config{Prefix: testenv.Prefix(t)})
	require.NoError(t, err)
	_, err = q.Enqueue(t.Context(), queue.Job{Queue: "h", Type: "x"}) // connected, script loaded
	require.NoError(t, err)
	proxy.Blackhole(true)

	// Two calls in flight, until their 300 ms deadline; a third caller,
	// with a 600 ms deadline, waits to share the next call.
	enqueue := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		_, err := q.Enqueue(ctx, queue.Job{Queue: "h", Type: "x"})
		return err
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { require.ErrorIs(t, enqueue(300*time.Millisecond), context.DeadlineExceeded) })
	}
	time.Sleep(50 * time.Millisecond)
	wg.Go(func() { require.ErrorIs(t, enqueue(600*time.Millisecond), context.DeadlineExceeded) })
	wg.Wait()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	require.NoError(t, q.Close())
	took := time.Since(start)
	// Without the promise Close would wait for the client's 3 s
	// ReadTimeout; with it there is nothing left to wait for, and 500 ms
	// is slack for a loaded machine.
	require.Less(t, took, 500*time.Millisecond,
		"Close took %v after every caller of the shared call had given up (a hung server; the client's ReadTimeout is 3 s)", took)
	t.Logf("Close after the shared call's callers gave up, on a hung server: %v", took)
}
