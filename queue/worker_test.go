package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

func wMemory(t *testing.T, cfg queue.MemoryConfig) *queue.Memory {
	t.Helper()
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return time.Second }
	}
	m, err := queue.NewMemory(cfg)
	require.NoError(t, err)
	return m
}

// wRun starts w.Run in the background; stop cancels it and returns
// what Run returned.
func wRun(t *testing.T, w *queue.Worker) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

func wNew(t *testing.T, q queue.JobQueue, cfg queue.WorkerConfig) *queue.Worker {
	t.Helper()
	w, err := queue.NewWorker(q, cfg)
	require.NoError(t, err)
	return w
}

func wEnqueue(t *testing.T, q queue.JobQueue, j queue.Job) queue.JobID {
	t.Helper()
	id, err := q.Enqueue(t.Context(), j)
	require.NoError(t, err)
	return id
}

func wWait(t *testing.T, q queue.JobQueue, id queue.JobID) queue.JobInfo {
	t.Helper()
	info, err := q.Wait(t.Context(), id)
	require.NoError(t, err)
	return info
}

func TestWorkerRunsJobsWithResults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		w := wNew(t, m, queue.WorkerConfig{})
		require.NoError(t, w.Handle("upper", queue.ResultFunc(func(ctx context.Context, d *queue.Delivery) ([]byte, error) {
			return []byte(fmt.Sprintf("%s!", d.Job.Payload)), nil
		})))
		// A middleware that passes the Worker's context on (derived)
		// passes the result on.
		inner := queue.ResultFunc(func(ctx context.Context, d *queue.Delivery) ([]byte, error) {
			return []byte("set"), nil
		})
		require.NoError(t, w.HandleFunc("set", func(ctx context.Context, d *queue.Delivery) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			return inner.Process(ctx, d)
		}))
		// A failed ResultFunc's result is not kept.
		require.NoError(t, w.Handle("failed", queue.ResultFunc(func(ctx context.Context, d *queue.Delivery) ([]byte, error) {
			return []byte("partial"), queue.Permanent(errors.New("no"))
		})))
		require.NoError(t, w.HandleFunc("none", func(ctx context.Context, d *queue.Delivery) error { return nil }))
		stop := wRun(t, w)

		for typ, want := range map[string]string{"upper": "hi!", "set": "set", "none": ""} {
			info := wWait(t, m, wEnqueue(t, m, queue.Job{Type: typ, Payload: []byte("hi")}))
			require.Equal(t, queue.StateDone, info.State, typ)
			require.Equal(t, want, string(info.Result), typ)
			require.Equal(t, 1, info.Attempt)
		}
		info := wWait(t, m, wEnqueue(t, m, queue.Job{Type: "failed", Payload: []byte("hi")}))
		require.Equal(t, queue.StateDead, info.State)
		require.Empty(t, info.Result, "a failed ResultFunc's result is not kept")
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

func TestWorkerManyJobsConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		w := wNew(t, m, queue.WorkerConfig{Concurrency: 4})
		var running, peak atomic.Int32
		require.NoError(t, w.HandleFunc("work", func(ctx context.Context, d *queue.Delivery) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(time.Second)
			running.Add(-1)
			return nil
		}))
		var ids []queue.JobID
		for range 20 {
			ids = append(ids, wEnqueue(t, m, queue.Job{Type: "work"}))
		}
		start := time.Now()
		stop := wRun(t, w)
		for _, id := range ids {
			require.Equal(t, queue.StateDone, wWait(t, m, id).State)
		}
		require.Equal(t, 5*time.Second, time.Since(start)) // 20 jobs, 4 at a time
		require.EqualValues(t, 4, peak.Load())
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

func TestWorkerUnknownTypeIsDead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		w := wNew(t, m, queue.WorkerConfig{})
		stop := wRun(t, w)
		info := wWait(t, m, wEnqueue(t, m, queue.Job{Type: "nobody"}))
		require.Equal(t, queue.StateDead, info.State)
		require.Equal(t, 1, info.Attempt)
		require.Contains(t, info.LastErr, queue.ErrUnknownType.Error())
		require.Contains(t, info.LastErr, `"nobody"`)
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad input")
	err := queue.Permanent(base)
	require.ErrorIs(t, err, queue.ErrPermanent)
	require.ErrorIs(t, err, base)
	require.Equal(t, "bad input", err.Error())
	require.NoError(t, queue.Permanent(nil))
}

