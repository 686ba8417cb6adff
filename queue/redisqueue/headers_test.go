package redisqueue_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// A job stored before headers existed (its hash has no field h, as the
// previous release wrote it) is delivered, retried and reported with no
// headers, and no error.
func TestJobWithoutHeadersField(t *testing.T) {
	rdb := testenv.RedisClient(t)
	p := testenv.Prefix(t)
	q := newQueue(t, rdb, redisqueue.Config{Prefix: p, Backoff: shortBackoff})
	ctx := t.Context()
	// The exact fields the previous release's enqueue script wrote for a
	// ready job of priority 2 with a MaxAttempts of 3.
	enq := time.Now().Add(-time.Minute).UnixMilli()
	require.NoError(t, rdb.HSet(ctx, p+"{old}:j:legacy", "st", "r", "t", "report", "p", "payload", "e", enq, "m", "3", "pr", "2").Err())
	require.NoError(t, rdb.RPush(ctx, p+"{old}:r2", "legacy").Err())

	id := queue.FormatID("old", "legacy")
	in, err := q.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, queue.StateReady, in.State)
	require.Nil(t, in.Headers)
	require.Equal(t, time.UnixMilli(enq), in.EnqueuedAt)

	d, err := q.Dequeue(ctxTimeout(t, 5*time.Second), []string{"old"}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, id, d.ID)
	require.Equal(t, "report", d.Job.Type)
	require.Equal(t, []byte("payload"), d.Job.Payload)
	require.Equal(t, 3, d.Job.MaxAttempts)
	require.Nil(t, d.Job.Headers)
	require.NoError(t, d.Fail(ctx, errors.New("once")))
	d, err = q.Dequeue(ctxTimeout(t, 5*time.Second), []string{"old"}, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 2, d.Attempt)
	require.Nil(t, d.Job.Headers)
	require.NoError(t, d.Ack(ctx, nil))
	in, err = q.Status(ctx, id)
	require.NoError(t, err)
	require.Equal(t, queue.StateDone, in.State)
	require.Nil(t, in.Headers)
}

// Headers in a hash that are not a JSON object of strings are a clear
// error, never a panic nor silently dropped.
func TestMalformedHeaders(t *testing.T) {
	rdb := testenv.RedisClient(t)
	p := testenv.Prefix(t)
	q := newQueue(t, rdb, redisqueue.Config{Prefix: p})
	ctx := t.Context()
	require.NoError(t, rdb.HSet(ctx, p+"{mh}:j:bad", "st", "r", "t", "x", "p", "", "e", "1", "h", `{"a":1}`).Err())
	_, err := q.Status(ctx, queue.FormatID("mh", "bad"))
	require.ErrorContains(t, err, "malformed job")
	require.NoError(t, rdb.RPush(ctx, p+"{mh}:r0", "bad").Err())
	_, err = q.Dequeue(ctxTimeout(t, 5*time.Second), []string{"mh"}, time.Minute)
	require.ErrorContains(t, err, "malformed job")
}
