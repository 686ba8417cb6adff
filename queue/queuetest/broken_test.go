package queuetest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/kitcheck"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/queuetest"
)

// Real-time tests in this file: TestKitOnUnbrokenWrapper and, in child
// processes, TestKitCatchesBrokenQueues (the kit is real-time, for queues
// on real servers; its bounds are its own).

// The kit is a product: a queue that breaks a clause must fail it. Each
// broken queue below is queue.Memory with one promise broken, by a
// wrapper (written, as a third party's would be, with exported API only)
// or by a MemoryConfig the factory loosens; TestKitCatchesBrokenQueues
// runs the clause it breaks in a child process and requires that clause
// to fail.

// brokenEnv names the broken queue the child process runs the kit on.
const brokenEnv = "QUEUETEST_BROKEN_QUEUE"

// brokenQueues maps each broken behaviour to the clause that must catch
// it.
var brokenQueues = map[string]string{
	"Status reports an active job as ready":       "RoundTrip",
	"Ack drops the result":                        "RoundTrip",
	"the first delivery has Attempt 0":            "RoundTrip",
	"Enqueue keeps the caller's payload":          "RoundTrip",
	"Wait does not wait":                          "Wait",
	"Wait overstays its context":                  "Wait",
	"leases never run out":                        "LeaseExpiry",
	"a stale delivery's Ack is accepted":          "LeaseExpiry",
	"a redelivery keeps its token":                "LeaseExpiry",
	"an expired lease is no failed attempt":       "LeaseExpiry",
	"Extend does nothing":                         "Extend",
	"Fail does not count the attempt":             "FailRetry",
	"retries before the backoff":                  "FailRetry",
	"MaxAttempts ignored":                         "FailRetry",
	"ErrPermanent is retried":                     "Permanent",
	"Dead lists the oldest first":                 "DeadLetters",
	"Requeue of an unknown job succeeds":          "DeadLetters",
	"ignores Priority":                            "Priority",
	"ignores RunAt":                               "RunAt",
	"ignores UniqueKey":                           "Unique",
	"UniqueFor never runs out":                    "Unique",
	"ignores Job.ID":                              "CallerID",
	"another payload under an ID is accepted":     "CallerID",
	"the same job again under its ID is an error": "Idempotent",
	"a retry after the job ended enqueues again":  "Idempotent",
	"Cancel leaves a waiting job":                 "CancelWaiting",
	"Cancel of an ended job is no error":          "CancelWaiting",
	"Extend of a canceled job succeeds":           "CancelActive",
	"Release counts an attempt":                   "Release",
	"Release keeps the lease":                     "Release",
	"Snooze counts an attempt":                    "Snooze",
	"Snooze ignores the delay":                    "Snooze",
	"Snooze keeps the lease":                      "Snooze",
	"a stale delivery's Snooze is accepted":       "Snooze",
	"Snooze accepts a negative delay":             "Snooze",
	"AckThen ignores the next jobs":               "Chain",
	"AckThen enqueues the next jobs twice":        "Chain",
	"AckThen acks, then enqueues":                 "ChainRefused",
	"AckThen enqueues, then acks":                 "ChainRefused",
	"AckThen enqueues on a stale lease":           "ChainStale",
	"accepts priority 10":                         "InvalidJobs",
	"truncates an oversized payload":              "InvalidJobs",
	"keeps ended jobs forever":                    "Retention",
	"Dequeue polls slowly":                        "DequeueBlocks",
	"Dequeue overstays its context":               "DequeueBlocks",
	"a canceled Dequeue keeps its lease":          "DequeueCanceled",
	"Dequeue serves the queues in reverse order":  "SeveralQueues",
	"ignores Concurrency":                         "Concurrency",
	"ignores Rate":                                "Rate",
	"EnqueueBatch returns the IDs out of order":   "Batch",
	"an empty batch is an error":                  "Batch",
	"delivers a job twice":                        "ManyWorkers",
	"loses a job":                                 "ManyWorkers",
	"a second Close is an error":                  "Close",
	"IDs carry a slash":                           "IDForms",
	"the slash form of an ID is not found":        "IDForms",
	"Cancel after Close is no error":              "Close",
	"drops headers":                               "Headers",
	"accepts oversized headers":                   "Headers",
	"a retry loses its headers":                   "Headers",
	"Counts ignores scheduled jobs":               "InspectCounts",
	"OldestReady is always zero":                  "InspectCounts",
	"List drops the last job of a page":           "InspectList",
	"List pages by offset":                        "InspectListStable",
	"Pause does nothing":                          "InspectPause",
	"DeleteDead deletes a live job":               "InspectDead",
	"RequeueAll requeues one job":                 "InspectDead",
	"AckAndDequeue leases nothing":                "AckDequeue",
	"AckAndDequeue leases after a refused ack":    "AckDequeueExpired",
}

