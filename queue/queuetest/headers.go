package queuetest

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

// testHeaders checks Job.Headers: they reach every delivery (the first, a
// retry, a requeued dead letter) and Status, copied both ways; a job
// without headers has none; too large or badly keyed headers are refused
// with typed errors and enqueue nothing; EnqueueBatch carries them.
func testHeaders(t *testing.T, q queue.JobQueue, name string) {
	ctx := t.Context()
	tracestate := "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" // commas and '=' pass as they are
	hdr := map[string]string{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":  tracestate,
		"request-id":  "req-42",
		"Tenant_ID.x": "acme ü", // mixed case, '_' and '.', a non-ASCII value
		"empty":       "",
	}
	want := map[string]string{}
	for k, v := range hdr {
		want[k] = v
	}
	id := enqueue(t, q, queue.Job{Queue: name, Type: "t", Headers: hdr, MaxAttempts: 2})
	hdr["request-id"] = "changed" // the queue must have copied them
	delete(hdr, "empty")

	require.Equal(t, want, status(t, q, id).Headers, "Status reports the headers")
	d := dequeue(t, q, longLease, name)
	require.Equal(t, id, d.ID)
	require.Equal(t, want, d.Job.Headers, "the delivery carries the headers")
	d.Job.Headers["request-id"] = "mutated by a handler"
	require.Equal(t, want, status(t, q, id).Headers, "a handler's change to its delivery's map changes nothing in the queue")

	// A retry carries them too, and so does a requeued dead letter.
	require.NoError(t, d.Fail(ctx, errors.New("once")))
	d = dequeue(t, q, longLease, name)
	require.Equal(t, 2, d.Attempt)
	require.Equal(t, want, d.Job.Headers, "the retry's delivery")
	if dl, ok := q.(queue.DeadLetters); ok {
		require.NoError(t, d.Fail(ctx, errors.New("twice")))
		require.Equal(t, queue.StateDead, status(t, q, id).State)
		require.NoError(t, dl.Requeue(ctx, id))
		d = dequeue(t, q, longLease, name)
		require.Equal(t, want, d.Job.Headers, "the requeued dead letter's delivery")
	}
	require.NoError(t, d.Ack(ctx, nil))
	require.Equal(t, want, status(t, q, id).Headers, "an ended job keeps its headers")

	// No headers: none, however they were left out.
	for _, h := range []map[string]string{nil, {}} {
		plain := enqueue(t, q, queue.Job{Queue: name, Type: "t", Headers: h})
		require.Empty(t, status(t, q, plain).Headers)
		d := dequeue(t, q, longLease, name)
		require.Equal(t, plain, d.ID)
		require.Empty(t, d.Job.Headers)
		require.NoError(t, d.Ack(ctx, nil))
	}

	// The largest headers pass; one byte more is ErrHeadersTooLarge.
	key := "big"
	largest := map[string]string{key: strings.Repeat("v", queue.MaxHeaderBytes-len(key))}
	bigID := enqueue(t, q, queue.Job{Queue: name, Type: "t", Headers: largest})
	require.Equal(t, largest, status(t, q, bigID).Headers)
	require.NoError(t, q.Cancel(ctx, bigID))
	over := map[string]string{key: largest[key] + "v"}
	_, err := q.Enqueue(ctx, queue.Job{Queue: name, Type: "t", Headers: over})
	require.ErrorIs(t, err, queue.ErrHeadersTooLarge)
	require.NotErrorIs(t, err, queue.ErrPayloadTooLarge)
	many := map[string]string{}
	for i := 0; len(many)*(2+len("k0000")) <= queue.MaxHeaderBytes; i++ {
		many["k"+strings.Repeat("0", 4-len(itoa(i)))+itoa(i)] = "vv"
	}
	_, err = q.Enqueue(ctx, queue.Job{Queue: name, Type: "t", Headers: many})
	require.ErrorIs(t, err, queue.ErrHeadersTooLarge, "many small headers count together")

	for _, bad := range []map[string]string{
		{"": "v"},
		{"has space": "v"},
		{"colon:key": "v"},
		{"nl\n": "v"},
		{strings.Repeat("k", queue.MaxHeaderKey+1): "v"},
		{"k": "\xff\xfe"},
	} {
		_, err := q.Enqueue(ctx, queue.Job{Queue: name, Type: "t", Headers: bad})
		require.ErrorIs(t, err, queue.ErrInvalidJob, "headers %q", bad)
	}
	if b, ok := q.(queue.BatchEnqueuer); ok {
		_, err := b.EnqueueBatch(ctx, []queue.Job{{Queue: name, Type: "t"}, {Queue: name, Type: "t", Headers: over}})
		require.ErrorIs(t, err, queue.ErrHeadersTooLarge, "EnqueueBatch")
	}
	requireEmpty(t, q, 100*time.Millisecond, name)

	if b, ok := q.(queue.BatchEnqueuer); ok {
		ids, err := b.EnqueueBatch(ctx, []queue.Job{
			{Queue: name, Type: "t", Headers: map[string]string{"request-id": "b0"}},
			{Queue: name, Type: "t"},
		})
		require.NoError(t, err)
		require.Equal(t, map[string]string{"request-id": "b0"}, status(t, q, ids[0]).Headers, "EnqueueBatch stores headers")
		require.Empty(t, status(t, q, ids[1]).Headers)
		for range 2 {
			d := dequeue(t, q, longLease, name)
			if d.ID == ids[0] {
				require.Equal(t, map[string]string{"request-id": "b0"}, d.Job.Headers)
			}
			require.NoError(t, d.Ack(ctx, nil))
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
