package pgqueue_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
)

// Enqueue notifies after its commit, coalescing the NOTIFYs of concurrent
// Enqueues (see notifier): no burst of Enqueues may leave a job that only
// a poll finds. The consumer is another Queue (another process) whose
// PollInterval is a minute, so it finds jobs by notifications alone. Each
// of its 16 workers waits on a queue of its own, so a job is found only
// through the NOTIFY for its queue (a worker busy with another job would
// find it anyway); each round enqueues one job to every queue at once.
func TestEnqueueNotifiesOtherProcesses(t *testing.T) {
	db := testenv.PostgresDB(t, testenv.PGPrimaryDSN(t))
	prefix := testPrefix(t, db)
	producer := newQueue(t, db, prefix, pgqueue.Config{}, true)
	consumer := newQueue(t, db, prefix, pgqueue.Config{PollInterval: time.Minute}, false)

	const rounds, queues = 20, 16
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan int, queues)
	var workers sync.WaitGroup
	defer workers.Wait()
	defer cancel()
	for i := range queues {
		workers.Go(func() {
			for ctx.Err() == nil {
				d, err := consumer.Dequeue(ctx, []string{fmt.Sprint("n", i)}, time.Minute)
				if err != nil {
					return
				}
				_ = consumer.Ack(context.Background(), d, nil)
				got <- i
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // let the workers block (if one has not, it finds its job by looking)

	for r := range rounds {
		var enq sync.WaitGroup
		for i := range queues {
			enq.Go(func() {
				_, err := producer.Enqueue(context.Background(), queue.Job{Queue: fmt.Sprint("n", i), Type: "t", Payload: []byte{byte(r)}})
				require.NoError(t, err)
			})
		}
		enq.Wait()
		deadline := time.After(20 * time.Second) // a minute's poll is what a lost NOTIFY costs
		for n := 0; n < queues; n++ {
			select {
			case <-got:
			case <-deadline:
				t.Fatalf("round %d: %d of %d jobs found after 20 s: a NOTIFY was lost, the rest wait for the poll", r, n, queues)
			}
		}
	}
}

// A job enqueued just before Close still wakes the other processes: Close
// sends the NOTIFYs pending before it returns.
func TestCloseSendsPendingNotifies(t *testing.T) {
	db := testenv.PostgresDB(t, testenv.PGPrimaryDSN(t))
	prefix := testPrefix(t, db)
	consumer := newQueue(t, db, prefix, pgqueue.Config{PollInterval: time.Minute}, true)
	got := make(chan error, 1)
	ctx := ctxFor(t, 30*time.Second)
	go func() {
		_, err := consumer.Dequeue(ctx, []string{"c"}, time.Minute)
		got <- err
	}()
	time.Sleep(200 * time.Millisecond) // let the Dequeue block (if it has not, it finds the job)
	for range 5 {
		producer := newQueue(t, db, prefix, pgqueue.Config{}, false)
		_, err := producer.Enqueue(ctx, queue.Job{Queue: "c", Type: "t"})
		require.NoError(t, err)
		require.NoError(t, producer.Close())
	}
	select {
	case err := <-got:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the blocked Dequeue heard of none of 5 jobs whose producers closed at once")
	}
}
