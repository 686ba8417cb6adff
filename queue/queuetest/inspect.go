package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

func inspector(t *testing.T, q queue.JobQueue) queue.Inspector {
	in, ok := q.(queue.Inspector)
	if !ok {
		t.Skip("the queue does not implement queue.Inspector")
	}
	return in
}

func counts(t *testing.T, in queue.Inspector, name string) queue.QueueCounts {
	t.Helper()
	c, err := in.Counts(t.Context(), name)
	require.NoError(t, err)
	require.Equal(t, name, c.Queue)
	return c
}

// listAll pages through a queue's jobs in state with pages of size,
// returning their IDs in order.
func listAll(t *testing.T, in queue.Inspector, name string, state queue.State, size int) []queue.JobID {
	t.Helper()
	var ids []queue.JobID
	cursor := ""
	limit := size
	if limit == 0 {
		limit = queue.DefaultPageSize
	}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000, "List never ends")
		p, err := in.List(t.Context(), name, state, cursor, size)
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Jobs), limit)
		for _, j := range p.Jobs {
			require.Equal(t, state, j.State, "%s listed as %s", j.ID, state)
			require.Equal(t, name, j.Queue)
			ids = append(ids, j.ID)
		}
		if p.Next == "" {
			return ids
		}
		require.Len(t, p.Jobs, limit, "a page before the last is full")
		cursor = p.Next
	}
}

// fillStates gives a queue jobs in every state and returns them by state;
// dead jobs died in the order listed.
func fillStates(t *testing.T, q queue.JobQueue, name string) map[queue.State][]queue.JobID {
	ctx := t.Context()
	ids := map[queue.State][]queue.JobID{}
	for i := range 3 { // dead, in order
		id := enqueue(t, q, queue.Job{Queue: name, Type: "t", Payload: []byte{byte(i)}, MaxAttempts: 1})
		d := dequeue(t, q, longLease, name)
		require.Equal(t, id, d.ID)
		require.NoError(t, d.Fail(ctx, errors.New("dead")))
		ids[queue.StateDead] = append(ids[queue.StateDead], id)
		time.Sleep(2 * time.Millisecond) // distinct times of death
	}
	for range 2 { // active
		id := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
		d := dequeue(t, q, longLease, name)
		require.Equal(t, id, d.ID)
		ids[queue.StateActive] = append(ids[queue.StateActive], id)
	}
	done := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	d := dequeue(t, q, longLease, name)
	require.Equal(t, done, d.ID)
	require.NoError(t, d.Ack(ctx, nil))
	canceled := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	require.NoError(t, q.Cancel(ctx, canceled))
	for i := range 4 { // scheduled, in RunAt order
		id := enqueue(t, q, queue.Job{Queue: name, Type: "t", RunAt: time.Now().Add(time.Hour + time.Duration(i)*time.Second)})
		ids[queue.StateScheduled] = append(ids[queue.StateScheduled], id)
	}
	// Ready: priority first, then the order they became ready.
	low1 := enqueue(t, q, queue.Job{Queue: name, Type: "t", Headers: map[string]string{"k": "v"}})
	high := enqueue(t, q, queue.Job{Queue: name, Type: "t", Priority: 7})
	low2 := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	mid := enqueue(t, q, queue.Job{Queue: name, Type: "t", Priority: 3})
	low3 := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	ids[queue.StateReady] = []queue.JobID{high, mid, low1, low2, low3}
	return ids
}