func TestWorkerFailures(t *testing.T) {
	tests := []struct {
		name        string
		handler     queue.HandlerFunc
		job         queue.Job
		cfg         queue.WorkerConfig
		wantState   queue.State
		wantAttempt int
		wantErr     []string
	}{
		{
			name:    "permanent error is dead at once",
			handler: func(context.Context, *queue.Delivery) error { return queue.Permanent(errors.New("no such user")) },
			job:     queue.Job{MaxAttempts: 5}, wantState: queue.StateDead, wantAttempt: 1,
			wantErr: []string{"no such user"},
		},
		{
			name:    "wrapped ErrPermanent is dead at once",
			handler: func(context.Context, *queue.Delivery) error { return fmt.Errorf("oops: %w", queue.ErrPermanent) },
			job:     queue.Job{MaxAttempts: 5}, wantState: queue.StateDead, wantAttempt: 1,
			wantErr: []string{"oops"},
		},
		{
			name:    "errors are retried until attempts are spent",
			handler: func(context.Context, *queue.Delivery) error { return errors.New("flaky") },
			job:     queue.Job{MaxAttempts: 3}, wantState: queue.StateDead, wantAttempt: 3,
			wantErr: []string{"flaky"},
		},
		{
			name: "a retry can succeed",
			handler: func(_ context.Context, d *queue.Delivery) error {
				if d.Attempt < 2 {
					return errors.New("flaky")
				}
				return nil
			},
			job: queue.Job{MaxAttempts: 3}, wantState: queue.StateDone, wantAttempt: 2,
		},
		{
			name: "job timeout is a failed attempt",
			handler: func(ctx context.Context, _ *queue.Delivery) error {
				<-ctx.Done()
				return ctx.Err()
			},
			job: queue.Job{MaxAttempts: 1, Timeout: time.Minute}, wantState: queue.StateDead, wantAttempt: 1,
			wantErr: []string{"timed out after 1m0s", "deadline exceeded"},
		},
		{
			name: "worker job timeout",
			handler: func(ctx context.Context, _ *queue.Delivery) error {
				<-ctx.Done()
				return ctx.Err()
			},
			cfg: queue.WorkerConfig{JobTimeout: 5 * time.Second},
			job: queue.Job{MaxAttempts: 1}, wantState: queue.StateDead, wantAttempt: 1,
			wantErr: []string{"timed out after 5s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := wMemory(t, queue.MemoryConfig{})
				w := wNew(t, m, tt.cfg)
				require.NoError(t, w.Handle("job", tt.handler))
				stop := wRun(t, w)
				j := tt.job
				j.Type = "job"
				start := time.Now()
				info := wWait(t, m, wEnqueue(t, m, j))
				require.Equal(t, tt.wantState, info.State)
				require.Equal(t, tt.wantAttempt, info.Attempt)
				for _, s := range tt.wantErr {
					require.Contains(t, info.LastErr, s)
				}
				if tt.job.Timeout > 0 {
					require.Equal(t, tt.job.Timeout, time.Since(start))
				}
				require.ErrorIs(t, stop(), context.Canceled)
			})
		})
	}
}

// A panic is a failed attempt. Its stack goes to the Worker's log, not to
// the job's LastErr, which an application may show to its clients.
func TestWorkerPanicStackGoesToTheLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		var logged bytes.Buffer
		var mu sync.Mutex
		w := wNew(t, m, queue.WorkerConfig{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))})
		require.NoError(t, w.Handle("job", queue.HandlerFunc(func(context.Context, *queue.Delivery) error { panic("boom") })))
		stop := wRun(t, w)
		info := wWait(t, m, wEnqueue(t, m, queue.Job{Type: "job", MaxAttempts: 2}))
		require.ErrorIs(t, stop(), context.Canceled)
		require.Equal(t, queue.StateDead, info.State)
		require.Equal(t, 2, info.Attempt)
		require.Equal(t, "queue: handler panicked: boom", info.LastErr, "LastErr names the panic, without its stack")
		mu.Lock()
		defer mu.Unlock()
		require.Contains(t, logged.String(), "handler panicked")
		require.Contains(t, logged.String(), "worker_test.go", "the stack is in the log")
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestWorkerHeartbeatKeepsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		var calls atomic.Int32
		handler := queue.HandlerFunc(func(ctx context.Context, d *queue.Delivery) error {
			calls.Add(1)
			time.Sleep(time.Minute) // far beyond the 3 s lease
			return ctx.Err()
		})
		// Two workers: a lost lease would hand the job to the other one.
		var stops []func() error
		for range 2 {
			w := wNew(t, m, queue.WorkerConfig{Lease: 3 * time.Second})
			require.NoError(t, w.Handle("long", handler))
			stops = append(stops, wRun(t, w))
		}
		info := wWait(t, m, wEnqueue(t, m, queue.Job{Type: "long"}))
		require.Equal(t, queue.StateDone, info.State)
		require.Equal(t, 1, info.Attempt)
		require.EqualValues(t, 1, calls.Load())
		for _, stop := range stops {
			require.ErrorIs(t, stop(), context.Canceled)
		}
	})
}

func TestWorkerCancelStopsTheHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		w := wNew(t, m, queue.WorkerConfig{Lease: 3 * time.Second})
		started := make(chan struct{})
		causes := make(chan error, 1)
		require.NoError(t, w.HandleFunc("long", func(ctx context.Context, d *queue.Delivery) error {
			close(started)
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return nil // must not be acknowledged
		}))
		stop := wRun(t, w)
		id := wEnqueue(t, m, queue.Job{Type: "long"})
		<-started
		start := time.Now()
		require.NoError(t, m.Cancel(t.Context(), id))
		require.ErrorIs(t, <-causes, queue.ErrCanceled)
		require.LessOrEqual(t, time.Since(start), time.Second) // the next heartbeat
		synctest.Wait()
		info, err := m.Status(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, queue.StateCanceled, info.State)
		require.Empty(t, info.Result)
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

// wLossyQueue is a Memory whose deliveries lose their lease at the first
// Extend, and which counts acknowledgements.
type wLossyQueue struct {
	*queue.Memory
	acks atomic.Int32
}

func (q *wLossyQueue) Dequeue(ctx context.Context, queues []string, lease time.Duration) (*queue.Delivery, error) {
	d, err := q.Memory.Dequeue(ctx, queues, lease)
	if err != nil {
		return nil, err
	}
	return queue.NewDelivery(q, *d), nil
}

func (q *wLossyQueue) Ack(ctx context.Context, d *queue.Delivery, result []byte) error {
	q.acks.Add(1)
	return q.Memory.Ack(ctx, d, result)
}

func (q *wLossyQueue) Extend(context.Context, *queue.Delivery, time.Duration) error {
	return fmt.Errorf("%w: taken over", queue.ErrLeaseLost)
}

func TestWorkerLeaseLostStopsTheHandlerWithoutAck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &wLossyQueue{Memory: wMemory(t, queue.MemoryConfig{})}
		w := wNew(t, q, queue.WorkerConfig{Lease: 3 * time.Second})
		causes := make(chan error, 1)
		require.NoError(t, w.HandleFunc("long", func(ctx context.Context, d *queue.Delivery) error {
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return nil
		}))
		stop := wRun(t, w)
		wEnqueue(t, q, queue.Job{Type: "long", MaxAttempts: 1})
		require.ErrorIs(t, <-causes, queue.ErrLeaseLost)
		synctest.Wait()
		require.Zero(t, q.acks.Load())
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

func TestWorkerShutdownLetsJobsFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		w := wNew(t, m, queue.WorkerConfig{ShutdownTimeout: 10 * time.Second})
		started := make(chan struct{})
		require.NoError(t, w.HandleFunc("slow", func(ctx context.Context, d *queue.Delivery) error {
			close(started)
			time.Sleep(5 * time.Second)
			return ctx.Err()
		}))
		stop := wRun(t, w)
		id := wEnqueue(t, m, queue.Job{Type: "slow"})
		<-started
		start := time.Now()
		require.ErrorIs(t, stop(), context.Canceled)
		require.Equal(t, 5*time.Second, time.Since(start))
		info, err := m.Status(t.Context(), id)
		require.NoError(t, err)
		require.Equal(t, queue.StateDone, info.State)
	})
}

