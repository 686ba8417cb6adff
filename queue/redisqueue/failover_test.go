package redisqueue_test

// Real-time tests in this file: TestFailoverSentinel and TestFailoverCluster
// (private Redis groups whose masters are failed over and killed; bounds are
// generous deadlines for the switch, and every count is logged).

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// failoverLease is the lease of the workload's jobs: a job leased on a
// master that died comes back after it.
const failoverLease = 2 * time.Second

// callTimeout bounds the workload's Enqueue and Ack calls. It outlasts a
// switch (a Cluster's killed master is replaced 3.7-5.5 s after its
// SIGKILL here), which a call rides out within its deadline; a call that
// still fails then is counted as failed.
const callTimeout = 20 * time.Second

// queueWorkload enqueues and works jobs while masters switch, and records
// what each call was told.
type queueWorkload struct {
	q    *redisqueue.Queue
	name string

	stopEnqueue atomic.Bool
	stopWork    atomic.Bool
	wg          sync.WaitGroup

	mu            sync.Mutex
	enqueued      map[queue.JobID]bool      // Enqueue returned nil
	acked         map[queue.JobID]time.Time // when an Ack returned nil, first
	runs          int                       // deliveries
	ackUndone     map[queue.JobID]bool      // delivered after an Ack of it returned nil
	notReplicated int                       // calls that failed with ErrNotReplicated
	enqueueCalls  int
	ackCalls      int
	leaseLost     int
	failed        int // other errors
	errs          []error

	// kill is when the last master was killed (Unix ns), until an Enqueue
	// is acknowledged after it; firstAfterKill holds those times.
	kill           atomic.Int64
	firstAfterKill []time.Duration
}

// killed marks a master killed now.
func (w *queueWorkload) killed() { w.kill.Store(time.Now().UnixNano()) }

func newQueueWorkload(q *redisqueue.Queue, name string) *queueWorkload {
	return &queueWorkload{q: q, name: name, enqueued: map[queue.JobID]bool{},
		acked: map[queue.JobID]time.Time{}, ackUndone: map[queue.JobID]bool{}}
}

func (w *queueWorkload) start(producers, workers int) {
	for p := range producers {
		w.wg.Go(func() { w.produce(p) })
	}
	for range workers {
		w.wg.Go(w.work)
	}
}

// record counts a call's error; it reports whether the call succeeded. A
// deadline is a failure unless idle says the call may end so (a Dequeue
// with nothing to take).
func (w *queueWorkload) record(err error, idle bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == nil:
		return true
	case errors.Is(err, redisqueue.ErrNotReplicated):
		w.notReplicated++
	case errors.Is(err, queue.ErrLeaseLost):
		w.leaseLost++
	case idle && errors.Is(err, context.DeadlineExceeded):
	default:
		w.failed++
		if len(w.errs) < 5 {
			w.errs = append(w.errs, err)
		}
	}
	return false
}

