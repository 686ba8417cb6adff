// Real-time tests in this file: TestWakeLatency, TestSeveralQueuesBlocking
// and TestDequeueCancel (how soon a worker blocked in BLPOP on a real
// Redis wakes: the point is the real round trip), TestWaitAcrossQueues
// and TestCloseStopsWait (pub/sub of a real Redis), TestRedisRestart and
// TestLeaseExpiryBackoff (a real Redis killed, and leases timed by Redis's
// own clock). Their bounds are a Redis round trip plus room for a busy
// machine, and each failure says what it measured.
package redisqueue_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/redisopt"
	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/queuetest"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

func newQueue(t testing.TB, rdb redis.UniversalClient, cfg redisqueue.Config) *redisqueue.Queue {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = testenv.Prefix(t)
	}
	q, err := redisqueue.New(rdb, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func shortBackoff(int) time.Duration { return 20 * time.Millisecond }

func TestConformance(t *testing.T) {
	for _, topo := range testenv.RedisTopologiesWithSentinel {
		t.Run(topo.Name, func(t *testing.T) {
			rdb := topo.Client(t)
			prefix := testenv.Prefix(t)
			queuetest.Run(t, func(t *testing.T) queue.JobQueue {
				return newQueue(t, rdb, redisqueue.Config{Prefix: prefix, Backoff: shortBackoff})
			})
		})
	}
}

func TestNewConfig(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true}) // never dialed
	defer func() { _ = rdb.Close() }()
	for _, cfg := range []redisqueue.Config{{Prefix: "a{b}:"}, {MaxPayload: -1}} {
		_, err := redisqueue.New(rdb, cfg)
		require.ErrorIs(t, err, queue.ErrInvalidConfig)
	}
	_, err := redisqueue.New(nil, redisqueue.Config{})
	require.ErrorIs(t, err, queue.ErrInvalidConfig)
	q, err := redisqueue.New(rdb, redisqueue.Config{MaxPayload: 4})
	require.NoError(t, err)
	// Too large a payload fails before any round trip (the server does not exist).
	_, err = q.Enqueue(t.Context(), queue.Job{Type: "x", Payload: []byte("12345")})
	require.ErrorIs(t, err, queue.ErrPayloadTooLarge)
	_, err = q.EnqueueBatch(t.Context(), []queue.Job{{Type: "x"}, {Type: "x", Payload: []byte("12345")}})
	require.ErrorIs(t, err, queue.ErrPayloadTooLarge)
	require.NoError(t, q.Close())
	require.NoError(t, q.Close())
	_, err = q.Enqueue(t.Context(), queue.Job{Type: "x"})
	require.ErrorIs(t, err, queue.ErrClosed)
}

// A client that ignores context deadlines is refused, with an error naming
// the option to set, for every kind of go-redis client.
func TestRefusesClientWithoutContextTimeouts(t *testing.T) {
	clients := []redis.UniversalClient{
		redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}),
		redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}}),
		redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:1"}}),
	}
	for _, c := range clients {
		t.Cleanup(func() { _ = c.Close() })
		_, err := redisqueue.New(c, redisqueue.Config{})
		require.ErrorIs(t, err, queue.ErrInvalidConfig)
		require.ErrorIs(t, err, redisopt.ErrContextTimeouts)
		require.ErrorContains(t, err, "ContextTimeoutEnabled")
	}
}

// A Redis error is wrapped and never ErrNotFound. (A refused connection
// is tried again until the call's deadline, or for redisha.DefaultBudget
// without one: the calls here have a short deadline.)
func TestRedisErrors(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond, ContextTimeoutEnabled: true})
	defer func() { _ = rdb.Close() }()
	q, err := redisqueue.New(rdb, redisqueue.Config{})
	require.NoError(t, err)
	defer func() { _ = q.Close() }()
	ctx := func() context.Context { return ctxTimeout(t, 300*time.Millisecond) }
	_, err = q.Status(ctx(), "default/abc")
	require.Error(t, err)
	require.NotErrorIs(t, err, queue.ErrNotFound)
	require.Contains(t, err.Error(), "redisqueue: status")
	_, err = q.Enqueue(ctx(), queue.Job{Type: "x"})
	require.ErrorContains(t, err, "redisqueue: enqueue")
	err = q.Cancel(ctx(), "default/abc")
	require.NotErrorIs(t, err, queue.ErrNotFound)
	err = q.Requeue(ctx(), "default/abc")
	require.NotErrorIs(t, err, queue.ErrNotFound)
}