// backoff is the retry backoff the kit asks for (within MinBackoff and
// MaxBackoff).
const backoff = 20 * time.Millisecond

// overstay is how long a broken Wait or Dequeue blocks past its context.
const overstay = 1500 * time.Millisecond

type broken struct {
	*queue.Memory
	how string

	mu       sync.Mutex
	closes   int
	enqueues int
	dequeues int
	last     *queue.Delivery // the last delivery handed out
	// callers holds the caller's payload buffers by job, for a queue
	// that keeps them instead of a copy.
	callers map[queue.JobID][]byte
}

// settler is the Settler of a delivery the broken queue hands out: it
// settles the Memory's delivery it wraps.
type settler struct {
	b    *broken
	orig *queue.Delivery
}

// wrap hands out d through the broken queue's settler.
func (b *broken) wrap(d *queue.Delivery) *queue.Delivery {
	c := *d
	switch b.how {
	case "Enqueue keeps the caller's payload":
		c.Job.Payload = b.callerPayload(d.ID, c.Job.Payload)
	case "the first delivery has Attempt 0":
		c.Attempt--
	case "a redelivery keeps its token":
		c.Token = 1
	case "a retry loses its headers":
		if c.Attempt > 1 {
			c.Job.Headers = nil
		}
	}
	if b.how == noSnoozer {
		return queue.NewDelivery(plainSettler{&settler{b: b, orig: d}}, c)
	}
	return queue.NewDelivery(&settler{b: b, orig: d}, c)
}

// noSnoozer is the "broken" queue whose deliveries cannot snooze nor
// chain, as a queue written before queue.Snoozer and queue.Chainer: a
// lawful queue, whose Snooze and Chain clauses the kit must skip.
const noSnoozer = "no Snoozer"

// plainSettler is a settler without Snooze and AckThen.
type plainSettler struct{ s *settler }

func (p plainSettler) Ack(ctx context.Context, d *queue.Delivery, result []byte) error {
	return p.s.Ack(ctx, d, result)
}

func (p plainSettler) Fail(ctx context.Context, d *queue.Delivery, cause error) error {
	return p.s.Fail(ctx, d, cause)
}

func (p plainSettler) Extend(ctx context.Context, d *queue.Delivery, lease time.Duration) error {
	return p.s.Extend(ctx, d, lease)
}

func (p plainSettler) Release(ctx context.Context, d *queue.Delivery) error {
	return p.s.Release(ctx, d)
}

// TestKitSkipsSnoozeWithoutSnoozer: the Snooze clause is skipped, not
// failed (nor passed), for a queue whose deliveries are no Snoozer.
func TestKitSkipsSnoozeWithoutSnoozer(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in the child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenQueueChild$/^Snooze$", "-test.v", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), brokenEnv+"="+noSnoozer)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "--- SKIP: TestBrokenQueueChild/Snooze ", "%s", out)
}

