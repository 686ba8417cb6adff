package queuetest

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

// The clauses of queue.Chainer (AckThen; Delivery.Then's Ack). Each skips
// when the queue's deliveries are no Chainer (AckThen answers
// queue.ErrUnsupported), as the Snooze clause does for Snoozer.

// ackThen calls d.AckThen, skipping the clause when the queue cannot
// chain.
func ackThen(t *testing.T, d *queue.Delivery, result []byte, next ...queue.Job) ([]queue.JobID, error) {
	t.Helper()
	ids, err := d.AckThen(t.Context(), result, next...)
	if errors.Is(err, queue.ErrUnsupported) {
		t.Skip("the queue's deliveries do not implement queue.Chainer")
	}
	return ids, err
}

// drain dequeues the ready jobs of name until none comes for quiet, and
// returns how many times each ID was delivered, acking each.
func drain(t *testing.T, q queue.JobQueue, name string, quiet time.Duration) map[queue.JobID]int {
	t.Helper()
	got := map[queue.JobID]int{}
	for {
		d, err := q.Dequeue(ctxFor(t, quiet), []string{name}, longLease)
		if err != nil {
			return got
		}
		got[d.ID]++
		require.NoError(t, d.Ack(t.Context(), nil))
	}
}

// testChain: AckThen acks the job with its result and enqueues each next
// job exactly once, in order of the IDs it returns; a next job may take
// the unique key the acked job held; a next job whose ID already names
// the same job is not enqueued again; a second AckThen of the delivery is
// ErrLeaseLost and enqueues nothing; a job retried after a failed attempt
// enqueues its next jobs once, on its Ack, and the failed attempt none;
// Then declares jobs the Ack enqueues; a next job of another queue is
// either enqueued with the ack or refused with ErrUnsupported, changing
// nothing.
func testChain(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	first := enqueue(t, q, queue.Job{Queue: name, Type: "resize", Payload: []byte("cat.jpg"), UniqueKey: "cat", UniqueFor: time.Hour, MaxAttempts: 3})
	known := enqueue(t, q, queue.Job{Queue: name, Type: "audit", ID: "audit-1", Payload: []byte("a")})
	d := dequeue(t, q, longLease, name)
	if d.ID != first { // FIFO: the known job was enqueued second
		t.Fatalf("dequeued %s, want %s", d.ID, first)
	}

	// The failed attempt enqueues nothing; the retry chains.
	d.Then(queue.Job{Queue: name, Type: "never", ID: "never"})
	require.NoError(t, d.Fail(ctx, errors.New("try again")))
	var retry *queue.Delivery
	for retry == nil {
		r := dequeue(t, q, longLease, name)
		if r.ID == first {
			retry = r
			continue
		}
		require.Equal(t, known, r.ID)
		require.NoError(t, r.Release(ctx))
	}
	require.Equal(t, 2, retry.Attempt)

	next := []queue.Job{
		{Queue: name, Type: "publish", ID: "publish-cat", Payload: []byte("cat.jpg")},
		{Queue: name, Type: "thumb", Payload: []byte("cat.jpg"), UniqueKey: "cat", UniqueFor: time.Hour}, // the acked job's key
		{Queue: name, Type: "audit", ID: "audit-1", Payload: []byte("a")},                                // already there
	}
	ids, err := ackThen(t, retry, []byte("resized"), next...)
	require.NoError(t, err)
	require.Len(t, ids, 3)
	require.Equal(t, queue.FormatID(name, "publish-cat"), ids[0])
	require.Equal(t, known, ids[2], "a next job under a known job's ID names that job")
	in := status(t, q, first)
	require.Equal(t, queue.StateDone, in.State)
	require.Equal(t, []byte("resized"), in.Result)
	for i, id := range ids {
		in := status(t, q, id)
		require.Equal(t, next[i].Type, in.Type, "next job %d", i)
		require.Equal(t, next[i].Payload, in.Payload, "next job %d", i)
	}
	_, err = q.Status(ctx, queue.FormatID(name, "never"))
	require.ErrorIs(t, err, queue.ErrNotFound, "a failed attempt's next job was enqueued")

	_, err = retry.AckThen(ctx, nil, queue.Job{Queue: name, Type: "again"})
	require.ErrorIs(t, err, queue.ErrLeaseLost, "a second AckThen of the delivery")
	got := drain(t, q, name, 300*time.Millisecond)
	require.Equal(t, map[queue.JobID]int{ids[0]: 1, ids[1]: 1, known: 1}, got, "each next job once, and nothing else")

	// Then: the delivery's Ack enqueues the declared jobs with it.
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	d = dequeue(t, q, longLease, name)
	require.Equal(t, id, d.ID)
	d.Then(queue.Job{Queue: name, Type: "then-1", ID: "then-1"})
	d.Then(queue.Job{Queue: name, Type: "then-2", ID: "then-2"})
	require.NoError(t, d.Ack(ctx, nil))
	require.Equal(t, queue.StateDone, status(t, q, id).State)
	got = drain(t, q, name, 300*time.Millisecond)
	require.Equal(t, map[queue.JobID]int{queue.FormatID(name, "then-1"): 1, queue.FormatID(name, "then-2"): 1}, got)

	// Another queue: enqueued with the ack, or refused changing nothing.
	other := queueName(t)
	id = enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	d = dequeue(t, q, longLease, name)
	ids, err = d.AckThen(ctx, nil, queue.Job{Queue: other, Type: "elsewhere", ID: "x"})
	if errors.Is(err, queue.ErrUnsupported) {
		require.Equal(t, queue.StateActive, status(t, q, id).State, "a refused AckThen changed the job")
		_, serr := q.Status(ctx, queue.FormatID(other, "x"))
		require.ErrorIs(t, serr, queue.ErrNotFound, "a refused AckThen enqueued")
		require.NoError(t, d.Ack(ctx, nil), "the delivery is still current")
		return
	}
	require.NoError(t, err)
	require.Equal(t, []queue.JobID{queue.FormatID(other, "x")}, ids)
	require.Equal(t, queue.StateDone, status(t, q, id).State)
	require.Equal(t, map[queue.JobID]int{ids[0]: 1}, drain(t, q, other, 300*time.Millisecond))
}