// Malformed data in Redis is a clear error, never a panic.
func TestMalformedHash(t *testing.T) {
	rdb := testenv.RedisClient(t)
	p := testenv.Prefix(t)
	q := newQueue(t, rdb, redisqueue.Config{Prefix: p})
	ctx := t.Context()
	for name, fields := range map[string][]any{
		"nostate": {"t", "x", "p", "", "e", "1"},
		"badtime": {"t", "x", "p", "", "e", "yesterday", "st", "r"},
		"badst":   {"t", "x", "p", "", "e", "1", "st", "?"},
		"nopay":   {"t", "x", "e", "1", "st", "r"},
	} {
		require.NoError(t, rdb.HSet(ctx, p+"{m}:j:"+name, fields...).Err())
		_, err := q.Status(ctx, queue.JobID("m/"+name))
		require.ErrorContains(t, err, "malformed job", name)
		require.NotErrorIs(t, err, queue.ErrNotFound)
	}
	// A ready entry whose hash says it is not ready is skipped.
	require.NoError(t, rdb.RPush(ctx, p+"{m}:r0", "nostate").Err())
	_, err := q.Dequeue(ctxTimeout(t, 50*time.Millisecond), []string{"m"}, time.Second)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// Fields of the wrong shape in a leased job.
	require.NoError(t, rdb.HSet(ctx, p+"{m}:j:bad", "t", "x", "p", "", "e", "1", "st", "r", "m", "lots").Err())
	require.NoError(t, rdb.RPush(ctx, p+"{m}:r0", "bad").Err())
	_, err = q.Dequeue(ctxTimeout(t, time.Second), []string{"m"}, time.Second)
	require.ErrorContains(t, err, "malformed job")
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Keys of one queue share its hash tag; nothing is left after the jobs end
// but the ended jobs (which expire) and the queue's bookkeeping.
func TestKeyLayout(t *testing.T) {
	rdb := testenv.RedisClient(t)
	p := testenv.Prefix(t)
	q := newQueue(t, rdb, redisqueue.Config{Prefix: p})
	ctx := t.Context()
	id, err := q.Enqueue(ctx, queue.Job{Queue: "kq", Type: "x", ID: "one", Priority: 3})
	require.NoError(t, err)
	require.Equal(t, queue.FormatID("kq", "one"), id)
	keys, err := rdb.Keys(ctx, p+"*").Result()
	require.NoError(t, err)
	sort.Strings(keys)
	// The queue is in the list of queues; no sleepers: no wake token.
	require.Equal(t, []string{p + "queues", p + "{kq}:j:one", p + "{kq}:r3"}, keys)
	d, err := q.Dequeue(ctx, []string{"kq"}, time.Minute)
	require.NoError(t, err)
	require.NoError(t, d.Ack(ctx, []byte("ok")))
	info, err := q.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, queue.StateDone, info.State)
	require.Equal(t, []byte("ok"), info.Result)
	ttl, err := rdb.PTTL(ctx, p+"{kq}:j:one").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 23*time.Hour)
	keys, err = rdb.Keys(ctx, p+"*").Result()
	require.NoError(t, err)
	// The running total of acked jobs; a wake token may remain. The Ack
	// deleted the Dequeue's record.
	require.Subset(t, []string{p + "queues", p + "{kq}:j:one", p + "{kq}:stat", p + "{kq}:wake"}, keys)
	_, err = q.Dequeue(ctxTimeout(t, 10*time.Millisecond), []string{"kq"}, time.Minute)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, q.Close()) // waits for the Dequeue's give-back, if any
	keys, err = rdb.Keys(ctx, p+"*").Result()
	require.NoError(t, err)
	sort.Strings(keys)
	// A Dequeue whose deadline cut its script call leaves the tombstone of
	// its give-back, which expires.
	keys = slices.DeleteFunc(keys, func(k string) bool {
		if !strings.HasPrefix(k, p+"{kq}:dq:") {
			return false
		}
		v, err := rdb.Get(ctx, k).Result()
		require.NoError(t, err)
		require.Equal(t, "-", v, "the record of a Dequeue whose job ended")
		ttl, err := rdb.PTTL(ctx, k).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, time.Duration(0))
		require.LessOrEqual(t, ttl, 10*time.Second)
		return true
	})
	if !slices.Contains(keys, p+"{kq}:sl") { // the script never ran
		require.Equal(t, []string{p + "queues", p + "{kq}:j:one", p + "{kq}:stat"}, keys)
		return
	}
	require.Equal(t, []string{p + "queues", p + "{kq}:j:one", p + "{kq}:sl", p + "{kq}:stat"}, keys) // the sleepers mark expires
	sl, err := rdb.PTTL(ctx, p+"{kq}:sl").Result()
	require.NoError(t, err)
	require.Greater(t, sl, time.Duration(0))
	require.LessOrEqual(t, sl, 3*time.Second)
}