// testInspectCounts checks Counts and Queues.
func testInspectCounts(t *testing.T, q queue.JobQueue, name string) {
	in := inspector(t, q)
	ctx := t.Context()
	require.Equal(t, queue.QueueCounts{Queue: name}, counts(t, in, name), "a queue never used has nothing")
	start := time.Now()
	fillStates(t, q, name)
	time.Sleep(50 * time.Millisecond)
	c := counts(t, in, name)
	age := time.Since(start)
	require.Equal(t, 5, c.Ready)
	require.Equal(t, 4, c.Scheduled)
	require.Equal(t, 2, c.Active)
	require.Equal(t, 3, c.Dead)
	require.EqualValues(t, 1, c.DoneTotal)
	require.EqualValues(t, 1, c.CanceledTotal)
	require.Equal(t, 11, c.Pending())
	require.False(t, c.Paused)
	// The oldest ready job (low1) became ready after the dead, active,
	// done, canceled and scheduled jobs were made, at least 50 ms ago.
	require.GreaterOrEqual(t, c.OldestReady, 50*time.Millisecond-clockSlack, "OldestReady")
	require.LessOrEqual(t, c.OldestReady, age+time.Second, "OldestReady %v, but the queue is %v old", c.OldestReady, age)

	names, err := in.Queues(ctx)
	require.NoError(t, err)
	require.Contains(t, names, name)
	require.True(t, slices.IsSorted(names), "Queues is sorted: %q", names)

	// Counts follow the jobs: a due job is ready, an expired lease a
	// retry, an ack a done.
	due := enqueue(t, q, queue.Job{Queue: name, Type: "t", RunAt: time.Now().Add(100 * time.Millisecond)})
	require.Equal(t, 5, counts(t, in, name).Scheduled)
	time.Sleep(100*time.Millisecond + 2*clockSlack)
	c = counts(t, in, name)
	require.Equal(t, 4, c.Scheduled, "a due job is no longer scheduled")
	require.Equal(t, 6, c.Ready, "a due job counts as ready")
	for range 6 {
		d := dequeue(t, q, longLease, name)
		require.NoError(t, d.Ack(ctx, nil))
	}
	c = counts(t, in, name)
	require.Zero(t, c.Ready)
	require.Zero(t, c.OldestReady, "no job is ready")
	require.EqualValues(t, 7, c.DoneTotal)
	require.Equal(t, queue.StateDone, status(t, q, due).State)

	short := enqueue(t, q, queue.Job{Queue: name, Type: "t", MaxAttempts: 3})
	d := dequeue(t, q, shortLease, name)
	require.Equal(t, short, d.ID)
	before := counts(t, in, name)
	require.Equal(t, 3, before.Active)
	time.Sleep(shortLease + 50*time.Millisecond)
	c = counts(t, in, name)
	require.Equal(t, 2, c.Active, "an expired lease is no longer active")
	require.Equal(t, before.Ready+before.Scheduled+1, c.Ready+c.Scheduled, "the expired job waits for its retry")

	for _, bad := range []string{"", "bad queue", name + "/x"} {
		_, err := in.Counts(ctx, bad)
		require.ErrorIs(t, err, queue.ErrInvalidConfig, "Counts(%q)", bad)
	}
}

// testInspectList checks List: each state's order, pagination, bounds.
func testInspectList(t *testing.T, q queue.JobQueue, name string) {
	in := inspector(t, q)
	ctx := t.Context()
	want := fillStates(t, q, name)
	slices.Reverse(want[queue.StateDead]) // most recent first
	for _, state := range []queue.State{queue.StateReady, queue.StateScheduled, queue.StateDead} {
		for _, size := range []int{0, 1, 2, 3, 5, queue.MaxPageSize} {
			require.Equal(t, want[state], listAll(t, in, name, state, size), "%s jobs with pages of %d", state, size)
		}
	}
	active := listAll(t, in, name, queue.StateActive, 1)
	require.ElementsMatch(t, want[queue.StateActive], active)

	// A page carries the jobs' information.
	p, err := in.List(ctx, name, queue.StateReady, "", 3)
	require.NoError(t, err)
	require.Len(t, p.Jobs, 3)
	require.NotEmpty(t, p.Next)
	require.Equal(t, 7, p.Jobs[0].Priority)
	require.Equal(t, map[string]string{"k": "v"}, p.Jobs[2].Headers)
	require.False(t, p.Jobs[2].EnqueuedAt.IsZero())
	p, err = in.List(ctx, name, queue.StateDead, "", 1)
	require.NoError(t, err)
	require.Equal(t, "dead", p.Jobs[0].LastErr)
	require.Equal(t, []byte{2}, p.Jobs[0].Payload)
	p, err = in.List(ctx, name, queue.StateScheduled, "", 1)
	require.NoError(t, err)
	require.False(t, p.Jobs[0].RunAt.IsZero())

	// Another queue's jobs are not listed; an unknown queue lists nothing.
	p, err = in.List(ctx, queueName(t), queue.StateReady, "", 10)
	require.NoError(t, err)
	require.Empty(t, p.Jobs)
	require.Empty(t, p.Next)

	// Bad arguments.
	for _, c := range []struct {
		state  queue.State
		cursor string
		limit  int
	}{
		{queue.StateDone, "", 10},
		{queue.StateCanceled, "", 10},
		{"lost", "", 10},
		{queue.StateReady, "", -1},
		{queue.StateReady, "", queue.MaxPageSize + 1},
		{queue.StateReady, "garbage", 10},
		{queue.StateScheduled, "garbage", 10},
		{queue.StateDead, "garbage", 10},
	} {
		_, err := in.List(ctx, name, c.state, c.cursor, c.limit)
		require.ErrorIs(t, err, queue.ErrInvalidConfig, "List(%s, %q, %d)", c.state, c.cursor, c.limit)
	}
	_, err = in.List(ctx, "bad queue", queue.StateReady, "", 10)
	require.ErrorIs(t, err, queue.ErrInvalidConfig)
}