func (w *queueWorkload) produce(p int) {
	for i := 0; !w.stopEnqueue.Load(); i++ {
		job := queue.Job{Queue: w.name, Type: "x", ID: fmt.Sprintf("p%d-%d", p, i), Payload: []byte(strconv.Itoa(i))}
		// An Enqueue that failed is tried again with its ID (safe: the
		// queue package's rule), until acknowledged or stopped.
		for !w.stopEnqueue.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			id, err := w.q.Enqueue(ctx, job)
			cancel()
			w.mu.Lock()
			w.enqueueCalls++
			w.mu.Unlock()
			if w.record(err, false) {
				w.mu.Lock()
				w.enqueued[id] = true
				if k := w.kill.Load(); k != 0 && w.kill.CompareAndSwap(k, 0) {
					w.firstAfterKill = append(w.firstAfterKill, time.Duration(time.Now().UnixNano()-k).Round(time.Millisecond))
				}
				w.mu.Unlock()
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *queueWorkload) work() {
	for !w.stopWork.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		d, err := w.q.Dequeue(ctx, []string{w.name}, failoverLease)
		cancel()
		if !w.record(err, true) {
			if !errors.Is(err, context.DeadlineExceeded) {
				time.Sleep(10 * time.Millisecond)
			}
			continue
		}
		w.mu.Lock()
		w.runs++
		if _, done := w.acked[d.ID]; done {
			w.ackUndone[d.ID] = true
		}
		w.mu.Unlock()
		actx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err = d.Ack(actx, nil)
		cancel()
		w.mu.Lock()
		w.ackCalls++
		w.mu.Unlock()
		if w.record(err, false) {
			w.mu.Lock()
			if _, ok := w.acked[d.ID]; !ok {
				w.acked[d.ID] = time.Now()
			}
			w.mu.Unlock()
		}
	}
}

// drain stops the producers and waits until every acknowledged Enqueue's
// job is done, or until patience; it returns the jobs not done, with their
// state. With lossy (the default setting, asynchronous replication), a job
// the queue does not know is lost with a switch's writes: it is returned as
// such at once, since no wait brings it back.
func (w *queueWorkload) drain(t *testing.T, patience time.Duration, lossy bool) (left map[queue.JobID]string, lost int) {
	t.Helper()
	w.stopEnqueue.Store(true)
	deadline := time.Now().Add(patience)
	for {
		w.mu.Lock()
		ids := make([]queue.JobID, 0, len(w.enqueued))
		for id := range w.enqueued {
			ids = append(ids, id)
		}
		w.mu.Unlock()
		left, lost = map[queue.JobID]string{}, 0
		for _, id := range ids {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			info, err := w.q.Status(ctx, id)
			cancel()
			switch {
			case lossy && errors.Is(err, queue.ErrNotFound):
				lost++
			case err != nil:
				left[id] = err.Error()
			case info.State != queue.StateDone:
				left[id] = string(info.State)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			w.stopWork.Store(true)
			w.wg.Wait()
			return left, lost
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// check logs the workload's counts and asserts what the setting promises:
// with WaitReplicas, no acknowledged job lost and no Ack undone; with either,
// no call failed within its deadline and every job the queue still knows
// completes (a script's writes replicate whole, so a switch loses a job
// entirely or not at all).
func (w *queueWorkload) check(t *testing.T, topo, setting string, durable bool, left map[queue.JobID]string, lost int) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%s %s, %d switches: %d Enqueues acknowledged of %d calls, %d runs, %d Acks acknowledged of %d calls, %d not replicated, %d lease lost, %d failed; %d acknowledged jobs lost, %d not done, %d acks undone; first acknowledged Enqueue after each master's SIGKILL: %v",
		topo, setting, testenv.Failovers(), len(w.enqueued), w.enqueueCalls, w.runs, len(w.acked), w.ackCalls,
		w.notReplicated, w.leaseLost, w.failed, lost, len(left), len(w.ackUndone), w.firstAfterKill)
	testenv.LogFailoverFigures(t, testenv.FailoverFigures{Primitive: "queue", Topology: topo, Setting: setting, Switches: testenv.Failovers(),
		Counts: map[string]int{testenv.CountAcknowledged: len(w.enqueued), testenv.CountFailed: w.failed,
			testenv.CountJobsLost: lost, testenv.CountJobsTwice: len(w.ackUndone)},
		KillToFirst: w.firstAfterKill})
	require.Positive(t, len(w.enqueued))
	require.Empty(t, left, "acknowledged Enqueues whose job never completed")
	require.Zero(t, w.failed, "calls failed other than ErrNotReplicated, ErrLeaseLost or a Dequeue's deadline: %v", w.errs)
	if durable {
		require.Zero(t, lost, "acknowledged Enqueues lost")
		require.Empty(t, w.ackUndone, "jobs delivered again after an Ack of theirs was acknowledged")
	}
}

// failoverModes are the settings the failover tests run: the default
// (asynchronous replication: what a switch loses is counted, not refused) and
// WaitReplicas 1.
var failoverModes = []struct {
	name string
	cfg  redisqueue.Config
}{
	{"default", redisqueue.Config{Prefix: "q:"}},
	{"durable", redisqueue.Config{Prefix: "q:", WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond}},
}

// TestFailoverSentinel: jobs enqueued and worked through testenv.Failovers()
// switches (SCALEOUT_FAILOVERS, 2 by default) of a private Sentinel group,
// alternately SENTINEL FAILOVER and the SIGKILL of the master, in each of
// failoverModes: with WaitReplicas 1, every acknowledged Enqueue's job
// completes, and no job runs again after an Ack of it was acknowledged.
func TestFailoverSentinel(t *testing.T) {
	t.Parallel()
	for _, m := range failoverModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			g := testenv.StartSentinelGroup(t, testenv.SentinelGroupOptions{})
			runFailover(t, "sentinel", m.name, m.cfg.WaitReplicas > 0, newQueue(t, g.Client(t), m.cfg), g.Switcher())
		})
	}
}