// A blocked Dequeue wakes within a few milliseconds of an Enqueue.
func TestWakeLatency(t *testing.T) {
	for _, topo := range testenv.RedisTopologies {
		t.Run(topo.Name, func(t *testing.T) {
			rdb := topo.Client(t)
			q := newQueue(t, rdb, redisqueue.Config{})
			ctx := t.Context()
			const n = 200
			lat := make([]time.Duration, 0, n)
			for i := 0; i < n; i++ {
				got := make(chan time.Time, 1)
				go func() {
					d, err := q.Dequeue(ctx, []string{"lat"}, time.Minute)
					if err == nil {
						got <- time.Now()
						_ = d.Ack(ctx, nil)
					} else {
						close(got)
					}
				}()
				time.Sleep(2 * time.Millisecond) // let it block
				start := time.Now()
				_, err := q.Enqueue(ctx, queue.Job{Queue: "lat", Type: "x"})
				require.NoError(t, err)
				at, ok := <-got
				require.True(t, ok)
				lat = append(lat, at.Sub(start))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			p50, p99 := lat[n/2], lat[n*99/100]
			t.Logf("enqueue-to-dequeue with a blocked worker: p50 %v p99 %v max %v", p50, p99, lat[n-1])
			require.Less(t, p50, 20*time.Millisecond, // ~0.2 ms locally; slack for -race and busy CI
				"median enqueue-to-dequeue %v with a worker blocked in BLPOP (p99 %v)", p50, p99)
		})
	}
}

// Dequeue over several queues on the Cluster (different slots) still wakes.
func TestSeveralQueuesBlocking(t *testing.T) {
	for _, topo := range testenv.RedisTopologies {
		t.Run(topo.Name, func(t *testing.T) {
			q := newQueue(t, topo.Client(t), redisqueue.Config{})
			ctx := t.Context()
			got := make(chan *queue.Delivery, 1)
			go func() {
				d, _ := q.Dequeue(ctx, []string{"a", "b", "c", "d"}, time.Minute)
				got <- d
			}()
			time.Sleep(50 * time.Millisecond)
			start := time.Now()
			id, err := q.Enqueue(ctx, queue.Job{Queue: "c", Type: "x"})
			require.NoError(t, err)
			d := <-got
			require.NotNil(t, d)
			require.Equal(t, id, d.ID)
			require.Less(t, time.Since(start), 500*time.Millisecond, // a round trip, and room for a busy machine
				"the blocked Dequeue took %v to get a job enqueued on its third queue", time.Since(start))
		})
	}
}

// Wait works from another Queue (another process) on both topologies, and
// on a job that ended before Wait was called.
func TestWaitAcrossQueues(t *testing.T) {
	for _, topo := range testenv.RedisTopologies {
		t.Run(topo.Name, func(t *testing.T) {
			p := testenv.Prefix(t)
			q1 := newQueue(t, topo.Client(t), redisqueue.Config{Prefix: p})
			q2 := newQueue(t, topo.Client(t), redisqueue.Config{Prefix: p})
			ctx := ctxTimeout(t, 10*time.Second)
			var ids []queue.JobID
			for i := 0; i < 20; i++ {
				id, err := q1.Enqueue(ctx, queue.Job{Queue: "w" + strconv.Itoa(i), Type: "x"})
				require.NoError(t, err)
				ids = append(ids, id)
			}
			var wg sync.WaitGroup
			errs := make(chan error, len(ids))
			for _, id := range ids {
				wg.Go(func() {
					info, err := q2.Wait(ctx, id)
					if err == nil && info.State != queue.StateDone {
						err = fmt.Errorf("%s: state %s", id, info.State)
					}
					errs <- err
				})
			}
			time.Sleep(50 * time.Millisecond)
			for i := range ids {
				d, err := q1.Dequeue(ctx, []string{"w" + strconv.Itoa(i)}, time.Minute)
				require.NoError(t, err)
				require.NoError(t, d.Ack(ctx, nil))
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			// Ended before Wait.
			info, err := q2.Wait(ctx, ids[0])
			require.NoError(t, err)
			require.Equal(t, queue.StateDone, info.State)
			_, err = q2.Wait(ctx, "w0/unknown")
			require.ErrorIs(t, err, queue.ErrNotFound)
		})
	}
}

// Close stops the pub/sub goroutine and releases blocked Waits and Dequeues.
func TestCloseStopsWait(t *testing.T) {
	rdb := testenv.RedisClient(t)
	checkGoroutines := testenv.CheckGoroutines(t)
	q, err := redisqueue.New(rdb, redisqueue.Config{Prefix: testenv.Prefix(t)})
	require.NoError(t, err)
	ctx := t.Context()
	id, err := q.Enqueue(ctx, queue.Job{Type: "x"})
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() {
		_, err := q.Wait(ctx, id)
		errc <- err
	}()
	derrc := make(chan error, 1)
	go func() {
		_, err := q.Dequeue(ctx, []string{"empty"}, time.Second)
		derrc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, q.Close())
	for _, c := range []chan error{errc, derrc} {
		select {
		case err := <-c:
			require.ErrorIs(t, err, queue.ErrClosed)
		case <-time.After(500 * time.Millisecond):
			t.Fatal("Wait or Dequeue still blocked after Close")
		}
	}
	_, err = q.Dequeue(ctx, []string{"default"}, time.Second)
	require.ErrorIs(t, err, queue.ErrClosed)
	require.NoError(t, rdb.Ping(ctx).Err(), "Close closed the client")
	checkGoroutines() // no goroutine of the Queue outlives Close
}

// Canceling a Dequeue's context releases it from its BLPOP at once.
func TestDequeueCancel(t *testing.T) {
	q := newQueue(t, testenv.RedisClient(t), redisqueue.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := q.Dequeue(ctx, []string{"idle"}, time.Second)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	start := time.Now()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, time.Since(start), 200*time.Millisecond, // no round trip needed, and room for a busy machine
			"Dequeue returned %v after its context was canceled", time.Since(start))
	case <-time.After(3 * time.Second):
		t.Fatal("Dequeue still blocked")
	}
}

// Kill -9 the (append-only) Redis in the middle of processing and restart
// it: the workers carry on by themselves, and every job whose Enqueue
// returned nil is acked.
func TestRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: kills and restarts a Redis server")
	}
	srv := testenv.StartRedis(t, testenv.RedisOptions{AppendOnly: true})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	q := newQueue(t, rdb, redisqueue.Config{Prefix: "rq:", Backoff: shortBackoff})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const n = 2000
	var mu sync.Mutex
	enqueued := map[queue.JobID]bool{}
	var processed, ackErrs, dequeueErrs, enqueueErrs atomic.Int64

	wctx, stopWorkers := context.WithCancel(ctx)
	var workers sync.WaitGroup
	for w := 0; w < 8; w++ {
		workers.Go(func() {
			for wctx.Err() == nil {
				d, err := q.Dequeue(wctx, []string{"r"}, 2*time.Second)
				if err != nil {
					dequeueErrs.Add(1)
					time.Sleep(10 * time.Millisecond) // Redis is down
					continue
				}
				processed.Add(1)
				time.Sleep(100 * time.Microsecond)
				// An Ack lost with the server is redelivered after its lease;
				// the jobs' final status is checked below.
				if d.Ack(wctx, nil) != nil {
					ackErrs.Add(1)
				}
			}
		})
	}

	waited := make(chan error, 1)
	// Producer: enqueue n jobs at a steady pace while the server is killed
	// and restarted, retrying a failed Enqueue with the same ID (its job
	// may have been stored all the same) until it returns nil.
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; i < n && ctx.Err() == nil; {
			id, err := q.Enqueue(ctx, queue.Job{Queue: "r", Type: "x", ID: "j" + strconv.Itoa(i)})
			if err != nil {
				enqueueErrs.Add(1)
				time.Sleep(5 * time.Millisecond)
				continue
			}
			i++
			mu.Lock()
			enqueued[id] = true
			mu.Unlock()
			time.Sleep(200 * time.Microsecond)
		}
	}()
	for processed.Load() < n/4 {
		time.Sleep(time.Millisecond)
	}
	// A Wait that spans the crash: its job becomes due after the restart.
	wid, err := q.Enqueue(ctx, queue.Job{Queue: "r", Type: "x", RunAt: time.Now().Add(500 * time.Millisecond)})
	require.NoError(t, err)
	go func() {
		info, err := q.Wait(ctx, wid)
		if err == nil && info.State != queue.StateDone {
			err = fmt.Errorf("state %s", info.State)
		}
		waited <- err
	}()
	time.Sleep(50 * time.Millisecond)
	srv.Kill()
	time.Sleep(300 * time.Millisecond)
	srv.Restart()
	<-produced
	require.NoError(t, ctx.Err())
	mu.Lock()
	require.Len(t, enqueued, n)
	enqueued[wid] = true
	mu.Unlock()

	// Every enqueued job ends done: wait with Status (Acks lost in the crash
	// are redelivered once their lease runs out).
	deadline := time.Now().Add(45 * time.Second)
	for {
		notDone := 0
		for id := range enqueued {
			info, err := q.Status(ctx, id)
			if err != nil || info.State != queue.StateDone {
				notDone++
			}
		}
		if notDone == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs not done", notDone, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	select {
	case err := <-waited:
		require.NoError(t, err, "Wait across the restart")
	case <-time.After(10 * time.Second):
		t.Fatal("Wait across the restart did not return")
	}
	// The retries made no job of their own: n jobs, and the Wait's.
	keys, err := rdb.Keys(ctx, "rq:{r}:j:*").Result()
	require.NoError(t, err)
	require.Len(t, keys, n+1, "retried Enqueues made extra jobs")
	stopWorkers()
	workers.Wait()
	t.Logf("processed %d deliveries for %d jobs across a kill -9 and restart (failed: %d Enqueues, %d Dequeues, %d Acks)",
		processed.Load(), n, enqueueErrs.Load(), dequeueErrs.Load(), ackErrs.Load())
}