func (s *settler) Ack(ctx context.Context, _ *queue.Delivery, result []byte) error {
	switch s.b.how {
	case "Ack drops the result":
		result = nil
	case "a stale delivery's Ack is accepted":
		if err := s.orig.Ack(ctx, result); !errors.Is(err, queue.ErrLeaseLost) {
			return err
		}
		return nil
	}
	return s.orig.Ack(ctx, result)
}

func (s *settler) Fail(ctx context.Context, _ *queue.Delivery, cause error) error {
	switch s.b.how {
	case "Fail does not count the attempt":
		return s.orig.Release(ctx)
	case "ErrPermanent is retried":
		if cause != nil {
			cause = errors.New(cause.Error())
		}
	}
	return s.orig.Fail(ctx, cause)
}

func (s *settler) Extend(ctx context.Context, _ *queue.Delivery, lease time.Duration) error {
	switch s.b.how {
	case "Extend does nothing":
		return nil
	case "Extend of a canceled job succeeds":
		if err := s.orig.Extend(ctx, lease); !errors.Is(err, queue.ErrCanceled) {
			return err
		}
		return nil
	}
	return s.orig.Extend(ctx, lease)
}

func (s *settler) Release(ctx context.Context, _ *queue.Delivery) error {
	switch s.b.how {
	case "Release counts an attempt":
		return s.orig.Fail(ctx, errors.New("released"))
	case "Release keeps the lease":
		return nil
	}
	return s.orig.Release(ctx)
}

func (s *settler) Snooze(ctx context.Context, _ *queue.Delivery, delay time.Duration) error {
	switch s.b.how {
	case "Snooze counts an attempt":
		return s.orig.Fail(ctx, errors.New("snoozed"))
	case "Snooze ignores the delay":
		return s.orig.Release(ctx)
	case "Snooze keeps the lease":
		return nil
	case "a stale delivery's Snooze is accepted":
		if err := s.orig.Snooze(ctx, delay); !errors.Is(err, queue.ErrLeaseLost) {
			return err
		}
		return nil
	case "Snooze accepts a negative delay":
		delay = max(delay, 0)
	}
	return s.orig.Snooze(ctx, delay)
}

func (s *settler) AckThen(ctx context.Context, _ *queue.Delivery, result []byte, next []queue.Job) ([]queue.JobID, error) {
	switch s.b.how {
	case "AckThen ignores the next jobs":
		_, ids, err := queue.PrepareChain(next, 0)
		if err != nil {
			return nil, err
		}
		return ids, s.orig.Ack(ctx, result)
	case "AckThen enqueues the next jobs twice":
		// As a retry of a lost reply that is not idempotent would.
		ids, err := s.orig.AckThen(ctx, result, next...)
		if err == nil {
			for _, j := range next {
				j.ID = ""
				_, _ = s.b.Memory.Enqueue(ctx, j)
			}
		}
		return ids, err
	case "AckThen acks, then enqueues":
		// A crash, or a refused job, between the two loses the jobs.
		if err := s.orig.Ack(ctx, result); err != nil {
			return nil, err
		}
		return s.enqueueEach(ctx, next)
	case "AckThen enqueues, then acks":
		ids, err := s.enqueueEach(ctx, next)
		if err != nil {
			return nil, err
		}
		return ids, s.orig.Ack(ctx, result)
	case "AckThen enqueues on a stale lease":
		ids, err := s.orig.AckThen(ctx, result, next...)
		if errors.Is(err, queue.ErrLeaseLost) {
			_, _ = s.b.Memory.EnqueueBatch(ctx, next)
		}
		return ids, err
	}
	return s.orig.AckThen(ctx, result, next...)
}