// TestFailoverCluster: the same on a private Cluster, the queue's shard failed
// over (CLUSTER FAILOVER on its replica) and its master killed.
func TestFailoverCluster(t *testing.T) {
	t.Parallel()
	for _, m := range failoverModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			cl := testenv.StartCluster(t, testenv.ClusterOptions{})
			const key = "q:{jobs}:x" // a key of the queue's slot
			runFailover(t, "cluster", m.name, m.cfg.WaitReplicas > 0, newQueue(t, cl.Client(t), m.cfg), cl.Switcher(key))
		})
	}
}

// runFailover runs the workload on q through the switches of sw and checks it.
func runFailover(t *testing.T, topo, setting string, durable bool, q *redisqueue.Queue, sw testenv.Switcher) {
	w := newQueueWorkload(q, "jobs")
	w.start(2, 4)
	testenv.RunSwitches(sw, 300*time.Millisecond, w.killed, nil)
	time.Sleep(300 * time.Millisecond)
	left, lost := w.drain(t, 20*time.Second, !durable)
	w.check(t, topo, setting, durable, left, lost)
}

// TestLossyFailover forces the case asynchronous replication loses: an
// Enqueue and an Ack acknowledged while the replica is cut off, then the
// master killed and the replica promoted. By default both are undone (the
// job gone, the acked job leased again: the test sees it, or it tests
// nothing); with WaitReplicas 1 neither is acknowledged in the first place.
func TestLossyFailover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		replicas int
	}{{"default", 0}, {"durable", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := testenv.StartSentinelGroup(t, testenv.SentinelGroupOptions{})
			cfg := redisqueue.Config{Prefix: "q:", WaitReplicas: tc.replicas}
			if tc.replicas > 0 {
				cfg.WaitTimeout = 50 * time.Millisecond
			}
			q := newQueue(t, g.Client(t), cfg)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			a, err := q.Enqueue(ctx, queue.Job{Queue: "q", Type: "x"})
			require.NoError(t, err)
			d, err := q.Dequeue(ctx, []string{"q"}, time.Hour)
			require.NoError(t, err)
			require.NoError(t, g.Client(t).Wait(ctx, 1, 5*time.Second).Err())

			heal := g.CutReplication()
			b, enqErr := q.Enqueue(ctx, queue.Job{Queue: "q", Type: "x"})
			ackErr := d.Ack(ctx, nil)
			killed := g.KillMaster()
			heal()
			g.WaitSwitched(killed)

			_, bErr := q.Status(ctx, b)
			infoA, err := q.Status(ctx, a)
			require.NoError(t, err)
			enqLost := enqErr == nil && errors.Is(bErr, queue.ErrNotFound)
			ackUndone := ackErr == nil && infoA.State != queue.StateDone
			t.Logf("%s: Enqueue %v, then Status %v; Ack %v, then state %s", tc.name, enqErr, bErr, ackErr, infoA.State)
			if tc.replicas == 0 {
				require.True(t, enqLost && ackUndone, "the lossy failover must undo the acknowledged Enqueue and Ack, or the test does not test it")
			} else {
				require.ErrorIs(t, enqErr, redisqueue.ErrNotReplicated)
				require.ErrorIs(t, ackErr, redisqueue.ErrNotReplicated)
				require.False(t, enqLost || ackUndone)
			}
			g.Rejoin(killed)
		})
	}
}
