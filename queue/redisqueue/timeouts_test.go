package redisqueue_test

// Real-time tests in this file: TestCallsHonourDeadlines (a real Redis
// server stopped with SIGSTOP or killed; each call is bounded by its
// configured 1 s deadline plus 1 s of slack for a loaded machine, far
// below the client's 3 s ReadTimeout times its retries).

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// Every call of a Queue honours its context's deadline against a hung
// Redis (SIGSTOP: it accepts connections and never answers) and a dead
// one (SIGKILL), with a client as a user builds it (go-redis's defaults:
// ReadTimeout 3 s, 3 retries; plus the ContextTimeoutEnabled that New
// requires): none returns later than its deadline, with some slack.
func TestCallsHonourDeadlines(t *testing.T) {
	const deadline = time.Second
	faults := []struct {
		name       string
		start, end func(*testenv.RedisServer)
	}{
		{"hung", (*testenv.RedisServer).Pause, (*testenv.RedisServer).Resume},
		{"dead", (*testenv.RedisServer).Kill, (*testenv.RedisServer).Restart},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			srv := testenv.StartRedis(t, testenv.RedisOptions{})
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
			t.Cleanup(func() { _ = rdb.Close() })
			q := newQueue(t, rdb, redisqueue.Config{Prefix: "t:"})
			t.Cleanup(func() { f.end(srv) }) // before Close
			ctx := t.Context()
			waited, err := q.Enqueue(ctx, queue.Job{Queue: "q", Type: "x"})
			require.NoError(t, err)
			// A first Wait, so that the Queue's subscription is up.
			wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, _ = q.Wait(wctx, waited)
			cancel()

			f.start(srv)
			calls := []struct {
				name string
				call func(context.Context) error
			}{
				{"Enqueue", func(ctx context.Context) error {
					_, err := q.Enqueue(ctx, queue.Job{Queue: "q", Type: "x", ID: "retry-me"})
					return err
				}},
				{"Wait", func(ctx context.Context) error { _, err := q.Wait(ctx, waited); return err }},
				{"Dequeue", func(ctx context.Context) error {
					_, err := q.Dequeue(ctx, []string{"q"}, time.Minute)
					return err
				}},
				{"Status", func(ctx context.Context) error { _, err := q.Status(ctx, waited); return err }},
				{"Cancel", func(ctx context.Context) error { return q.Cancel(ctx, waited) }},
			}
			for _, c := range calls {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				start := time.Now()
				err := c.call(ctx)
				took := time.Since(start)
				cancel()
				require.Error(t, err, c.name)
				require.Less(t, took, deadline+time.Second,
					"%s with a %v deadline against a %s Redis took %v (%v)", c.name, deadline, f.name, took, err)
				t.Logf("%s, %v deadline, %s Redis: returned after %v: %v", c.name, deadline, f.name, took, err)
			}
		})
	}
}
