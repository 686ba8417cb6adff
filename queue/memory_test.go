package queue_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/queuetest"
)

func newMemoryQueue(t testing.TB, backoff time.Duration) *queue.Memory {
	m, err := queue.NewMemory(queue.MemoryConfig{Backoff: func(int) time.Duration { return backoff }})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

func TestMemoryConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.JobQueue { return newMemoryQueue(t, 20*time.Millisecond) })
}

func TestMemoryConfig(t *testing.T) {
	_, err := queue.NewMemory(queue.MemoryConfig{MaxPayload: -1})
	require.ErrorIs(t, err, queue.ErrInvalidConfig)
	m, err := queue.NewMemory(queue.MemoryConfig{MaxPayload: 10})
	require.NoError(t, err)
	defer m.Close()
	_, err = m.Enqueue(t.Context(), queue.Job{Type: "t", Payload: make([]byte, 11)})
	require.ErrorIs(t, err, queue.ErrPayloadTooLarge)
	id, err := m.Enqueue(t.Context(), queue.Job{Type: "t", Payload: make([]byte, 10)})
	require.NoError(t, err)
	in, err := m.Status(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, queue.DefaultQueue, in.Queue)

	ctx := t.Context()
	_, err = m.Dequeue(ctx, nil, time.Second)
	require.ErrorIs(t, err, queue.ErrInvalidConfig)
	_, err = m.Dequeue(ctx, []string{"q"}, 0)
	require.ErrorIs(t, err, queue.ErrInvalidConfig)
	_, err = m.Dequeue(ctx, []string{"bad name"}, time.Second)
	require.ErrorIs(t, err, queue.ErrInvalidConfig)
	require.ErrorIs(t, m.SetLimits(ctx, "q", queue.Limits{Rate: -1}), queue.ErrInvalidConfig)
	require.ErrorIs(t, m.SetLimits(ctx, "", queue.Limits{}), queue.ErrInvalidConfig)
	_, err = m.Dead(ctx, "q", -1, 1)
	require.ErrorIs(t, err, queue.ErrInvalidConfig)
}

// TestMemoryTiming checks leases, backoff and delays to the nanosecond in
// a synctest bubble.
func TestMemoryTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemoryQueue(t, 3*time.Second)
		ctx := t.Context()
		start := time.Now()
		id, err := m.Enqueue(ctx, queue.Job{Queue: "q", Type: "t", RunAt: start.Add(time.Minute), MaxAttempts: 2})
		require.NoError(t, err)

		d, err := m.Dequeue(ctx, []string{"q"}, 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, time.Minute, time.Since(start), "delivered exactly at RunAt")
		require.Equal(t, start.Add(time.Minute+10*time.Second), d.LeaseUntil)

		// The lease expires; the retry waits the backoff.
		d2, err := m.Dequeue(ctx, []string{"q"}, 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, time.Minute+13*time.Second, time.Since(start))
		require.Equal(t, 2, d2.Attempt)
		require.Greater(t, d2.Token, d.Token)
		in, err := m.Status(ctx, id)
		require.NoError(t, err)
		require.Equal(t, "lease expired", in.LastErr)
		require.ErrorIs(t, d.Ack(ctx, nil), queue.ErrLeaseLost)

		// Extend moves the lease end; Wait sees the last lease run out.
		time.Sleep(5 * time.Second)
		require.NoError(t, d2.Extend(ctx, 20*time.Second))
		in, err = m.Wait(ctx, id)
		require.NoError(t, err)
		require.Equal(t, queue.StateDead, in.State)
		require.Equal(t, time.Minute+38*time.Second, time.Since(start))
		require.Equal(t, time.Now(), in.EndedAt)

		// Retention.
		time.Sleep(queue.DefaultRetention - time.Nanosecond)
		_, err = m.Status(ctx, id)
		require.NoError(t, err)
		time.Sleep(time.Nanosecond)
		_, err = m.Status(ctx, id)
		require.ErrorIs(t, err, queue.ErrNotFound)
	})
}

func TestMemoryRateExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemoryQueue(t, time.Second)
		ctx := t.Context()
		require.NoError(t, m.SetLimits(ctx, "q", queue.Limits{Rate: 2, Burst: 3}))
		for range 6 {
			_, err := m.Enqueue(ctx, queue.Job{Queue: "q", Type: "t"})
			require.NoError(t, err)
		}
		start := time.Now()
		var at []time.Duration
		for range 6 {
			d, err := m.Dequeue(ctx, []string{"q"}, time.Hour)
			require.NoError(t, err)
			at = append(at, time.Since(start))
			require.NoError(t, d.Ack(ctx, nil))
		}
		s := time.Second
		require.Equal(t, []time.Duration{0, 0, 0, s / 2, s, 3 * s / 2}, at)
	})
}

func TestMemoryClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := queue.NewMemory(queue.MemoryConfig{})
		require.NoError(t, err)
		ctx := t.Context()
		id, err := m.Enqueue(ctx, queue.Job{Type: "t", RunAt: time.Now().Add(time.Hour)})
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		wg.Go(func() {
			_, err := m.Dequeue(ctx, []string{"other"}, time.Second)
			errs <- err
		})
		wg.Go(func() {
			_, err := m.Wait(ctx, id)
			errs <- err
		})
		synctest.Wait()
		require.NoError(t, m.Close())
		require.NoError(t, m.Close())
		wg.Wait()
		require.ErrorIs(t, <-errs, queue.ErrClosed)
		require.ErrorIs(t, <-errs, queue.ErrClosed)
		_, err = m.Enqueue(ctx, queue.Job{Type: "t"})
		require.ErrorIs(t, err, queue.ErrClosed)
		_, err = m.Status(ctx, id)
		require.ErrorIs(t, err, queue.ErrClosed)
		// synctest.Test fails if any goroutine of the bubble is left.
	})
}

// TestMemoryNoGoroutines checks that Memory needs no goroutine of its own:
// synctest.Test fails when a goroutine of the bubble is left blocked, and
// the queue is not even closed.
func TestMemoryNoGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := queue.NewMemory(queue.MemoryConfig{Backoff: func(int) time.Duration { return time.Hour }})
		require.NoError(t, err)
		ctx := t.Context()
		for i := range 10 {
			_, err := m.Enqueue(ctx, queue.Job{Type: "t", RunAt: time.Now().Add(time.Duration(i) * time.Minute)})
			require.NoError(t, err)
		}
		require.NoError(t, m.SetLimits(ctx, queue.DefaultQueue, queue.Limits{Rate: 1}))
		for range 3 {
			d, err := m.Dequeue(ctx, []string{queue.DefaultQueue}, time.Second)
			require.NoError(t, err)
			_ = d // its lease runs out: a retry an hour later
		}
		dctx, cancel := context.WithTimeout(ctx, time.Minute/2)
		defer cancel()
		_, err = m.Dequeue(dctx, []string{queue.DefaultQueue}, time.Second)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		synctest.Wait()
	})
}

func TestMemoryCancelFreesConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemoryQueue(t, time.Second)
		ctx := t.Context()
		require.NoError(t, m.SetLimits(ctx, "q", queue.Limits{Concurrency: 1}))
		a, _ := m.Enqueue(ctx, queue.Job{Queue: "q", Type: "t"})
		b, _ := m.Enqueue(ctx, queue.Job{Queue: "q", Type: "t"})
		d, err := m.Dequeue(ctx, []string{"q"}, time.Hour)
		require.NoError(t, err)
		require.Equal(t, a, d.ID)
		got := make(chan *queue.Delivery)
		go func() {
			d, _ := m.Dequeue(ctx, []string{"q"}, time.Hour)
			got <- d
		}()
		synctest.Wait()
		require.NoError(t, m.Cancel(ctx, a))
		d2 := <-got
		require.Equal(t, b, d2.ID)
		require.ErrorIs(t, d.Extend(ctx, time.Hour), queue.ErrCanceled)
		require.ErrorIs(t, d.Fail(ctx, errors.New("x")), queue.ErrLeaseLost)
		require.ErrorIs(t, d.Release(ctx), queue.ErrLeaseLost)
	})
}

func TestMemoryBatchInvalid(t *testing.T) {
	m := newMemoryQueue(t, time.Second)
	ctx := t.Context()
	ids, err := m.EnqueueBatch(ctx, []queue.Job{{Type: "t"}, {}})
	require.ErrorIs(t, err, queue.ErrInvalidJob)
	require.Equal(t, []queue.JobID{"", ""}, ids)
	_, err = m.Status(ctx, "default/x")
	require.ErrorIs(t, err, queue.ErrNotFound)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	_, err = m.Dequeue(dctx, []string{queue.DefaultQueue}, time.Second)
	require.ErrorIs(t, err, context.DeadlineExceeded, "an invalid batch enqueues nothing")
}

