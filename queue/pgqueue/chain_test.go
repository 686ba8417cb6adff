package pgqueue_test

import (
	"bytes"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
)

// An AckThen's transaction that fails leaves nothing: not the ack (the
// job stays leased to the delivery, its unique key held, no done total
// counted), not the next jobs stored before the failure, in another queue
// as in its own. It fails by a next job refused (its ID holds another
// job), and by the connection lost after the next jobs' statement ran in
// the transaction, before the COMMIT. The delivery then chains as if
// nothing had happened: each next job once.
func TestAckThenTransactionFails(t *testing.T) {
	dsn := testenv.PGPrimaryDSN(t)
	db := testenv.PostgresDB(t, dsn)
	prefix := testPrefix(t, db)
	q := newQueue(t, db, prefix, pgqueue.Config{}, true)
	proxy := testenv.StartFaultProxy(t, hostOf(t, dsn))
	pq := newQueue(t, testenv.PostgresDB(t, withHost(t, dsn, proxy.Addr())), prefix, pgqueue.Config{}, false)
	ctx := t.Context()

	const qn = "chain"
	taken := queue.Job{Queue: qn, Type: "taken", ID: "taken", Payload: []byte("mine"), RunAt: time.Now().Add(time.Hour)}
	_, err := q.Enqueue(ctx, taken)
	require.NoError(t, err)
	next := func(n string) queue.Job { return queue.Job{Queue: "elsewhere", Type: "next", ID: n} }

	// nothingChanged: the job is leased as before, no next job exists.
	nothingChanged := func(what string, id queue.JobID, names ...string) {
		t.Helper()
		in := status(t, q, id)
		require.Equal(t, queue.StateActive, in.State, "%s: the ack was not rolled back", what)
		require.Empty(t, in.Result, what)
		_, err := q.Enqueue(ctx, queue.Job{Queue: qn, Type: "rival", UniqueKey: "k", UniqueFor: time.Hour})
		require.ErrorIs(t, err, queue.ErrDuplicate, "%s: the acked job's unique key was freed", what)
		for _, n := range names {
			_, err := q.Status(ctx, queue.FormatID("elsewhere", n))
			require.ErrorIs(t, err, queue.ErrNotFound, "%s: next job %s was stored", what, n)
		}
		c, err := q.Counts(ctx, qn)
		require.NoError(t, err)
		require.Zero(t, c.DoneTotal, "%s: a done total was counted", what)
	}

	t.Run("refused next job", func(t *testing.T) {
		id, err := q.Enqueue(ctx, queue.Job{Queue: qn, Type: "t", UniqueKey: "k", UniqueFor: time.Hour})
		require.NoError(t, err)
		d, err := q.Dequeue(ctxFor(t, 5*time.Second), []string{qn}, time.Minute)
		require.NoError(t, err)
		require.Equal(t, id, d.ID)
		_, err = d.AckThen(ctx, []byte("r"), next("a1"), queue.Job{Queue: qn, Type: "taken", ID: "taken", Payload: []byte("yours")})
		require.ErrorIs(t, err, queue.ErrDuplicate)
		nothingChanged("refused", id, "a1")

		ids, err := d.AckThen(ctx, []byte("r"), next("a1"))
		require.NoError(t, err, "the delivery is still current")
		require.Equal(t, queue.StateDone, status(t, q, id).State)
		require.Equal(t, queue.StateReady, status(t, q, ids[0]).State)
	})

	t.Run("connection lost", func(t *testing.T) {
		id, err := q.Enqueue(ctx, queue.Job{Queue: qn + "2", Type: "t"})
		require.NoError(t, err)
		d, err := pq.Dequeue(ctxFor(t, 5*time.Second), []string{qn + "2"}, time.Minute)
		require.NoError(t, err)
		require.Equal(t, id, d.ID)
		// The next jobs' statement (the first to call the enqueue
		// function on this Queue's connections) runs in the transaction;
		// its reply is lost and the connection reset, so the COMMIT never
		// comes.
		proxy.DropReply(func(req []byte) bool { return bytes.Contains(req, []byte(prefix+"enqueue(")) })
		_, err = d.AckThen(ctx, []byte("r"), next("b1"), next("b2"))
		require.Error(t, err)
		require.EqualValues(t, 1, proxy.DroppedReplies(), "the next jobs' statement ran")
		in := status(t, q, id)
		require.Equal(t, queue.StateActive, in.State, "the ack was not rolled back")
		for _, n := range []string{"b1", "b2"} {
			_, err := q.Status(ctx, queue.FormatID("elsewhere", n))
			require.ErrorIs(t, err, queue.ErrNotFound, "next job %s was stored", n)
		}
		c, err := q.Counts(ctx, qn+"2")
		require.NoError(t, err)
		require.Zero(t, c.DoneTotal)

		ids, err := d.AckThen(ctx, []byte("r"), next("b1"), next("b2"))
		require.NoError(t, err, "the delivery is still current")
		require.Equal(t, queue.StateDone, status(t, q, id).State)
		got := map[queue.JobID]int{}
		for {
			d, err := q.Dequeue(ctxFor(t, 300*time.Millisecond), []string{"elsewhere"}, time.Minute)
			if err != nil {
				break
			}
			got[d.ID]++
			require.NoError(t, d.Ack(ctx, nil))
		}
		require.Equal(t, map[queue.JobID]int{ids[0]: 1, ids[1]: 1, queue.FormatID("elsewhere", "a1"): 1}, got)
	})
}

func hostOf(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	return u.Host
}

func withHost(t *testing.T, dsn, host string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.Host = host
	return u.String()
}