// enqueueEach enqueues jobs one by one, stopping at the first refusal.
func (s *settler) enqueueEach(ctx context.Context, jobs []queue.Job) ([]queue.JobID, error) {
	var ids []queue.JobID
	for _, j := range jobs {
		id, err := s.b.Memory.Enqueue(ctx, j)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// TestKitSkipsChainWithoutChainer: the chain clauses are skipped, not
// failed (nor passed), for a queue whose deliveries are no Chainer (the
// plain settler has neither Snooze nor AckThen).
func TestKitSkipsChainWithoutChainer(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in the child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenQueueChild$/^Chain", "-test.v", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), brokenEnv+"="+noSnoozer)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, clause := range []string{"Chain", "ChainStale", "ChainRefused"} {
		require.Contains(t, string(out), "--- SKIP: TestBrokenQueueChild/"+clause+" ", "%s", out)
	}
}

// loosen breaks j the way how says, for the behaviours a job's options
// break.
func loosen(how string, j queue.Job) queue.Job {
	switch how {
	case "MaxAttempts ignored":
		j.MaxAttempts = 0
	case "ignores Priority":
		j.Priority = 0
	case "ignores RunAt":
		j.RunAt = time.Time{}
	case "ignores UniqueKey":
		j.UniqueKey, j.UniqueFor = "", 0
	case "UniqueFor never runs out":
		if j.UniqueKey != "" {
			j.UniqueFor = max(j.UniqueFor, time.Hour)
		}
	case "ignores Job.ID":
		j.ID = ""
	case "accepts priority 10":
		j.Priority = min(j.Priority, 9)
	case "truncates an oversized payload":
		if len(j.Payload) > queue.DefaultMaxPayload {
			j.Payload = j.Payload[:queue.DefaultMaxPayload]
		}
	case "keeps ended jobs forever":
		j.Retention = max(j.Retention, time.Hour)
	case "drops headers":
		j.Headers = nil
	case "accepts oversized headers":
		size := 0
		for k, v := range j.Headers {
			size += len(k) + len(v)
		}
		if size > queue.MaxHeaderBytes {
			j.Headers = nil
		}
	}
	return j
}

// callerPayload returns the caller's buffer of job id, if the queue kept
// it, else payload.
func (b *broken) callerPayload(id queue.JobID, payload []byte) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.callers[id]; ok {
		return p
	}
	return payload
}

// known reports the job the caller-chosen ID of j names, if the queue
// knows it.
func (b *broken) known(ctx context.Context, j queue.Job) (queue.JobInfo, bool) {
	if j.ID == "" {
		return queue.JobInfo{}, false
	}
	in, err := b.Memory.Status(ctx, queue.FormatID(j.Queue, j.ID))
	return in, err == nil
}

func (b *broken) Enqueue(ctx context.Context, j queue.Job) (queue.JobID, error) {
	switch b.how {
	case "another payload under an ID is accepted":
		id, err := b.Memory.Enqueue(ctx, j)
		if errors.Is(err, queue.ErrDuplicate) && j.ID != "" {
			return id, nil
		}
		return id, err
	case "the same job again under its ID is an error":
		if in, ok := b.known(ctx, j); ok {
			return in.ID, fmt.Errorf("%w: %s exists", queue.ErrDuplicate, in.ID)
		}
	case "a retry after the job ended enqueues again":
		if in, ok := b.known(ctx, j); ok && in.State.Final() {
			j.ID = ""
			_, err := b.Memory.Enqueue(ctx, j)
			return in.ID, err
		}
	case "Enqueue keeps the caller's payload":
		id, err := b.Memory.Enqueue(ctx, j)
		if err == nil {
			b.mu.Lock()
			b.callers[id] = j.Payload
			b.mu.Unlock()
		}
		return id, err
	case "loses a job":
		b.mu.Lock()
		b.enqueues++
		lost := b.enqueues%100 == 0
		b.mu.Unlock()
		if lost {
			return queue.FormatID(j.Queue, "lost"), nil
		}
	case "IDs carry a slash":
		id, err := b.Memory.Enqueue(ctx, loosen(b.how, j))
		if qn, name, perr := queue.ParseID(id); perr == nil {
			id = queue.JobID(qn + "/" + name)
		}
		return id, err
	}
	return b.Memory.Enqueue(ctx, loosen(b.how, j))
}