// BenchmarkMemoryThroughput enqueues, dequeues and acks no-op jobs: one
// producer goroutine and GOMAXPROCS consumers.
func BenchmarkMemoryThroughput(b *testing.B) {
	m, err := queue.NewMemory(queue.MemoryConfig{})
	require.NoError(b, err)
	defer m.Close()
	ctx := context.Background()
	queues := []string{"bench"}
	job := queue.Job{Queue: "bench", Type: "noop", Retention: time.Millisecond}
	b.ReportAllocs()
	b.ResetTimer()
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	wg.Go(func() {
		for range b.N {
			if _, err := m.Enqueue(ctx, job); err != nil {
				panic(err)
			}
		}
	})
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				d, err := m.Dequeue(ctx, queues, time.Minute)
				if err != nil {
					panic(err)
				}
				if err := d.Ack(ctx, nil); err != nil {
					panic(err)
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

func ExampleMemory() {
	q, _ := queue.NewMemory(queue.MemoryConfig{})
	defer q.Close()
	ctx := context.Background()
	id, _ := q.Enqueue(ctx, queue.Job{Queue: "mail", Type: "welcome", Payload: []byte("ann@example.com")})

	d, _ := q.Dequeue(ctx, []string{"mail"}, time.Minute)
	fmt.Printf("%s %s attempt %d\n", d.Job.Type, d.Job.Payload, d.Attempt)
	_ = d.Ack(ctx, []byte("sent"))

	info, _ := q.Wait(ctx, id)
	fmt.Println(info.State, string(info.Result))
	// Output:
	// welcome ann@example.com attempt 1
	// done sent
}

// TestMemoryWakeups checks that no wake-up is lost when blocked Dequeue
// calls listen to different, overlapping lists of queues and some give up
// (their context ends) while being woken. It runs in a synctest bubble: a
// producer's pause returns only once every consumer is durably blocked, so
// the consumers are parked in Dequeue (where wake-ups can be lost) at each
// pause, not by luck of scheduling; and the fake clock tells whether a job
// sat ready while its consumers slept to their timeout.
func TestMemoryWakeups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemoryQueue(t, time.Millisecond)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		const perQueue = 1000
		const wait = time.Second // the patient consumers' Dequeue timeout
		lists := [][]string{{"a"}, {"b"}, {"a", "b"}, {"b", "a"}, {"c", "a"}}
		start := time.Now()
		var acked atomic.Int32
		var lastAck atomic.Int64 // since start, in the bubble's clock
		var wg sync.WaitGroup
		for i, queues := range lists {
			wg.Go(func() {
				for acked.Load() < 2*perQueue && ctx.Err() == nil {
					wait := wait
					if i == 4 {
						wait = 50 * time.Microsecond // gives up often
					}
					dctx, dcancel := context.WithTimeout(ctx, wait)
					d, err := m.Dequeue(dctx, queues, time.Minute)
					dcancel()
					if err != nil {
						continue
					}
					if err := d.Ack(ctx, nil); err != nil {
						t.Error(err)
						return
					}
					acked.Add(1)
					lastAck.Store(int64(time.Since(start)))
				}
			})
		}
		for _, q := range []string{"a", "b"} {
			wg.Go(func() {
				for i := range perQueue {
					if _, err := m.Enqueue(ctx, queue.Job{Queue: q, Type: "t"}); err != nil {
						t.Error(err)
						return
					}
					if i%50 == 0 {
						// In the bubble this returns once every other
						// goroutine is durably blocked: the consumers
						// wait in Dequeue for the next Enqueue to wake them.
						time.Sleep(time.Millisecond)
					}
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 2*perQueue, acked.Load())
		// The producers pause 20 ms in all; a lost wake-up leaves a job
		// ready until a patient consumer's 1 s timeout.
		took := time.Duration(lastAck.Load())
		require.Less(t, took, wait,
			"the last of %d jobs was acked %v (bubble time) after the start: a ready job waited for a consumer's %v timeout", 2*perQueue, took, wait)
	})
}

// TestMemoryRequeueNotDead covers the DeadLetters corner cases.
func TestMemoryRequeueNotDead(t *testing.T) {
	m := newMemoryQueue(t, time.Millisecond)
	ctx := t.Context()
	id, err := m.Enqueue(ctx, queue.Job{Queue: "q", Type: "t"})
	require.NoError(t, err)
	require.ErrorIs(t, m.Requeue(ctx, id), queue.ErrNotFound)
	list, err := m.Dead(ctx, "nosuch", 0, 10)
	require.NoError(t, err)
	require.Empty(t, list)
	list, err = m.Dead(ctx, "q", 0, 0)
	require.NoError(t, err)
	require.Empty(t, list)
}

// BenchmarkMemoryDequeueAck is the hot path of a Memory queue drained by
// a worker of concurrency 10 without its goroutines: b.N jobs enqueued
// before the timer, then, per op, one Dequeue and one Ack, 10 jobs in
// flight (leased) at a time, acked in the order they came.
func BenchmarkMemoryDequeueAck(b *testing.B) {
	m, err := queue.NewMemory(queue.MemoryConfig{})
	require.NoError(b, err)
	defer m.Close()
	ctx := context.Background()
	queues := []string{"bench"}
	batch := make([]queue.Job, 1000)
	for i := range batch {
		batch[i] = queue.Job{Queue: "bench", Type: "noop", Retention: time.Millisecond}
	}
	for n := 0; n < b.N+10; n += len(batch) {
		_, err := m.EnqueueBatch(ctx, batch)
		require.NoError(b, err)
	}
	const inFlight = 10
	var ds []*queue.Delivery
	for range inFlight {
		d, err := m.Dequeue(ctx, queues, time.Minute)
		require.NoError(b, err)
		ds = append(ds, d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := ds[i%inFlight].Ack(ctx, nil); err != nil {
			b.Fatal(err)
		}
		d, err := m.Dequeue(ctx, queues, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		ds[i%inFlight] = d
	}
}