// testInspectListStable pages through ready, scheduled and dead jobs
// while others come and go: no job that stayed in its state is skipped
// or listed twice.
func testInspectListStable(t *testing.T, q queue.JobQueue, name string) {
	in := inspector(t, q)
	ctx := t.Context()
	// Ready: 30 jobs of two priorities; between pages, the head is taken,
	// a job in the middle canceled, new ones enqueued.
	var ready []queue.JobID
	for i := range 30 {
		ready = append(ready, enqueue(t, q, queue.Job{Queue: name, Type: "t", Priority: 5 * (i % 2)}))
	}
	var scheduled []queue.JobID
	for i := range 12 {
		scheduled = append(scheduled, enqueue(t, q, queue.Job{Queue: name, Type: "t", RunAt: time.Now().Add(time.Hour + time.Duration(i%3)*time.Second)}))
	}
	gone := map[queue.JobID]bool{}
	seen := map[queue.JobID]int{}
	churn := func(step int) {
		d := dequeue(t, q, longLease, name) // the head
		gone[d.ID] = true
		require.NoError(t, d.Ack(ctx, nil))
		victim := ready[(step*7+11)%len(ready)]
		if !gone[victim] {
			require.NoError(t, q.Cancel(ctx, victim))
			gone[victim] = true
		}
		enqueue(t, q, queue.Job{Queue: name, Type: "t", Priority: 5 * (step % 2)})
		enqueue(t, q, queue.Job{Queue: name, Type: "t", RunAt: time.Now().Add(time.Hour)})
		sv := scheduled[(step*5+3)%len(scheduled)]
		if !gone[sv] {
			require.NoError(t, q.Cancel(ctx, sv))
			gone[sv] = true
		}
	}
	for _, state := range []queue.State{queue.StateReady, queue.StateScheduled} {
		cursor := ""
		for step := 0; ; step++ {
			require.Less(t, step, 100, "List never ends")
			p, err := in.List(ctx, name, state, cursor, 4)
			require.NoError(t, err)
			for _, j := range p.Jobs {
				seen[j.ID]++
				require.Equal(t, 1, seen[j.ID], "%s listed twice", j.ID)
			}
			if p.Next == "" {
				break
			}
			cursor = p.Next
			churn(step)
		}
	}
	for _, id := range append(slices.Clone(ready), scheduled...) {
		if !gone[id] {
			require.Equal(t, 1, seen[id], "%s stayed in its state and was skipped", id)
		}
	}
}