// Memory per job of a backlog: enable with SCALEOUT_QUEUE_MEMORY_JOBS=<n>
// (1000000 for the reported figure); 100,000 jobs otherwise, skipped with -short.
func TestMemoryPerJob(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: fills a private Redis")
	}
	n := 100_000
	if s := os.Getenv("SCALEOUT_QUEUE_MEMORY_JOBS"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(t, err)
	}
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	q := newQueue(t, rdb, redisqueue.Config{})
	ctx := t.Context()
	used := func() int64 {
		v, err := rdb.Do(ctx, "memory", "stats").Result()
		require.NoError(t, err)
		m := v.(map[any]any)
		return m["total.allocated"].(int64) - m["startup.allocated"].(int64)
	}
	// A payload over 64 bytes (Redis's hash-max-listpack-value) turns the
	// job's hash from a listpack into a hash table, which costs more.
	for _, size := range []int{17, 100} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = 'a' + byte(i%26)
		}
		require.NoError(t, rdb.FlushAll(ctx).Err())
		before := used()
		batch := make([]queue.Job, 0, 1000)
		for i := 0; i < n; i += 1000 {
			batch = batch[:0]
			for k := 0; k < 1000 && i+k < n; k++ {
				batch = append(batch, queue.Job{Type: "email:send", Payload: payload})
			}
			_, err := q.EnqueueBatch(ctx, batch)
			require.NoError(t, err)
		}
		per := float64(used()-before) / float64(n)
		t.Logf("%d ready jobs (type %q, %d-byte payload, default queue and prefix): %.0f B per job",
			n, "email:send", size, per)
		if size <= 64 {
			require.Less(t, per, 300.0)
		}
	}
}