func (b *broken) EnqueueBatch(ctx context.Context, jobs []queue.Job) ([]queue.JobID, error) {
	switch b.how {
	case "an empty batch is an error":
		if len(jobs) == 0 {
			return nil, fmt.Errorf("%w: empty batch", queue.ErrInvalidJob)
		}
	case "EnqueueBatch returns the IDs out of order":
		ids, err := b.Memory.EnqueueBatch(ctx, jobs)
		slices.Reverse(ids)
		return ids, err
	}
	loosened := make([]queue.Job, len(jobs))
	for i, j := range jobs {
		loosened[i] = loosen(b.how, j)
	}
	return b.Memory.EnqueueBatch(ctx, loosened)
}

func (b *broken) Dequeue(ctx context.Context, queues []string, lease time.Duration) (*queue.Delivery, error) {
	switch b.how {
	case "leases never run out":
		lease = time.Hour
	case "Dequeue serves the queues in reverse order":
		queues = slices.Clone(queues)
		slices.Reverse(queues)
	case "Dequeue polls slowly":
		return b.poll(ctx, queues, lease)
	case "Dequeue overstays its context":
		return b.overstay(ctx, queues, lease)
	case "a canceled Dequeue keeps its lease":
		// The lease is taken whatever ctx says, and the reply dropped
		// when ctx has ended, as a server's reply lost with the call.
		d, err := b.Memory.Dequeue(context.WithoutCancel(ctx), queues, lease)
		if err == nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			return nil, err
		}
		return b.wrap(d), nil
	case "delivers a job twice":
		b.mu.Lock()
		b.dequeues++
		again := b.last
		if b.dequeues%10 != 0 {
			again = nil
		}
		b.mu.Unlock()
		if again != nil {
			return again, nil
		}
	}
	d, err := b.Memory.Dequeue(ctx, queues, lease)
	if err != nil {
		return nil, err
	}
	w := b.wrap(d)
	b.mu.Lock()
	b.last = w
	b.mu.Unlock()
	return w, nil
}

func (b *broken) AckAndDequeue(ctx context.Context, d *queue.Delivery, result []byte, lease time.Duration) (*queue.Delivery, error) {
	switch b.how {
	case "AckAndDequeue leases nothing":
		return nil, d.Ack(ctx, result)
	case "AckAndDequeue leases after a refused ack":
		next, err := b.Memory.AckAndDequeue(ctx, d, result, lease)
		if errors.Is(err, queue.ErrLeaseLost) {
			dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			if taken, derr := b.Memory.Dequeue(dctx, []string{d.Job.Queue}, lease); derr == nil {
				return b.wrap(taken), err
			}
		}
		if next != nil {
			next = b.wrap(next)
		}
		return next, err
	}
	next, err := b.Memory.AckAndDequeue(ctx, d, result, lease)
	if next != nil {
		next = b.wrap(next)
	}
	return next, err
}

// poll looks for a job every overstay instead of blocking until one is
// enqueued.
func (b *broken) poll(ctx context.Context, queues []string, lease time.Duration) (*queue.Delivery, error) {
	for {
		look, cancel := context.WithTimeout(ctx, time.Millisecond)
		d, err := b.Memory.Dequeue(look, queues, lease)
		cancel()
		if err == nil {
			return b.wrap(d), nil
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(overstay):
		}
	}
}

// overstay blocks for at least overstay, whatever ctx says, as a blocking
// call to a server with its own timeout would.
func (b *broken) overstay(ctx context.Context, queues []string, lease time.Duration) (*queue.Delivery, error) {
	until := time.Now().Add(overstay)
	if dl, ok := ctx.Deadline(); ok && dl.After(until) {
		until = dl
	}
	own, cancel := context.WithDeadline(context.WithoutCancel(ctx), until)
	defer cancel()
	d, err := b.Memory.Dequeue(own, queues, lease)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return b.wrap(d), nil
}