// testInspectPause checks Pause and Resume.
func testInspectPause(t *testing.T, q queue.JobQueue, name string) {
	in := inspector(t, q)
	ctx := t.Context()
	other := name + "-o"
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	require.NoError(t, in.Pause(ctx, name))
	require.NoError(t, in.Pause(ctx, name), "pausing a paused queue")
	require.True(t, counts(t, in, name).Paused)
	requireEmpty(t, q, 200*time.Millisecond, name)
	id2 := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	requireEmpty(t, q, 100*time.Millisecond, name)
	c := counts(t, in, name)
	require.Equal(t, 2, c.Ready, "Enqueue still stores jobs in a paused queue")

	// Other queues are served, also by a Dequeue that names the paused one first.
	oid := enqueue(t, q, queue.Job{Queue: other, Type: "t"})
	d := dequeue(t, q, longLease, name, other)
	require.Equal(t, oid, d.ID)
	require.NoError(t, d.Ack(ctx, nil))
	require.False(t, counts(t, in, other).Paused)
	names, err := in.Queues(ctx)
	require.NoError(t, err)
	require.Contains(t, names, name)

	// AckAndDequeue leases nothing from a paused queue.
	if ad, ok := q.(queue.AckDequeuer); ok {
		require.NoError(t, in.Resume(ctx, name))
		d := dequeue(t, q, longLease, name)
		require.NoError(t, in.Pause(ctx, name))
		next, err := ad.AckAndDequeue(ctx, d, nil, longLease)
		require.NoError(t, err)
		if next != nil {
			t.Fatalf("AckAndDequeue leased %s from a paused queue", next.ID)
		}
		id, id2 = id2, enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	}

	// Resume wakes a Dequeue blocked on the paused queue, promptly.
	type got struct {
		d   *queue.Delivery
		err error
		at  time.Time
	}
	ch := make(chan got, 1)
	go func() {
		d, err := q.Dequeue(ctxFor(t, patience), []string{name}, longLease)
		ch <- got{d, err, time.Now()}
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case r := <-ch:
		t.Fatalf("Dequeue returned from a paused queue: %v %v", r.d, r.err)
	default:
	}
	resumed := time.Now()
	require.NoError(t, in.Resume(ctx, name))
	r := <-ch
	require.NoError(t, r.err, "Resume did not wake the blocked Dequeue")
	require.Less(t, r.at.Sub(resumed), time.Second, "a Dequeue blocked on a paused queue took %v to see Resume", r.at.Sub(resumed))
	require.Contains(t, []queue.JobID{id, id2}, r.d.ID)
	require.NoError(t, r.d.Ack(ctx, nil))
	require.False(t, counts(t, in, name).Paused)
	require.NoError(t, in.Resume(ctx, name), "resuming a queue not paused")
	d = dequeue(t, q, longLease, name)
	require.NoError(t, d.Ack(ctx, nil))

	for _, f := range []func(context.Context, string) error{in.Pause, in.Resume} {
		require.ErrorIs(t, f(ctx, "bad queue"), queue.ErrInvalidConfig)
	}
}

// testInspectDead checks RequeueAll, DeleteDead and DeleteAllDead.
func testInspectDead(t *testing.T, q queue.JobQueue, name string) {
	in := inspector(t, q)
	ctx := t.Context()
	kill := func(n int) []queue.JobID {
		var ids []queue.JobID
		for i := range n {
			id := enqueue(t, q, queue.Job{Queue: name, Type: "t", Payload: []byte{byte(i)}, MaxAttempts: 1})
			d := dequeue(t, q, longLease, name)
			require.Equal(t, id, d.ID)
			require.NoError(t, d.Fail(ctx, errors.New("dead")))
			ids = append(ids, id)
			if n <= 10 {
				time.Sleep(2 * time.Millisecond) // distinct times of death
			}
		}
		return ids
	}
	ids := kill(5)
	require.Equal(t, 5, counts(t, in, name).Dead)

	// DeleteDead: gone for Status, Dead, List and Counts.
	require.NoError(t, in.DeleteDead(ctx, ids[0]))
	_, err := q.Status(ctx, ids[0])
	require.ErrorIs(t, err, queue.ErrNotFound)
	require.ErrorIs(t, in.DeleteDead(ctx, ids[0]), queue.ErrNotFound, "deleting it again")
	require.ErrorIs(t, in.Requeue(ctx, ids[0]), queue.ErrNotFound)
	require.Equal(t, 4, counts(t, in, name).Dead)
	require.NotContains(t, listAll(t, in, name, queue.StateDead, 2), ids[0])
	list, err := in.Dead(ctx, name, 0, 10)
	require.NoError(t, err)
	require.Len(t, list, 4)
	// A job that is not dead is not deleted.
	live := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	require.ErrorIs(t, in.DeleteDead(ctx, live), queue.ErrNotFound)
	require.Equal(t, queue.StateReady, status(t, q, live).State)
	require.NoError(t, q.Cancel(ctx, live))
	require.ErrorIs(t, in.DeleteDead(ctx, queue.FormatID(name, "missing")), queue.ErrNotFound)

	// RequeueAll: every dead job ready again, oldest death first, with
	// fresh attempts.
	n, err := in.RequeueAll(ctx, name)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	c := counts(t, in, name)
	require.Zero(t, c.Dead)
	require.Equal(t, 4, c.Ready)
	for _, id := range ids[1:] {
		d := dequeue(t, q, longLease, name)
		require.Equal(t, id, d.ID, "requeued in the order they died")
		require.Equal(t, 1, d.Attempt)
		require.NoError(t, d.Fail(ctx, errors.New("dead again")))
	}
	n, err = in.RequeueAll(ctx, queueName(t))
	require.NoError(t, err)
	require.Zero(t, n, "an unknown queue has no dead letters")

	// DeleteAllDead.
	n, err = in.DeleteAllDead(ctx, name)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Zero(t, counts(t, in, name).Dead)
	for _, id := range ids {
		_, err := q.Status(ctx, id)
		require.ErrorIs(t, err, queue.ErrNotFound)
	}
	n, err = in.DeleteAllDead(ctx, name)
	require.NoError(t, err)
	require.Zero(t, n)
	requireEmpty(t, q, 100*time.Millisecond, name)

	// More than a batch.
	ids = kill(250)
	n, err = in.RequeueAll(ctx, name)
	require.NoError(t, err)
	require.Equal(t, 250, n)
	require.Equal(t, 250, counts(t, in, name).Ready)
	var again []queue.JobID
	for range 250 {
		d := dequeue(t, q, longLease, name)
		again = append(again, d.ID)
		require.NoError(t, d.Fail(ctx, errors.New("dead")))
	}
	require.ElementsMatch(t, ids, again, "every dead job was requeued, once")
	n, err = in.DeleteAllDead(ctx, name)
	require.NoError(t, err)
	require.Equal(t, 250, n)
	require.Equal(t, queue.QueueCounts{Queue: name, DoneTotal: 0, CanceledTotal: 1}, counts(t, in, name))
}