// testChainStale: the AckThen of a delivery no longer current (its lease
// ran out and the job was delivered again; the job was canceled) fails
// with ErrLeaseLost, as Ack does, and enqueues nothing; the current
// delivery's AckThen then enqueues its jobs once.
func testChainStale(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t", MaxAttempts: 3})
	stale := dequeue(t, q, shortLease, name)
	current := dequeue(t, q, longLease, name) // after the lease and a backoff
	require.Equal(t, id, current.ID)
	require.Greater(t, current.Token, stale.Token)

	_, err := ackThen(t, stale, []byte("late"), queue.Job{Queue: name, Type: "late", ID: "late"}, queue.Job{Queue: name, Type: "late2"})
	require.ErrorIs(t, err, queue.ErrLeaseLost)
	stale.Then(queue.Job{Queue: name, Type: "late", ID: "late-then"})
	require.ErrorIs(t, stale.Ack(ctx, nil), queue.ErrLeaseLost)
	in := status(t, q, id)
	require.Equal(t, queue.StateActive, in.State, "a stale AckThen changed the job")
	require.Empty(t, in.Result)
	for _, n := range []string{"late", "late-then"} {
		_, err = q.Status(ctx, queue.FormatID(name, n))
		require.ErrorIs(t, err, queue.ErrNotFound, "a stale AckThen enqueued %s", n)
	}
	requireEmpty(t, q, 300*time.Millisecond, name)

	ids, err := current.AckThen(ctx, []byte("ok"), queue.Job{Queue: name, Type: "next", ID: "next"})
	require.NoError(t, err)
	require.Equal(t, queue.StateDone, status(t, q, id).State)
	require.Equal(t, map[queue.JobID]int{ids[0]: 1}, drain(t, q, name, 300*time.Millisecond))

	// A canceled job's delivery chains nothing.
	id = enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	d := dequeue(t, q, longLease, name)
	require.NoError(t, q.Cancel(ctx, id))
	_, err = d.AckThen(ctx, nil, queue.Job{Queue: name, Type: "after-cancel", ID: "after-cancel"})
	require.ErrorIs(t, err, queue.ErrLeaseLost)
	in, err = q.Wait(ctxFor(t, patience), id)
	require.NoError(t, err)
	require.Equal(t, queue.StateCanceled, in.State)
	_, err = q.Status(ctx, queue.FormatID(name, "after-cancel"))
	require.ErrorIs(t, err, queue.ErrNotFound, "a canceled job's AckThen enqueued")
}