// EnqueueBatch loads its script again after SCRIPT FLUSH (as after a
// restart) and keeps the IDs in order. A private server: flushing the
// shared ones would disturb other packages' tests.
func TestBatchAfterScriptFlush(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	q := newQueue(t, rdb, redisqueue.Config{})
	ctx := t.Context()
	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	var jobs []queue.Job
	for i := 0; i < 50; i++ {
		jobs = append(jobs, queue.Job{Queue: "b" + strconv.Itoa(i%5), Type: "x", ID: "id" + strconv.Itoa(i)})
	}
	ids, err := q.EnqueueBatch(ctx, jobs)
	require.NoError(t, err)
	for i, id := range ids {
		require.Equal(t, queue.FormatID("b"+strconv.Itoa(i%5), "id"+strconv.Itoa(i)), id)
	}
	// A conflict in a batch (an ID held by a job of another type): the
	// others are enqueued, the error says so.
	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	ids, err = q.EnqueueBatch(ctx, []queue.Job{{Queue: "b0", Type: "x", ID: "new"}, {Queue: "b0", Type: "y", ID: "id0"}})
	require.ErrorIs(t, err, queue.ErrDuplicate)
	require.Equal(t, queue.FormatID("b0", "new"), ids[0])
	require.Empty(t, ids[1])
	ids, err = q.EnqueueBatch(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, ids)
}