// testInspectRaces attacks the inspector's changes with workers running:
// a pause racing Dequeues, RequeueAll racing workers that kill the jobs
// again, and DeleteDead of a job a requeue made active.
func testInspectRaces(t *testing.T, q queue.JobQueue, name string) {
	in := inspector(t, q)
	ctx := t.Context()

	t.Run("PauseRacesDequeue", func(t *testing.T) {
		qn := name + "-p"
		for range 50 {
			enqueue(t, q, queue.Job{Queue: qn, Type: "before"})
		}
		var paused atomic.Bool
		var afterPause atomic.Int32
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for wctx.Err() == nil {
					d, err := q.Dequeue(wctx, []string{qn}, longLease)
					if err != nil {
						continue
					}
					if paused.Load() && d.Job.Type == "after" {
						afterPause.Add(1)
					}
					_ = d.Ack(ctx, nil)
				}
			})
		}
		time.Sleep(5 * time.Millisecond) // the workers are taking jobs
		require.NoError(t, in.Pause(ctx, qn))
		paused.Store(true)
		// Jobs enqueued after Pause returned are never leased while paused.
		var after []queue.JobID
		for range 20 {
			after = append(after, enqueue(t, q, queue.Job{Queue: qn, Type: "after"}))
		}
		time.Sleep(300 * time.Millisecond)
		require.Zero(t, afterPause.Load(), "jobs enqueued after Pause were leased while paused")
		c := counts(t, in, qn)
		require.True(t, c.Paused)
		require.GreaterOrEqual(t, c.Ready, 20)
		paused.Store(false)
		require.NoError(t, in.Resume(ctx, qn))
		require.Eventually(t, func() bool {
			c := counts(t, in, qn)
			return c.Pending() == 0 && c.DoneTotal == 70
		}, patience, 10*time.Millisecond, "every job runs once resumed")
		stop()
		wg.Wait()
		for _, id := range after {
			require.Equal(t, queue.StateDone, status(t, q, id).State)
		}
	})

	t.Run("RequeueAllRacesWorkers", func(t *testing.T) {
		qn := name + "-r"
		const n = 60
		var ids []queue.JobID
		for i := range n {
			ids = append(ids, enqueue(t, q, queue.Job{Queue: qn, Type: "t", ID: fmt.Sprintf("j%d", i), MaxAttempts: 1}))
		}
		// Workers kill each job on its first two deliveries and ack its
		// third, while RequeueAll and Requeue run concurrently.
		var mu sync.Mutex
		deliveries := map[queue.JobID]int{}
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for wctx.Err() == nil {
					d, err := q.Dequeue(wctx, []string{qn}, longLease)
					if err != nil {
						continue
					}
					mu.Lock()
					deliveries[d.ID]++
					k := deliveries[d.ID]
					mu.Unlock()
					assert.Equal(t, 1, d.Attempt, "a requeued job starts its attempts again")
					if k < 3 {
						assert.NoError(t, d.Fail(ctx, errors.New("dead")))
					} else {
						assert.NoError(t, d.Ack(ctx, nil))
					}
				}
			})
		}
		for i := 0; ; i++ {
			require.Less(t, i, 2000, "the jobs never all ended done")
			var rg sync.WaitGroup
			rg.Go(func() { _, err := in.RequeueAll(ctx, qn); assert.NoError(t, err) })
			rg.Go(func() { _, err := in.RequeueAll(ctx, qn); assert.NoError(t, err) })
			rg.Go(func() {
				if err := in.Requeue(ctx, ids[i%n]); err != nil {
					assert.ErrorIs(t, err, queue.ErrNotFound)
				}
			})
			rg.Wait()
			c := counts(t, in, qn)
			if c.DoneTotal == n {
				require.Zero(t, c.Pending()+c.Dead)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		stop()
		wg.Wait()
		for _, id := range ids {
			require.Equal(t, 3, deliveries[id], "%s: a dead job requeued twice at once must still run once per requeue", id)
		}
	})

	t.Run("DeleteOfJobThatBecameActive", func(t *testing.T) {
		qn := name + "-d"
		id := enqueue(t, q, queue.Job{Queue: qn, Type: "t", MaxAttempts: 1})
		d := dequeue(t, q, longLease, qn)
		require.NoError(t, d.Fail(ctx, errors.New("dead")))
		require.NoError(t, in.Requeue(ctx, id))
		d = dequeue(t, q, longLease, qn)
		require.ErrorIs(t, in.DeleteDead(ctx, id), queue.ErrNotFound, "the job is active, not dead")
		n, err := in.DeleteAllDead(ctx, qn)
		require.NoError(t, err)
		require.Zero(t, n, "DeleteAllDead leaves the active job")
		require.NoError(t, d.Ack(ctx, []byte("ok")), "the worker's Ack after a refused delete")
		require.Equal(t, queue.StateDone, status(t, q, id).State)

		// Racing: workers take requeued jobs while DeleteAllDead runs;
		// each job is either deleted (never delivered after) or runs.
		const n2 = 40
		var ids []queue.JobID
		for range n2 {
			id := enqueue(t, q, queue.Job{Queue: qn, Type: "t", MaxAttempts: 1})
			ids = append(ids, id)
			d := dequeue(t, q, longLease, qn)
			require.NoError(t, d.Fail(ctx, errors.New("dead")))
		}
		var acked sync.Map
		wctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for wctx.Err() == nil {
					d, err := q.Dequeue(wctx, []string{qn}, longLease)
					if err != nil {
						continue
					}
					assert.NoError(t, d.Ack(ctx, nil), "a delivered job was deleted under its worker")
					acked.Store(d.ID, true)
				}
			})
		}
		var rg sync.WaitGroup
		var deleted atomic.Int64
		rg.Go(func() { _, err := in.RequeueAll(ctx, qn); assert.NoError(t, err) })
		rg.Go(func() {
			for _, id := range ids {
				if in.DeleteDead(ctx, id) == nil {
					deleted.Add(1)
				}
			}
		})
		rg.Wait()
		n, err = in.DeleteAllDead(ctx, qn)
		require.NoError(t, err)
		deleted.Add(int64(n))
		require.Eventually(t, func() bool { return counts(t, in, qn).Pending() == 0 }, patience, 10*time.Millisecond)
		stop()
		wg.Wait()
		var ran int64
		for _, id := range ids {
			in, err := q.Status(ctx, id)
			_, wasAcked := acked.Load(id)
			if errors.Is(err, queue.ErrNotFound) {
				require.False(t, wasAcked, "%s was deleted and ran", id)
				continue
			}
			require.NoError(t, err)
			require.Equal(t, queue.StateDone, in.State, "%s", id)
			require.True(t, wasAcked)
			ran++
		}
		require.EqualValues(t, n2, ran+deleted.Load(), "every job either ran or was deleted")
	})
}