// testChainRefused: a next job that cannot be enqueued fails the whole
// step before anything changes: the job stays active under the same
// delivery (which can still be acked), and no next job of the call is
// stored, not even those before the refused one. Refused: an invalid job
// (ErrInvalidJob), an oversized payload (ErrPayloadTooLarge), a unique key
// held by another job, an ID holding another job, one unique key or one
// ID twice in the call (ErrDuplicate or ErrInvalidJob).
func testChainRefused(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	holder := enqueue(t, q, queue.Job{Queue: name, Type: "holder", UniqueKey: "held", UniqueFor: time.Hour, RunAt: time.Now().Add(time.Hour)})
	taken := enqueue(t, q, queue.Job{Queue: name, Type: "taken", ID: "taken", Payload: []byte("mine"), RunAt: time.Now().Add(time.Hour)})
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t"})
	d := dequeue(t, q, longLease, name)
	require.Equal(t, id, d.ID)

	fresh := func(n string) queue.Job { return queue.Job{Queue: name, Type: "fresh", ID: n} }
	cases := []struct {
		what string
		next []queue.Job
		want []error // any of them
	}{
		{"no Type", []queue.Job{fresh("f1"), {Queue: name}}, []error{queue.ErrInvalidJob}},
		{"priority 10", []queue.Job{fresh("f2"), {Queue: name, Type: "x", Priority: 10}}, []error{queue.ErrInvalidJob}},
		{"oversized payload", []queue.Job{fresh("f3"), {Queue: name, Type: "x", Payload: make([]byte, queue.DefaultMaxPayload+1)}}, []error{queue.ErrPayloadTooLarge}},
		{"held unique key", []queue.Job{fresh("f4"), {Queue: name, Type: "x", UniqueKey: "held", UniqueFor: time.Hour}}, []error{queue.ErrDuplicate}},
		{"taken ID", []queue.Job{fresh("f5"), {Queue: name, Type: "taken", ID: "taken", Payload: []byte("yours")}}, []error{queue.ErrDuplicate}},
		{"one ID twice", []queue.Job{fresh("f6"), {Queue: name, Type: "x", ID: "twice"}, {Queue: name, Type: "y", ID: "twice"}}, []error{queue.ErrDuplicate, queue.ErrInvalidJob}},
		{"one unique key twice", []queue.Job{fresh("f7"), {Queue: name, Type: "x", UniqueKey: "k2", UniqueFor: time.Hour}, {Queue: name, Type: "y", UniqueKey: "k2", UniqueFor: time.Hour}}, []error{queue.ErrDuplicate, queue.ErrInvalidJob}},
	}
	for _, tc := range cases {
		_, err := ackThen(t, d, []byte("refused"), tc.next...)
		require.Error(t, err, tc.what)
		ok := false
		for _, w := range tc.want {
			ok = ok || errors.Is(err, w)
		}
		require.True(t, ok, "%s: %v, want one of %v", tc.what, err, tc.want)
		in := status(t, q, id)
		require.Equal(t, queue.StateActive, in.State, "%s: a refused AckThen changed the job", tc.what)
		require.Empty(t, in.Result, tc.what)
		_, err = q.Status(ctx, queue.FormatID(name, tc.next[0].ID))
		require.ErrorIs(t, err, queue.ErrNotFound, "%s: a refused AckThen stored the job before the refused one", tc.what)
	}
	requireEmpty(t, q, 300*time.Millisecond, name)
	require.Equal(t, []byte("mine"), status(t, q, taken).Payload)
	require.Equal(t, queue.StateScheduled, status(t, q, holder).State)

	// The delivery is still current: a good step goes through.
	ids, err := d.AckThen(ctx, []byte("ok"), fresh("f8"))
	require.NoError(t, err)
	in := status(t, q, id)
	require.Equal(t, queue.StateDone, in.State)
	require.Equal(t, []byte("ok"), in.Result)
	require.Equal(t, map[queue.JobID]int{ids[0]: 1}, drain(t, q, name, 300*time.Millisecond))
}
