package pgqueue_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
)

// Many Dequeues and Acks at once run as batched statements, which must
// keep every promise of one statement per call: each job leased once,
// each current delivery acked once, a delivery acked twice at once acked
// by one of the two, a forged token refused, and the done total exact.
func TestBatchedLeasesAndAcks(t *testing.T) {
	db := testenv.PostgresDB(t, testenv.PGPrimaryDSN(t))
	// A pool as a service would size it: 500 Acks at once must not need
	// 500 connections (the shared server would refuse them).
	db.SetMaxOpenConns(16)
	prefix := testPrefix(t, db)
	q := newQueue(t, db, prefix, pgqueue.Config{}, true)
	ctx := ctxFor(t, time.Minute)
	const jobs = 300
	batch := make([]queue.Job, jobs)
	for i := range batch {
		batch[i] = queue.Job{Queue: "b", Type: "t", Payload: []byte{byte(i), byte(i >> 8)}}
	}
	_, err := q.EnqueueBatch(ctx, batch)
	require.NoError(t, err)

	// 50 workers lease at once.
	var mu sync.Mutex
	var ds []*queue.Delivery
	seen := map[queue.JobID]bool{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			<-start
			for {
				dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				d, err := q.Dequeue(dctx, []string{"b"}, time.Minute)
				cancel()
				if err != nil {
					require.ErrorIs(t, err, context.DeadlineExceeded)
					return
				}
				mu.Lock()
				require.False(t, seen[d.ID], "%s leased twice", d.ID)
				seen[d.ID] = true
				ds = append(ds, d)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	require.Len(t, ds, jobs, "every job leased once")

	// Another process waits for some of the jobs, hearing of their end
	// only by the notification the batched Ack sends (its poll is a
	// minute away).
	watcher := newQueue(t, db, prefix, pgqueue.Config{PollInterval: time.Minute}, false)
	waited := make(chan error, 10)
	for _, d := range ds[:10] {
		go func() {
			in, err := watcher.Wait(ctxFor(t, 20*time.Second), d.ID)
			if err == nil && in.State != queue.StateDone {
				err = fmt.Errorf("%s ended %v", d.ID, in.State)
			}
			waited <- err
		}()
	}
	time.Sleep(300 * time.Millisecond) // the Waits mark their jobs awaited

	// Every delivery acked at once: a third of them twice, and a forged
	// token for each of another third.
	var acked, lost, doubleOK atomic.Int64
	start = make(chan struct{})
	for i, d := range ds {
		wg.Go(func() {
			<-start
			if q.Ack(ctx, d, []byte("r")) == nil {
				acked.Add(1)
			}
		})
		switch i % 3 {
		case 0:
			wg.Go(func() {
				<-start
				if err := q.Ack(ctx, d, []byte("r")); err == nil {
					doubleOK.Add(1)
				} else {
					require.ErrorIs(t, err, queue.ErrLeaseLost)
				}
			})
		case 1:
			forged := *d
			forged.Token++
			wg.Go(func() {
				<-start
				if err := q.Ack(ctx, &forged, nil); err != nil {
					require.ErrorIs(t, err, queue.ErrLeaseLost)
					lost.Add(1)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	require.EqualValues(t, jobs/3, lost.Load(), "every forged token refused")
	require.EqualValues(t, jobs, acked.Load()+doubleOK.Load(), "each job acked exactly once, by one of its two Acks")
	c, err := q.Counts(ctx, "b")
	require.NoError(t, err)
	require.EqualValues(t, jobs, c.DoneTotal)
	require.Zero(t, c.Pending())
	for _, d := range ds[:10] {
		in := status(t, q, d.ID)
		require.Equal(t, queue.StateDone, in.State)
		require.Equal(t, []byte("r"), in.Result)
	}
	for range 10 {
		require.NoError(t, <-waited, "a Wait in another process for a job of a batched Ack")
	}
	leases, acks, _ := pgqueue.Batches(q)
	t.Logf("batched statements: %d lease, %d ack", leases, acks)
	require.Positive(t, leases, "50 Dequeues at once ran no batched lease")
	require.Positive(t, acks, "500 Acks at once ran no batched ack")
}

// Workers settling with AckAndDequeue at once run batched statements that
// ack some jobs and lease as many: each job is leased once and acked
// once, a forged token is refused and leases nothing, a Wait in another
// process hears of the end, and the done total is exact.
func TestBatchedAckAndDequeue(t *testing.T) {
	db := testenv.PostgresDB(t, testenv.PGPrimaryDSN(t))
	db.SetMaxOpenConns(16)
	prefix := testPrefix(t, db)
	q := newQueue(t, db, prefix, pgqueue.Config{}, true)
	ctx := ctxFor(t, time.Minute)
	const jobs, workers = 400, 40
	batch := make([]queue.Job, jobs)
	for i := range batch {
		batch[i] = queue.Job{Queue: "b", Type: "t", Payload: []byte{byte(i), byte(i >> 8)}}
	}
	ids, err := q.EnqueueBatch(ctx, batch)
	require.NoError(t, err)

	watcher := newQueue(t, db, prefix, pgqueue.Config{PollInterval: time.Minute}, false)
	waited := make(chan error, 10)
	for _, id := range ids[jobs-10:] {
		go func() {
			in, err := watcher.Wait(ctxFor(t, 30*time.Second), id)
			if err == nil && in.State != queue.StateDone {
				err = fmt.Errorf("%s ended %v", id, in.State)
			}
			waited <- err
		}()
	}
	time.Sleep(300 * time.Millisecond) // the Waits mark their jobs awaited

	var mu sync.Mutex
	leased := map[queue.JobID]int{}
	var acked, forgedRefused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			d, err := q.Dequeue(dctx, []string{"b"}, time.Minute)
			cancel()
			if err != nil {
				require.ErrorIs(t, err, context.DeadlineExceeded) // the others took every job
				return
			}
			for i := 0; d != nil; i++ {
				mu.Lock()
				leased[d.ID]++
				mu.Unlock()
				if (w+i)%4 == 0 {
					forged := *d
					forged.Token++
					next, err := q.AckAndDequeue(ctx, &forged, []byte("forged"), time.Minute)
					require.ErrorIs(t, err, queue.ErrLeaseLost)
					require.Nil(t, next, "a refused ack leased a job")
					forgedRefused.Add(1)
				}
				next, err := q.AckAndDequeue(ctx, d, []byte("r"), time.Minute)
				require.NoError(t, err)
				acked.Add(1)
				d = next
			}
		})
	}
	close(start)
	wg.Wait()
	require.EqualValues(t, jobs, acked.Load())
	require.Len(t, leased, jobs)
	for id, n := range leased {
		require.Equal(t, 1, n, "%s leased %d times", id, n)
	}
	c, err := q.Counts(ctx, "b")
	require.NoError(t, err)
	require.EqualValues(t, jobs, c.DoneTotal)
	require.Zero(t, c.Pending())
	require.Zero(t, c.Active)
	for _, id := range ids[:10] {
		in := status(t, q, id)
		require.Equal(t, []byte("r"), in.Result)
	}
	for range 10 {
		require.NoError(t, <-waited, "a Wait in another process for a job of a batched AckAndDequeue")
	}
	_, _, ackLeases := pgqueue.Batches(q)
	t.Logf("batched ack-and-lease statements: %d; forged tokens refused: %d", ackLeases, forgedRefused.Load())
	require.Positive(t, ackLeases, "40 workers at once ran no batched ack-and-lease")
}

// A worker kept busy by AckAndDequeue never calls Dequeue, which is where
// expired leases were turned into retries: AckAndDequeue does it too, so
// the job of a worker that died is run again while the queue stays busy.
func TestAckAndDequeueRetriesExpiredLeases(t *testing.T) {
	db := testenv.PostgresDB(t, testenv.PGPrimaryDSN(t))
	q := newQueue(t, db, testPrefix(t, db), pgqueue.Config{}, true)
	ctx := ctxFor(t, time.Minute)
	lost, err := q.Enqueue(ctx, queue.Job{Queue: "b", Type: "t", Priority: 9, MaxAttempts: 3})
	require.NoError(t, err)
	dead, err := q.Dequeue(ctx, []string{"b"}, 200*time.Millisecond) // its worker dies
	require.NoError(t, err)
	require.Equal(t, lost, dead.ID)
	const busy = 400 // 10 s of work at 25 ms a job: the queue never runs dry
	batch := make([]queue.Job, busy)
	for i := range batch {
		batch[i] = queue.Job{Queue: "b", Type: "t"}
	}
	_, err = q.EnqueueBatch(ctx, batch)
	require.NoError(t, err)

	d, err := q.Dequeue(ctx, []string{"b"}, time.Minute)
	require.NoError(t, err)
	for n := 0; d != nil && d.ID != lost; n++ {
		require.Less(t, n, busy, "the expired job never came back while the queue was busy")
		time.Sleep(25 * time.Millisecond)
		d, err = q.AckAndDequeue(ctx, d, nil, time.Minute)
		require.NoError(t, err)
	}
	require.NotNil(t, d, "the queue ran dry before the expired job came back")
	require.Equal(t, 2, d.Attempt, "the retry of the expired lease")
	require.Greater(t, d.Token, dead.Token)
}
