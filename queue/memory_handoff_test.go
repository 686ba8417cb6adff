package queue_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

// A job that becomes ready wakes one blocked Dequeue, the first that
// listens on its queue. When that one does not take the job — it takes
// another job first, or gives up — the wake-up must pass to the next
// waiter, or the job stays ready while a consumer sleeps beside it.
// These tests run in a bubble and have no timer that could wake a
// consumer: a wake-up that is not passed on is never made up for.

// consumer is a blocked Dequeue on queues, started and left blocked.
type consumer struct {
	cancel context.CancelFunc
	got    chan *queue.Delivery // the delivery, if Dequeue returned one
}

func startConsumer(t *testing.T, wg *sync.WaitGroup, m *queue.Memory, queues ...string) *consumer {
	ctx, cancel := context.WithCancel(t.Context())
	c := &consumer{cancel: cancel, got: make(chan *queue.Delivery, 1)}
	wg.Go(func() {
		if d, err := m.Dequeue(ctx, queues, time.Minute); err == nil {
			c.got <- d
		}
	})
	synctest.Wait() // blocked: the consumers queue up in the order started
	return c
}

// delivery returns what c's Dequeue returned, or nil while it is blocked.
func (c *consumer) delivery() *queue.Delivery {
	select {
	case d := <-c.got:
		return d
	default:
		return nil
	}
}

// TestMemoryWakeupPassedOnWhenTakenElsewhere: the first waiter, woken for
// a job in "a", finds a job in "b", which comes first in its list, and
// takes that one; the waiter behind it, on "a" alone, must be woken for
// the job in "a".
func TestMemoryWakeupPassedOnWhenTakenElsewhere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemoryQueue(t, time.Millisecond)
		var wg sync.WaitGroup
		defer wg.Wait()
		first := startConsumer(t, &wg, m, "b", "a")
		defer first.cancel()
		second := startConsumer(t, &wg, m, "a")
		defer second.cancel()

		// One batch, under one lock: the job in "a" wakes the first
		// waiter; by then it is off the waiting list, so the job in "b"
		// wakes no one.
		_, err := m.EnqueueBatch(t.Context(), []queue.Job{{Queue: "a", Type: "t"}, {Queue: "b", Type: "t"}})
		require.NoError(t, err)
		synctest.Wait()

		d := first.delivery()
		require.NotNil(t, d, "the first waiter took nothing")
		require.Equal(t, "b", d.Job.Queue, "the first waiter took the job of its first queue")
		d = second.delivery()
		require.NotNil(t, d, "the job in \"a\" stayed ready while a consumer of \"a\" slept: the first waiter's wake-up was not passed on")
		require.Equal(t, "a", d.Job.Queue)
	})
}

// TestMemoryWakeupPassedOnWhenGivenUp: the first waiter, woken for a job,
// is canceled before it takes it; the waiter behind it must be woken for
// the job. Each trial cancels right after the Enqueue that wakes the
// first waiter, which then, almost always, has not yet run: it leaves
// without the job and must pass the wake-up on. When it did run first,
// it took the job, which is fine too; the test requires that the hand-off
// was tried at all.
func TestMemoryWakeupPassedOnWhenGivenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemoryQueue(t, time.Millisecond)
		const trials = 50
		handedOff := 0
		for trial := range trials {
			var wg sync.WaitGroup
			first := startConsumer(t, &wg, m, "a")
			second := startConsumer(t, &wg, m, "a")
			_, err := m.Enqueue(t.Context(), queue.Job{Queue: "a", Type: "t"})
			require.NoError(t, err)
			first.cancel()
			synctest.Wait()

			d := first.delivery()
			if d == nil {
				d = second.delivery()
				require.NotNil(t, d, "trial %d: the job stayed ready while a consumer slept: the canceled waiter's wake-up was not passed on", trial)
				handedOff++
			}
			require.NoError(t, d.Ack(t.Context(), nil))
			second.cancel()
			wg.Wait()
		}
		t.Logf("%d trials, %d in which the canceled waiter handed the wake-up on", trials, handedOff)
		require.Positive(t, handedOff, "in none of %d trials did the canceled waiter leave before taking the job: the hand-off was never tested", trials)
	})
}