func (b *broken) Status(ctx context.Context, id queue.JobID) (queue.JobInfo, error) {
	if b.how == "the slash form of an ID is not found" && strings.Contains(string(id), "/") {
		return queue.JobInfo{}, fmt.Errorf("%w: %s", queue.ErrNotFound, id)
	}
	in, err := b.Memory.Status(ctx, id)
	switch b.how {
	case "Enqueue keeps the caller's payload":
		in.Payload = b.callerPayload(id, in.Payload)
	case "Status reports an active job as ready":
		if in.State == queue.StateActive {
			in.State = queue.StateReady
		}
	case "an expired lease is no failed attempt":
		if in.State == queue.StateActive {
			in.LastErr = ""
		}
	}
	return in, err
}

func (b *broken) Wait(ctx context.Context, id queue.JobID) (queue.JobInfo, error) {
	switch b.how {
	case "Wait does not wait":
		return b.Memory.Status(ctx, id)
	case "Wait overstays its context":
		own, cancel := context.WithTimeout(context.WithoutCancel(ctx), overstay)
		defer cancel()
		in, err := b.Memory.Wait(own, id)
		if err != nil && ctx.Err() != nil {
			return in, ctx.Err()
		}
		return in, err
	}
	return b.Memory.Wait(ctx, id)
}

func (b *broken) Close() error {
	b.mu.Lock()
	b.closes++
	again := b.closes > 1
	b.mu.Unlock()
	if again && b.how == "a second Close is an error" {
		return errors.New("already closed")
	}
	return b.Memory.Close()
}

func (b *broken) Cancel(ctx context.Context, id queue.JobID) error {
	switch b.how {
	case "Cancel after Close is no error":
		if err := b.Memory.Cancel(ctx, id); !errors.Is(err, queue.ErrClosed) {
			return err
		}
		return nil
	case "Cancel leaves a waiting job":
		if in, err := b.Memory.Status(ctx, id); err == nil && (in.State == queue.StateReady || in.State == queue.StateScheduled) {
			return nil
		}
	case "Cancel of an ended job is no error":
		if err := b.Memory.Cancel(ctx, id); !errors.Is(err, queue.ErrEnded) {
			return err
		}
		return nil
	}
	return b.Memory.Cancel(ctx, id)
}

func (b *broken) Dead(ctx context.Context, name string, offset, limit int) ([]queue.JobInfo, error) {
	if b.how != "Dead lists the oldest first" {
		return b.Memory.Dead(ctx, name, offset, limit)
	}
	all, err := b.Memory.Dead(ctx, name, 0, 1<<20)
	if err != nil {
		return nil, err
	}
	slices.Reverse(all)
	all = all[min(offset, len(all)):]
	return all[:min(limit, len(all))], nil
}

func (b *broken) Requeue(ctx context.Context, id queue.JobID) error {
	err := b.Memory.Requeue(ctx, id)
	if b.how == "Requeue of an unknown job succeeds" && errors.Is(err, queue.ErrNotFound) {
		return nil
	}
	return err
}

func (b *broken) SetLimits(ctx context.Context, name string, l queue.Limits) error {
	switch b.how {
	case "ignores Concurrency":
		l.Concurrency = 0
	case "ignores Rate":
		l.Rate, l.Burst = 0, 0
	}
	return b.Memory.SetLimits(ctx, name, l)
}

// newBroken returns a queue.Memory broken the way how says; how "" is the
// wrapper breaking nothing.
func newBroken(t *testing.T, how string) queue.JobQueue {
	cfg := queue.MemoryConfig{Backoff: func(int) time.Duration { return backoff }}
	if how == "retries before the backoff" {
		cfg.Backoff = func(int) time.Duration { return 0 }
	}
	m, err := queue.NewMemory(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return &broken{Memory: m, how: how, callers: make(map[queue.JobID][]byte)}
}

// TestKitOnUnbrokenWrapper is the baseline: breaking nothing, the wrapper
// passes every clause, so a clause that fails below fails for the break.
func TestKitOnUnbrokenWrapper(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.JobQueue { return newBroken(t, "") })
}

