package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

// Tries and ready jobs of testDequeueCanceled.
const (
	cancelTries = 400
	cancelReady = 20
	// cancelPoints is how many points at which a try ends walk over one
	// and a half times the time a Dequeue takes, measured first (at most
	// cancelSpan): try i ends (i/2 mod cancelPoints) steps after it
	// starts, so that the tries end before the call reaches the server,
	// while it works, and after it answered.
	cancelPoints = 100
	cancelSpan   = 30 * time.Millisecond
)

// testDequeueCanceled: a Dequeue whose context ends at any point, while
// jobs are ready, either returns a delivery or leaves every job as it was.
// A queue that leased a job for a caller who left (the job active until
// its lease runs out, and that attempt counted) fails here: the lease is
// long, and every job must be delivered within patience with Attempt 1.
// Half the tries end by a deadline, half by a cancellation, each after a
// delay that walks from zero to a few round trips.
func testDequeueCanceled(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	ids := map[queue.JobID]bool{}
	add := func() {
		t.Helper()
		ids[enqueue(t, q, queue.Job{Queue: name, Type: "t", Payload: []byte(strconv.Itoa(len(ids)))})] = true
	}
	for range cancelReady {
		add()
	}
	// The time a Dequeue takes here, with a ready job: the median of a
	// few.
	var times []time.Duration
	for range 7 {
		start := time.Now()
		d := dequeue(t, q, longLease, name)
		times = append(times, time.Since(start))
		require.NoError(t, d.Release(ctx))
	}
	slices.Sort(times)
	took := times[len(times)/2]
	step := max(min(took*3/2, cancelSpan)/cancelPoints, time.Microsecond)
	delivered := map[queue.JobID]int{}
	take := func(d *queue.Delivery, how string) {
		t.Helper()
		require.True(t, ids[d.ID], "%s: delivered %s, a job of no one", how, d.ID)
		delivered[d.ID]++
		require.Equal(t, 1, delivered[d.ID], "%s: %s delivered twice", how, d.ID)
		require.Equal(t, 1, d.Attempt, "%s: %s came with Attempt %d: a canceled Dequeue counted an attempt", how, d.ID, d.Attempt)
		require.NoError(t, d.Ack(ctx, nil))
	}
	canceled := 0
	for i := range cancelTries {
		after := time.Duration(i/2%cancelPoints) * step
		var dctx context.Context
		var cancel context.CancelFunc
		if i%2 == 0 {
			dctx, cancel = context.WithTimeout(ctx, after)
		} else {
			dctx, cancel = context.WithCancel(ctx)
			stop := time.AfterFunc(after, cancel)
			defer stop.Stop()
		}
		d, err := q.Dequeue(dctx, []string{name}, longLease)
		cancel()
		switch {
		case err == nil:
			take(d, fmt.Sprintf("try %d (ended after %v)", i, after))
			add() // keep cancelReady jobs ready for the next tries
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			canceled++
		default:
			require.NoError(t, err, "try %d (ended after %v)", i, after)
		}
	}
	// Every job not yet delivered is ready: none stays leased to a caller
	// who left.
	start := time.Now()
	for len(delivered) < len(ids) {
		d, err := q.Dequeue(ctxFor(t, patience), []string{name}, longLease)
		if err != nil {
			var stuck []string
			for id := range ids {
				if delivered[id] == 0 {
					if in, serr := q.Status(ctx, id); serr == nil {
						stuck = append(stuck, fmt.Sprintf("%s %s attempt %d", id, in.State, in.Attempt))
					}
				}
			}
			t.Fatalf("%d of %d jobs not delivered %v after %d canceled Dequeues (lease %v): %v; left: %v",
				len(ids)-len(delivered), len(ids), time.Since(start).Round(time.Millisecond), canceled, longLease, err, stuck)
		}
		take(d, "drain")
	}
	t.Logf("Dequeue took up to %v; %d of %d Dequeues ended by their context (ending 0 to %v after they started); %d jobs, the last %d drained in %v",
		took, canceled, cancelTries, step*(cancelPoints-1), len(ids), cancelReady, time.Since(start))
	for id := range ids {
		in := status(t, q, id)
		require.Equal(t, queue.StateDone, in.State, "%s", id)
		require.Equal(t, 1, in.Attempt, "%s: Status counts an attempt a canceled Dequeue took", id)
	}
}