func TestWorkerShutdownTimeoutReleasesJobs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		w := wNew(t, m, queue.WorkerConfig{ShutdownTimeout: 2 * time.Second})
		var started sync.WaitGroup
		started.Add(3)
		require.NoError(t, w.HandleFunc("stuck", func(ctx context.Context, d *queue.Delivery) error {
			started.Done()
			<-ctx.Done()
			return ctx.Err()
		}))
		stop := wRun(t, w)
		var ids []queue.JobID
		for range 3 {
			ids = append(ids, wEnqueue(t, m, queue.Job{Type: "stuck"}))
		}
		started.Wait()
		start := time.Now()
		require.ErrorIs(t, stop(), context.Canceled)
		require.Equal(t, 2*time.Second, time.Since(start))
		for _, id := range ids {
			info, err := m.Status(t.Context(), id)
			require.NoError(t, err)
			require.Equal(t, queue.StateReady, info.State) // released, not failed
			require.Zero(t, info.Attempt)
		}

		// Another worker takes them at once.
		w2 := wNew(t, m, queue.WorkerConfig{})
		require.NoError(t, w2.HandleFunc("stuck", func(context.Context, *queue.Delivery) error { return nil }))
		stop2 := wRun(t, w2)
		for _, id := range ids {
			info := wWait(t, m, id)
			require.Equal(t, queue.StateDone, info.State)
			require.Equal(t, 1, info.Attempt)
		}
		require.Equal(t, 2*time.Second, time.Since(start))
		require.ErrorIs(t, stop2(), context.Canceled)
	})
}

func TestWorkerShutdownWhileIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := wMemory(t, queue.MemoryConfig{})
		w := wNew(t, m, queue.WorkerConfig{Concurrency: 50})
		stop := wRun(t, w)
		synctest.Wait()
		start := time.Now()
		require.ErrorIs(t, stop(), context.Canceled)
		require.Zero(t, time.Since(start))
		// Run may run again after it returned.
		stop = wRun(t, w)
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

func TestWorkerRunTwiceAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := wNew(t, wMemory(t, queue.MemoryConfig{}), queue.WorkerConfig{})
		stop := wRun(t, w)
		synctest.Wait()
		require.ErrorIs(t, w.Run(t.Context()), queue.ErrAlreadyRunning)
		require.NotErrorIs(t, w.Run(t.Context()), queue.ErrInvalidConfig, "a second Run is no configuration error")
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

// wFlakyQueue fails its first failures Dequeue calls, counting them.
type wFlakyQueue struct {
	*queue.Memory
	failures int32
	calls    atomic.Int32
}

func (q *wFlakyQueue) Dequeue(ctx context.Context, queues []string, lease time.Duration) (*queue.Delivery, error) {
	if q.calls.Add(1) <= q.failures {
		return nil, errors.New("connection refused")
	}
	return q.Memory.Dequeue(ctx, queues, lease)
}

func TestWorkerSurvivesDequeueErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &wFlakyQueue{Memory: wMemory(t, queue.MemoryConfig{}), failures: 8}
		w := wNew(t, q, queue.WorkerConfig{Concurrency: 1})
		require.NoError(t, w.HandleFunc("job", func(context.Context, *queue.Delivery) error { return nil }))
		id := wEnqueue(t, q, queue.Job{Type: "job"})
		start := time.Now()
		stop := wRun(t, w)
		require.Equal(t, queue.StateDone, wWait(t, q, id).State)
		elapsed := time.Since(start)
		// 8 failed calls: the waits double from 100 ms to 5 s, each
		// jittered over [d/2, d]: 16.3 s at most, half of it at least.
		require.GreaterOrEqual(t, elapsed, 8150*time.Millisecond)
		require.LessOrEqual(t, elapsed, 16300*time.Millisecond)
		synctest.Wait()
		require.EqualValues(t, 10, q.calls.Load()) // and one more waiting for work
		require.ErrorIs(t, stop(), context.Canceled)
	})
}

// wRecordingQueue hands out no-op deliveries and records the queue order
// of each Dequeue until it has n of them.
type wRecordingQueue struct {
	queue.JobQueue
	n      int
	mu     sync.Mutex
	orders [][]string
	full   chan struct{}
}