// TestBrokenQueueChild runs the kit on the broken queue the parent names;
// it is skipped in a normal run.
func TestBrokenQueueChild(t *testing.T) {
	how := os.Getenv(brokenEnv)
	if how == "" {
		t.Skip("run by TestKitCatchesBrokenQueues")
	}
	queuetest.Run(t, func(t *testing.T) queue.JobQueue { return newBroken(t, how) })
}

func TestKitCatchesBrokenQueues(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in the child process")
	}
	for how, clause := range brokenQueues {
		t.Run(how, func(t *testing.T) {
			t.Parallel() // each child mostly waits on the kit's timers
			kitcheck.Catches(t, "TestBrokenQueueChild", clause, "a queue where "+how, brokenEnv+"="+how)
		})
	}
}

func (b *broken) Counts(ctx context.Context, name string) (queue.QueueCounts, error) {
	c, err := b.Memory.Counts(ctx, name)
	switch b.how {
	case "Counts ignores scheduled jobs":
		c.Scheduled = 0
	case "OldestReady is always zero":
		c.OldestReady = 0
	}
	return c, err
}

func (b *broken) List(ctx context.Context, name string, state queue.State, cursor string, limit int) (queue.Page, error) {
	switch b.how {
	case "List drops the last job of a page":
		p, err := b.Memory.List(ctx, name, state, cursor, limit)
		if len(p.Jobs) > 1 && p.Next != "" {
			p.Jobs = p.Jobs[:len(p.Jobs)-1]
		}
		return p, err
	case "List pages by offset":
		return b.listByOffset(ctx, name, state, cursor, limit)
	}
	return b.Memory.List(ctx, name, state, cursor, limit)
}

// listByOffset pages by position, as LRANGE or LIMIT offset would: right
// while nothing moves, wrong when jobs come and go between pages.
func (b *broken) listByOffset(ctx context.Context, name string, state queue.State, cursor string, limit int) (queue.Page, error) {
	offset := 0
	if cursor != "" {
		if _, err := fmt.Sscan(cursor, &offset); err != nil {
			return queue.Page{}, fmt.Errorf("%w: cursor", queue.ErrInvalidConfig)
		}
	}
	if limit == 0 {
		limit = queue.DefaultPageSize
	}
	var all []queue.JobInfo
	next := ""
	for {
		p, err := b.Memory.List(ctx, name, state, next, queue.MaxPageSize)
		if err != nil {
			return queue.Page{}, err
		}
		all = append(all, p.Jobs...)
		if next = p.Next; next == "" {
			break
		}
	}
	all = all[min(offset, len(all)):]
	page := queue.Page{Jobs: all[:min(limit, len(all))]}
	if len(all) > limit {
		page.Next = fmt.Sprint(offset + limit)
	}
	return page, nil
}

func (b *broken) Pause(ctx context.Context, name string) error {
	if b.how == "Pause does nothing" {
		return nil
	}
	return b.Memory.Pause(ctx, name)
}

func (b *broken) DeleteDead(ctx context.Context, id queue.JobID) error {
	if b.how == "DeleteDead deletes a live job" {
		if in, err := b.Memory.Status(ctx, id); err == nil && !in.State.Final() {
			return b.Memory.Cancel(ctx, id)
		}
	}
	return b.Memory.DeleteDead(ctx, id)
}

func (b *broken) RequeueAll(ctx context.Context, name string) (int, error) {
	if b.how == "RequeueAll requeues one job" {
		dead, err := b.Memory.Dead(ctx, name, 0, 1)
		if err != nil || len(dead) == 0 {
			return 0, err
		}
		return 1, b.Memory.Requeue(ctx, dead[0].ID)
	}
	return b.Memory.RequeueAll(ctx, name)
}
