package redisqueue_test

// Real-time test in this file: TestPauseHoldsAcrossProcessesAndRestart (a
// worker process and a Redis server of its own, killed and restarted;
// bounds are generous deadlines for a hang, and a quiet period in which a
// paused queue must stay untouched).

import (
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// A queue paused by one process is not served by a worker in another,
// and stays paused when Redis is killed and restarted (append-only file);
// Resume from the first process lets the other's worker run every job.
func TestPauseHoldsAcrossProcessesAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: kills and restarts a Redis server")
	}
	srv := testenv.StartRedis(t, testenv.RedisOptions{AppendOnly: true})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	const prefix = "pr:"
	q := newQueue(t, rdb, redisqueue.Config{Prefix: prefix})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	require.NoError(t, q.Pause(ctx, "pq"))
	var ids []queue.JobID
	for range 5 {
		id, err := q.Enqueue(ctx, queue.Job{Queue: "pq", Type: "p"})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	_, out := startChildAt(t, "worker", srv.Addr(), prefix)

	quiet := func(what string) {
		t.Helper()
		time.Sleep(time.Second) // a worker blocks for at most 1 s at a time
		ran, err := rdb.LLen(ctx, prefix+"ran").Result()
		require.NoError(t, err)
		require.Zero(t, ran, "%s: the other process ran jobs of a paused queue\nchild:\n%s", what, out)
		c, err := q.Counts(ctx, "pq")
		require.NoError(t, err)
		require.True(t, c.Paused, what)
		require.Equal(t, 5, c.Ready, what)
	}
	quiet("before the restart")

	srv.Kill()
	srv.Restart()
	require.Eventually(t, func() bool { return rdb.Ping(ctx).Err() == nil }, 20*time.Second, 50*time.Millisecond, "Redis never came back")
	quiet("after the restart")

	require.NoError(t, q.Resume(ctx, "pq"))
	for _, id := range ids {
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		info, err := q.Wait(wctx, id)
		wcancel()
		require.NoError(t, err, "child:\n%s", out)
		require.Equal(t, queue.StateDone, info.State)
	}
	ran, err := rdb.LRange(ctx, prefix+"ran", 0, -1).Result()
	require.NoError(t, err)
	require.ElementsMatch(t, ids, toIDs(ran), "the other process ran each job once")
}

func toIDs(s []string) []queue.JobID {
	ids := make([]queue.JobID, len(s))
	for i, v := range s {
		ids[i] = queue.JobID(v)
	}
	return ids
}

// commandLog records the commands a client sends, scripts included.
type commandLog struct {
	mu    sync.Mutex
	names []string
}

func (l *commandLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *commandLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.add(cmd)
		return next(ctx, cmd)
	}
}

func (l *commandLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			l.add(c)
		}
		return next(ctx, cmds)
	}
}

func (l *commandLog) add(cmd redis.Cmder) {
	l.mu.Lock()
	l.names = append(l.names, strings.ToLower(cmd.Name()))
	l.mu.Unlock()
}

// No Inspector call scans the keyspace: the client sends no SCAN or
// KEYS, and no script calls them; each call is one script (or one
// command) on the queue's own keys, in batches for the "all" calls.
func TestInspectorScansNoKeyspace(t *testing.T) {
	for _, topo := range testenv.RedisTopologies {
		t.Run(topo.Name, func(t *testing.T) {
			rdb := topo.Client(t)
			log := &commandLog{}
			rdb.AddHook(log)
			q := newQueue(t, rdb, redisqueue.Config{Backoff: shortBackoff})
			ctx := t.Context()
			for i := range 30 {
				_, err := q.Enqueue(ctx, queue.Job{Queue: "sc", Type: "t", MaxAttempts: 1, Priority: i % 3})
				require.NoError(t, err)
			}
			for range 10 {
				d, err := q.Dequeue(ctx, []string{"sc"}, time.Minute)
				require.NoError(t, err)
				require.NoError(t, d.Fail(ctx, queue.Permanent(context.Canceled)))
			}
			log.mu.Lock()
			log.names = nil
			log.mu.Unlock()

			_, err := q.Queues(ctx)
			require.NoError(t, err)
			_, err = q.Counts(ctx, "sc")
			require.NoError(t, err)
			for _, st := range []queue.State{queue.StateReady, queue.StateScheduled, queue.StateActive, queue.StateDead} {
				p, err := q.List(ctx, "sc", st, "", 5)
				require.NoError(t, err)
				if p.Next != "" {
					_, err = q.List(ctx, "sc", st, p.Next, 5)
					require.NoError(t, err)
				}
			}
			require.NoError(t, q.Pause(ctx, "sc"))
			require.NoError(t, q.Resume(ctx, "sc"))
			n, err := q.DeleteAllDead(ctx, "sc")
			require.NoError(t, err)
			require.Equal(t, 10, n)
			_, err = q.RequeueAll(ctx, "sc")
			require.NoError(t, err)

			log.mu.Lock()
			names := log.names
			log.mu.Unlock()
			for _, name := range names {
				require.NotContains(t, []string{"scan", "keys"}, name)
			}
			require.LessOrEqual(t, len(names), 30, "commands sent: %q", names)
		})
	}
	// No script calls SCAN or KEYS either.
	scan := regexp.MustCompile(`(?i)redis\.call\(\s*'(scan|keys)'`)
	for _, f := range []string{"scripts.go", "scripts_inspect.go"} {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		require.False(t, scan.Match(src), "%s calls SCAN or KEYS", f)
	}
}