func (q *wRecordingQueue) Dequeue(ctx context.Context, queues []string, lease time.Duration) (*queue.Delivery, error) {
	q.mu.Lock()
	if len(q.orders) == q.n {
		q.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	q.orders = append(q.orders, append([]string(nil), queues...))
	if len(q.orders) == q.n {
		close(q.full)
	}
	q.mu.Unlock()
	return queue.NewDelivery(wNopSettler{}, queue.Delivery{Job: queue.Job{Type: "nop"}, ID: "x/y", Attempt: 1}), nil
}

type wNopSettler struct{}

func (wNopSettler) Ack(context.Context, *queue.Delivery, []byte) error           { return nil }
func (wNopSettler) Fail(context.Context, *queue.Delivery, error) error           { return nil }
func (wNopSettler) Extend(context.Context, *queue.Delivery, time.Duration) error { return nil }
func (wNopSettler) Release(context.Context, *queue.Delivery) error               { return nil }

func wDequeueOrders(t *testing.T, cfg queue.WorkerConfig, n int) [][]string {
	q := &wRecordingQueue{n: n, full: make(chan struct{})}
	cfg.Concurrency = 4
	w := wNew(t, q, cfg)
	require.NoError(t, w.HandleFunc("nop", func(context.Context, *queue.Delivery) error { return nil }))
	stop := wRun(t, w)
	<-q.full
	require.ErrorIs(t, stop(), context.Canceled)
	return q.orders
}

func TestWorkerWeightedQueueOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 6000
		orders := wDequeueOrders(t, queue.WorkerConfig{Queues: map[string]int{"high": 6, "mid": 3, "low": 1}}, n)
		first := map[string]int{}
		for _, o := range orders {
			require.ElementsMatch(t, []string{"high", "mid", "low"}, o)
			first[o[0]]++
		}
		// Expected 3600, 1800, 600; allow about 5 standard deviations.
		require.InDelta(t, 3600, first["high"], 200)
		require.InDelta(t, 1800, first["mid"], 170)
		require.InDelta(t, 600, first["low"], 120)
	})
}

func TestWorkerStrictQueueOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		orders := wDequeueOrders(t, queue.WorkerConfig{
			Queues:         map[string]int{"low": 1, "high": 9, "mid-b": 5, "mid-a": 5},
			StrictPriority: true,
		}, 100)
		for _, o := range orders {
			require.Equal(t, []string{"high", "mid-a", "mid-b", "low"}, o)
		}
	})
}

func TestNewWorkerInvalidConfig(t *testing.T) {
	m := wMemory(t, queue.MemoryConfig{})
	for name, cfg := range map[string]queue.WorkerConfig{
		"negative concurrency":      {Concurrency: -1},
		"negative lease":            {Lease: -time.Second},
		"negative job timeout":      {JobTimeout: -time.Second},
		"negative shutdown timeout": {ShutdownTimeout: -time.Second},
		"heartbeat not under lease": {Lease: time.Second, Heartbeat: time.Second},
		"negative heartbeat":        {Heartbeat: -time.Second},
		"zero weight":               {Queues: map[string]int{"a": 0}},
		"bad queue name":            {Queues: map[string]int{"a b": 1}},
	} {
		_, err := queue.NewWorker(m, cfg)
		require.ErrorIs(t, err, queue.ErrInvalidConfig, name)
	}
	_, err := queue.NewWorker(nil, queue.WorkerConfig{})
	require.ErrorIs(t, err, queue.ErrInvalidConfig)
}

func TestWorkerHandleInvalid(t *testing.T) {
	w := wNew(t, wMemory(t, queue.MemoryConfig{}), queue.WorkerConfig{})
	h := queue.HandlerFunc(func(context.Context, *queue.Delivery) error { return nil })
	require.ErrorIs(t, w.Handle("", h), queue.ErrInvalidConfig)
	require.ErrorIs(t, w.Handle("a", nil), queue.ErrInvalidConfig)
	require.ErrorIs(t, w.HandleFunc("a", nil), queue.ErrInvalidConfig)
	require.NoError(t, w.Handle("a", h))
	require.ErrorIs(t, w.Handle("a", h), queue.ErrInvalidConfig)
}

func TestResultFuncOutsideWorker(t *testing.T) {
	f := queue.ResultFunc(func(context.Context, *queue.Delivery) ([]byte, error) { return []byte("ignored"), nil })
	require.NoError(t, f.Process(context.Background(), &queue.Delivery{})) // no Worker to take the result: no panic
}