// The queue.Worker runs on a redisqueue: jobs are processed and Wait sees
// them done; canceling a running job cancels its handler at the next
// heartbeat (Extend answers ErrCanceled).
func TestWorker(t *testing.T) {
	q := newQueue(t, testenv.RedisClient(t), redisqueue.Config{Backoff: shortBackoff})
	w, err := queue.NewWorker(q, queue.WorkerConfig{
		Queues: map[string]int{"wq": 1}, Concurrency: 4,
		Lease: 600 * time.Millisecond, Heartbeat: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	started := make(chan struct{}, 1)
	stopped := make(chan error, 1)
	require.NoError(t, w.HandleFunc("slow", func(ctx context.Context, d *queue.Delivery) error {
		started <- struct{}{}
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return ctx.Err()
	}))
	require.NoError(t, w.Handle("echo", queue.ResultFunc(func(ctx context.Context, d *queue.Delivery) ([]byte, error) {
		return d.Job.Payload, nil
	})))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()

	wctx := ctxTimeout(t, 10*time.Second)
	for i := 0; i < 20; i++ {
		id, err := q.Enqueue(wctx, queue.Job{Queue: "wq", Type: "echo", Payload: []byte(strconv.Itoa(i))})
		require.NoError(t, err)
		info, err := q.Wait(wctx, id)
		require.NoError(t, err)
		require.Equal(t, queue.StateDone, info.State)
		require.Equal(t, strconv.Itoa(i), string(info.Result))
	}

	id, err := q.Enqueue(wctx, queue.Job{Queue: "wq", Type: "slow"})
	require.NoError(t, err)
	<-started
	require.NoError(t, q.Cancel(wctx, id))
	select {
	case cause := <-stopped:
		require.ErrorIs(t, cause, queue.ErrCanceled)
	case <-time.After(2 * time.Second):
		t.Fatal("the canceled job's handler kept running")
	}
	info, err := q.Status(wctx, id)
	require.NoError(t, err)
	require.Equal(t, queue.StateCanceled, info.State)

	cancel()
	select {
	case err := <-runErr:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(2 * time.Second):
		t.Fatal("Worker.Run did not return promptly")
	}
}

// AckAndDequeue acks and leases the next job in one call; a stale
// delivery leases nothing.
func TestAckAndDequeue(t *testing.T) {
	for _, topo := range testenv.RedisTopologies {
		t.Run(topo.Name, func(t *testing.T) {
			q := newQueue(t, topo.Client(t), redisqueue.Config{})
			ctx := t.Context()
			for _, id := range []string{"a", "b"} {
				_, err := q.Enqueue(ctx, queue.Job{Queue: "ad", Type: "x", ID: id})
				require.NoError(t, err)
			}
			d, err := q.Dequeue(ctx, []string{"ad"}, time.Minute)
			require.NoError(t, err)
			require.Equal(t, queue.FormatID("ad", "a"), d.ID)
			next, err := q.AckAndDequeue(ctx, d, []byte("r"), time.Minute)
			require.NoError(t, err)
			require.NotNil(t, next)
			require.Equal(t, queue.FormatID("ad", "b"), next.ID)
			require.Equal(t, 1, next.Attempt)
			info, err := q.Status(ctx, d.ID)
			require.NoError(t, err)
			require.Equal(t, queue.StateDone, info.State)
			require.Equal(t, []byte("r"), info.Result)
			// A second ack of the same delivery is refused and leases nothing.
			_, err = q.AckAndDequeue(ctx, d, nil, time.Minute)
			require.ErrorIs(t, err, queue.ErrLeaseLost)
			info, err = q.Status(ctx, next.ID)
			require.NoError(t, err)
			require.Equal(t, queue.StateActive, info.State)
			last, err := q.AckAndDequeue(ctx, next, nil, time.Minute)
			require.NoError(t, err)
			require.Nil(t, last)
		})
	}
}

// An expired lease is a failed attempt retried after Config.Backoff.
func TestLeaseExpiryBackoff(t *testing.T) {
	q := newQueue(t, testenv.RedisClient(t), redisqueue.Config{Backoff: func(a int) time.Duration {
		return time.Duration(a) * time.Hour
	}})
	ctx := t.Context()
	id, err := q.Enqueue(ctx, queue.Job{Queue: "le", Type: "x"})
	require.NoError(t, err)
	_, err = q.Dequeue(ctx, []string{"le"}, 5*time.Millisecond)
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	_, err = q.Dequeue(ctxTimeout(t, 20*time.Millisecond), []string{"le"}, time.Minute)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	info, err := q.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, queue.StateScheduled, info.State)
	require.Equal(t, "lease expired", info.LastErr)
	require.WithinDuration(t, time.Now().Add(time.Hour), info.RunAt, time.Minute)
}

// Concurrent Enqueues that share script calls keep their own results.
func TestEnqueueConcurrent(t *testing.T) {
	q := newQueue(t, testenv.RedisClient(t), redisqueue.Config{})
	ctx := t.Context()
	var wg sync.WaitGroup
	var dups atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				id := strconv.Itoa(i) // every ID enqueued by 16 goroutines
				got, err := q.Enqueue(ctx, queue.Job{Queue: "cc", Type: "x", ID: id, Payload: []byte(strconv.Itoa(g))})
				require.Equal(t, queue.FormatID("cc", id), got)
				if err != nil {
					require.ErrorIs(t, err, queue.ErrDuplicate)
					dups.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(15*50), dups.Load())
	for range 50 {
		d, err := q.Dequeue(ctx, []string{"cc"}, time.Minute)
		require.NoError(t, err)
		require.NoError(t, d.Ack(ctx, nil))
	}
	_, err := q.Dequeue(ctxTimeout(t, 20*time.Millisecond), []string{"cc"}, time.Minute)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}
