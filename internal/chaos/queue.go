package chaos

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/scaleout/scaleout/queue"
)

// The queue model: what queue.JobQueue promises (queue/doc.go, Delivery;
// queue.go, JobQueue and Settler; redisqueue's Wait), as clauses over a
// history of enqueues, deliveries, settlements, Waits and the final
// statuses read once the faults have healed and the workers have drained
// the queue for a bounded settle period:
//
//   - Completion (at least once): a job whose Enqueue returned nil ends
//     (done, or dead once its MaxAttempts are spent); so does a job whose
//     Enqueue's outcome is unknown, when it exists at all ("the job may be
//     stored, and will run").
//   - Fencing: the queue accepts an Ack or Fail only from the current
//     delivery. An Ack accepted with token t ends the job, so no delivery
//     of it may carry a token above t: one delivered before the Ack was
//     called superseded it (the Ack must have been refused), one after it
//     means a done job was delivered again. A Fail accepted with token t
//     is wrong when a delivery with a larger token had been returned before
//     the Fail was called. At most one Ack of a job is accepted.
//   - Results: a done job's result is the one an Ack of the newest
//     delivery sent: its token is at least every token delivered for the
//     job, it is the token of an Ack that was not refused, and of the
//     accepted Ack when one was. A refused Ack (ErrLeaseLost) changed
//     nothing. A dead job spent its attempts and had no accepted Ack.
//   - Wait returns only a final state, the job's final state (the same
//     state and result the settled status shows). It rides out every
//     transient failure (redisqueue's documentation: connection errors,
//     LOADING, MOVED, CLUSTERDOWN, ...) until its context ends, so the
//     only errors allowed are its context's and ErrNotFound for a job
//     whose Enqueue had not returned nil before the Wait was called.
//
// Each result a handler acknowledges names its delivery, "<id>@<token>",
// so the stored result says which delivery wrote it.

// QueueOp is one call of the queue workload.
type QueueOp struct {
	// Kind is "enqueue", "deliver" (a Dequeue, or the next job of an
	// AckAndDequeue, returned a delivery), "run" (a handler started on a
	// delivery), "ack", "fail", "wait", or "status" (the settled status).
	Kind   string
	Job    queue.JobID
	Token  uint64 // deliver, run, ack, fail: the delivery's token
	Result string // ack: the result it sent
	// MaxAttempts of the job (enqueue, status).
	MaxAttempts int
}

// Outcomes of a QueueOut.
const (
	queueOK       = "ok"
	queueRefused  = "refused"  // ErrLeaseLost
	queueNotFound = "notfound" // ErrNotFound
	queueTimeout  = "timeout"  // the caller's context ended
	queueError    = "error"    // anything else: the outcome is unknown
)

// QueueOut is what the call saw.
type QueueOut struct {
	Outcome string
	Err     string
	State   queue.State // wait, status
	Result  string      // wait, status
	Attempt int         // deliver, wait, status
}

// queueResult is the result an Ack of delivery token of job id sends.
func queueResult(id queue.JobID, token uint64) string {
	return string(id) + "@" + strconv.FormatUint(token, 10)
}

// queueResultToken parses a result of queueResult for id.
func queueResultToken(id queue.JobID, result string) (uint64, bool) {
	rest, ok := strings.CutPrefix(result, string(id)+"@")
	if !ok {
		return 0, false
	}
	t, err := strconv.ParseUint(rest, 10, 64)
	return t, err == nil
}

// queueJobOps is the history of one job, split by kind.
type queueJobOps struct {
	enqueues, delivers, runs, acks, fails, waits, statuses []porcupine.Operation
}

// CheckQueue checks a queue history against the model above; it returns
// "" or the violations found, one per line (at most 20).
func CheckQueue(ops []porcupine.Operation) string {
	jobs := map[queue.JobID]*queueJobOps{}
	for _, op := range ops {
		in := op.Input.(QueueOp)
		j := jobs[in.Job]
		if j == nil {
			j = &queueJobOps{}
			jobs[in.Job] = j
		}
		switch in.Kind {
		case "enqueue":
			j.enqueues = append(j.enqueues, op)
		case "deliver":
			j.delivers = append(j.delivers, op)
		case "run":
			j.runs = append(j.runs, op)
		case "ack":
			j.acks = append(j.acks, op)
		case "fail":
			j.fails = append(j.fails, op)
		case "wait":
			j.waits = append(j.waits, op)
		case "status":
			j.statuses = append(j.statuses, op)
		default:
			panic("unknown queue op " + in.Kind)
		}
	}
	var out []string
	for _, id := range slices.Sorted(maps.Keys(jobs)) {
		out = append(out, checkQueueJob(id, jobs[id])...)
	}
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("... and %d more", len(out)-20))
	}
	return strings.Join(out, "\n")
}

func queueOut(op porcupine.Operation) QueueOut {
	out, _ := op.Output.(QueueOut)
	return out
}

// describeQueueOp names an operation for a violation's message.
func describeQueueOp(op porcupine.Operation) string {
	in, out := op.Input.(QueueOp), queueOut(op)
	ret := "never (unknown)"
	if op.Return != Unknown {
		ret = time.Duration(op.Return).String()
	}
	s := in.Kind
	if in.Token != 0 {
		s += fmt.Sprintf(" token %d", in.Token)
	}
	s += " → " + out.Outcome
	if out.State != "" {
		s += fmt.Sprintf(" %s %q", out.State, out.Result)
	}
	if out.Err != "" {
		s += " (" + out.Err + ")"
	}
	return s + fmt.Sprintf(" [called %v, returned %s]", time.Duration(op.Call), ret)
}

func checkQueueJob(id queue.JobID, j *queueJobOps) []string {
	var v []string
	bad := func(format string, args ...any) {
		v = append(v, string(id)+": "+fmt.Sprintf(format, args...))
	}
	// When the job's Enqueue was first known to have succeeded.
	ackedAt := int64(Unknown)
	maxAttempts := 0
	for _, e := range j.enqueues {
		if queueOut(e).Outcome == queueOK {
			ackedAt = min(ackedAt, e.Return)
		}
		maxAttempts = max(maxAttempts, e.Input.(QueueOp).MaxAttempts)
	}
	var newest uint64
	var newestOp porcupine.Operation
	delivered := map[uint64]bool{}
	for _, d := range j.delivers {
		t := d.Input.(QueueOp).Token
		delivered[t] = true
		if t > newest {
			newest, newestOp = t, d
		}
	}
	for _, r := range j.runs {
		if t := r.Input.(QueueOp).Token; !delivered[t] {
			bad("a handler ran under token %d, which no Dequeue returned", t)
		}
	}

	// Fencing.
	var accepted []porcupine.Operation
	for _, a := range j.acks {
		if queueOut(a).Outcome != queueOK {
			continue
		}
		accepted = append(accepted, a)
		t := a.Input.(QueueOp).Token
		for _, d := range j.delivers {
			td := d.Input.(QueueOp).Token
			switch {
			case td <= t:
			case d.Return < a.Call:
				bad("Ack of a superseded lease accepted: %s, after %s", describeQueueOp(a), describeQueueOp(d))
			default:
				bad("delivered again after an accepted Ack: %s, then %s", describeQueueOp(a), describeQueueOp(d))
			}
		}
	}
	if len(accepted) > 1 {
		bad("%d Acks accepted: %s and %s", len(accepted), describeQueueOp(accepted[0]), describeQueueOp(accepted[1]))
	}
	for _, f := range j.fails {
		if queueOut(f).Outcome != queueOK {
			continue
		}
		t := f.Input.(QueueOp).Token
		for _, d := range j.delivers {
			if d.Input.(QueueOp).Token > t && d.Return < f.Call {
				bad("Fail of a superseded lease accepted: %s, after %s", describeQueueOp(f), describeQueueOp(d))
			}
		}
	}

	// The settled status: the last one read.
	var final *QueueOut
	if n := len(j.statuses); n > 0 {
		o := queueOut(j.statuses[n-1])
		final = &o
	}
	switch {
	case final == nil || final.Outcome != queueOK && final.Outcome != queueNotFound:
		if ackedAt != Unknown {
			bad("enqueued, but its settled status could not be read")
		}
	case final.Outcome == queueNotFound:
		if ackedAt != Unknown {
			bad("enqueued (Enqueue returned at %v) but not found once settled", time.Duration(ackedAt))
		}
		if len(j.delivers) > 0 {
			bad("delivered (%s) but not found once settled", describeQueueOp(j.delivers[0]))
		}
	case !final.State.Final():
		bad("still %s (attempt %d) once settled: an enqueued job must end", final.State, final.Attempt)
	case final.State == queue.StateDone:
		t, ok := queueResultToken(id, final.Result)
		if !ok {
			bad("done with result %q, which no Ack sent", final.Result)
			break
		}
		if t < newest {
			bad("done with the result of token %d, older than the newest delivery: %s", t, describeQueueOp(newestOp))
		}
		sent := false
		for _, a := range j.acks {
			if a.Input.(QueueOp).Token != t {
				continue
			}
			if queueOut(a).Outcome == queueRefused {
				bad("done with the result of an Ack that was refused: %s", describeQueueOp(a))
			}
			sent = true
		}
		if !sent {
			bad("done with the result of token %d, which no Ack sent", t)
		}
		for _, a := range accepted {
			if ta := a.Input.(QueueOp).Token; ta != t {
				bad("done with the result of token %d, but the accepted Ack was %s", t, describeQueueOp(a))
			}
		}
	case final.State == queue.StateDead:
		if len(accepted) > 0 {
			bad("dead, but an Ack was accepted: %s", describeQueueOp(accepted[0]))
		}
		if maxAttempts > 0 && final.Attempt < maxAttempts {
			bad("dead after %d attempts of %d (no handler fails permanently)", final.Attempt, maxAttempts)
		}
	default:
		bad("ended %s, which nobody asked for", final.State)
	}

	// Wait.
	for _, w := range j.waits {
		o := queueOut(w)
		switch o.Outcome {
		case queueOK:
			switch {
			case !o.State.Final():
				bad("Wait returned a state that is not final: %s", describeQueueOp(w))
			case final != nil && final.Outcome == queueOK && (o.State != final.State || o.Result != final.Result):
				bad("Wait returned %s %q, but the job ended %s %q: %s", o.State, o.Result, final.State, final.Result, describeQueueOp(w))
			}
		case queueTimeout:
		case queueNotFound:
			if ackedAt < w.Call {
				bad("Wait found no job, though its Enqueue returned at %v: %s", time.Duration(ackedAt), describeQueueOp(w))
			}
		default:
			bad("Wait failed while its context was live (it must ride out transient failures): %s", describeQueueOp(w))
		}
	}
	return v
}

// queueOutcome classifies a call's error: ctx is the caller's context.
func queueOutcome(ctx context.Context, err error) QueueOut {
	switch {
	case err == nil:
		return QueueOut{Outcome: queueOK}
	case errors.Is(err, queue.ErrLeaseLost):
		return QueueOut{Outcome: queueRefused, Err: err.Error()}
	case errors.Is(err, queue.ErrNotFound):
		return QueueOut{Outcome: queueNotFound, Err: err.Error()}
	case ctx.Err() != nil:
		return QueueOut{Outcome: queueTimeout, Err: err.Error()}
	}
	return QueueOut{Outcome: queueError, Err: err.Error()}
}

// queueRecorder is the JobQueue the workload's workers use: it records
// every delivery its queue hands out and every settlement of one, with
// the outcome the caller saw, and passes everything else through.
type queueRecorder struct {
	inner  queue.JobQueue
	h      *History
	client int
	origs  sync.Map // *queue.Delivery handed out → the inner queue's
}

var (
	_ queue.JobQueue    = (*queueRecorder)(nil)
	_ queue.AckDequeuer = (*queueRecorder)(nil)
)

func (r *queueRecorder) Enqueue(ctx context.Context, j queue.Job) (queue.JobID, error) {
	return r.inner.Enqueue(ctx, j)
}

func (r *queueRecorder) Dequeue(ctx context.Context, queues []string, lease time.Duration) (*queue.Delivery, error) {
	d, err := r.inner.Dequeue(ctx, queues, lease)
	if err != nil || d == nil {
		return d, err
	}
	return r.wrap(d), nil
}

func (r *queueRecorder) Status(ctx context.Context, id queue.JobID) (queue.JobInfo, error) {
	return r.inner.Status(ctx, id)
}

func (r *queueRecorder) Wait(ctx context.Context, id queue.JobID) (queue.JobInfo, error) {
	return r.inner.Wait(ctx, id)
}

func (r *queueRecorder) Cancel(ctx context.Context, id queue.JobID) error {
	return r.inner.Cancel(ctx, id)
}

// wrap records d and returns the Delivery the caller gets, settled
// through r.
func (r *queueRecorder) wrap(d *queue.Delivery) *queue.Delivery {
	now := r.h.Now()
	r.h.Add(r.client, QueueOp{Kind: "deliver", Job: d.ID, Token: d.Token}, QueueOut{Outcome: queueOK, Attempt: d.Attempt}, now, now)
	w := queue.NewDelivery(r, *d)
	r.origs.Store(w, d)
	return w
}

func (r *queueRecorder) orig(d *queue.Delivery) *queue.Delivery {
	o, ok := r.origs.Load(d)
	if !ok {
		panic("queueRecorder: a delivery it did not hand out")
	}
	return o.(*queue.Delivery)
}

// settled records a settlement of d called at call that returned err.
func (r *queueRecorder) settled(ctx context.Context, kind string, d *queue.Delivery, result []byte, call int64, err error) {
	out := queueOutcome(ctx, err)
	ret := r.h.Now()
	if out.Outcome != queueOK && out.Outcome != queueRefused {
		ret = Unknown
	}
	r.h.Add(r.client, QueueOp{Kind: kind, Job: d.ID, Token: d.Token, Result: string(result)}, out, call, ret)
}

func (r *queueRecorder) Ack(ctx context.Context, d *queue.Delivery, result []byte) error {
	o := r.orig(d)
	call := r.h.Now()
	err := o.Ack(ctx, result)
	r.settled(ctx, "ack", d, result, call, err)
	r.origs.Delete(d)
	return err
}

func (r *queueRecorder) Fail(ctx context.Context, d *queue.Delivery, cause error) error {
	o := r.orig(d)
	call := r.h.Now()
	err := o.Fail(ctx, cause)
	r.settled(ctx, "fail", d, nil, call, err)
	r.origs.Delete(d)
	return err
}

func (r *queueRecorder) Extend(ctx context.Context, d *queue.Delivery, lease time.Duration) error {
	o := r.orig(d)
	err := o.Extend(ctx, lease)
	if err == nil {
		d.LeaseUntil = o.LeaseUntil
	}
	return err
}

func (r *queueRecorder) Release(ctx context.Context, d *queue.Delivery) error {
	err := r.orig(d).Release(ctx)
	r.origs.Delete(d)
	return err
}

// AckAndDequeue uses the inner queue's when it has one (so that the
// Worker takes that path as it would without the recorder), else acks
// and leases nothing.
func (r *queueRecorder) AckAndDequeue(ctx context.Context, d *queue.Delivery, result []byte, lease time.Duration) (*queue.Delivery, error) {
	ad, ok := r.inner.(queue.AckDequeuer)
	if !ok {
		return nil, r.Ack(ctx, d, result)
	}
	o := r.orig(d)
	call := r.h.Now()
	next, err := ad.AckAndDequeue(ctx, o, result, lease)
	r.settled(ctx, "ack", d, result, call, err)
	r.origs.Delete(d)
	if err != nil || next == nil {
		return nil, err
	}
	return r.wrap(next), nil
}

// QueueWorkload drives producers, workers, late ackers and waiters over
// clones of a queue.
type QueueWorkload struct {
	Clones []queue.JobQueue // one per clone
	Queues []string         // the queue names jobs go to
	// Lease is the Workers' lease (their heartbeat is a third of it); the
	// late ackers lease for a third of it and sleep up to its length.
	Lease       time.Duration
	MaxAttempts int
	History     *History

	rngMu   sync.Mutex
	rng     *rand.Rand
	clients atomic.Int64
	next    atomic.Int64

	mu   sync.Mutex
	jobs []queue.JobID // every job an Enqueue was called for
	// finished counts, per clone, the Worker settlements observed.
}

// NewQueueWorkload returns a workload over clones, seeded with seed.
func NewQueueWorkload(clones []queue.JobQueue, queues []string, seed uint64) *QueueWorkload {
	return &QueueWorkload{Clones: clones, Queues: queues, Lease: 300 * time.Millisecond, MaxAttempts: 100,
		History: NewHistory(), rng: rand.New(rand.NewPCG(seed, seed+2))}
}

func (w *QueueWorkload) intN(n int) int {
	w.rngMu.Lock()
	defer w.rngMu.Unlock()
	return w.rng.IntN(n)
}

func (w *QueueWorkload) durN(d time.Duration) time.Duration {
	return time.Duration(w.intN(int(d) + 1))
}

func (w *QueueWorkload) recorder(clone int) *queueRecorder {
	return &queueRecorder{inner: w.Clones[clone], h: w.History, client: int(w.clients.Add(1))}
}

// queueBackoff is the retry backoff of the queues under test: short, so
// that a job whose lease ran out is delivered again within the run.
func queueBackoff(attempt int) time.Duration {
	return time.Duration(min(attempt, 5)) * 20 * time.Millisecond
}

// StartWorkers runs on each clone a Worker over every queue and one over
// a single queue (which settles through AckAndDequeue), until ctx ends;
// the returned function waits for them to return.
func (w *QueueWorkload) StartWorkers(ctx context.Context) (wait func(), err error) {
	var wg sync.WaitGroup
	all := map[string]int{}
	for _, q := range w.Queues {
		all[q] = 1
	}
	for c := range w.Clones {
		for _, queues := range []map[string]int{all, {w.Queues[c%len(w.Queues)]: 1}} {
			rec := w.recorder(c)
			wk, err := queue.NewWorker(rec, queue.WorkerConfig{Queues: queues, Concurrency: 3, Lease: w.Lease,
				ShutdownTimeout: time.Second})
			if err != nil {
				return nil, err
			}
			if err := wk.Handle("chaos", queue.ResultFunc(func(ctx context.Context, d *queue.Delivery) ([]byte, error) {
				return w.handle(ctx, rec, d)
			})); err != nil {
				return nil, err
			}
			wg.Go(func() { _ = wk.Run(ctx) })
		}
	}
	return wg.Wait, nil
}

// handle is the handler: it records the token it runs under, works for a
// while (now and then longer than a lease, ignoring its context, which
// the heartbeat must cover or another worker supersedes it), and fails
// one attempt in ten.
func (w *QueueWorkload) handle(ctx context.Context, rec *queueRecorder, d *queue.Delivery) ([]byte, error) {
	now := w.History.Now()
	w.History.Add(rec.client, QueueOp{Kind: "run", Job: d.ID, Token: d.Token}, QueueOut{Outcome: queueOK, Attempt: d.Attempt}, now, now)
	k := w.intN(100)
	switch {
	case k < 10:
		time.Sleep(w.Lease + w.durN(w.Lease))
	case k < 20:
		return nil, errors.New("chaos: a failed attempt")
	default:
		t := time.NewTimer(w.durN(w.Lease / 3))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return []byte(queueResult(d.ID, d.Token)), nil
}

// Drive runs, on every clone, a producer, a late acker and two waiters
// until ctx ends.
func (w *QueueWorkload) Drive(ctx context.Context) {
	var wg sync.WaitGroup
	for c := range w.Clones {
		wg.Go(func() { w.produce(ctx, c) })
		wg.Go(func() { w.lateAck(ctx, c) })
		// Two waiters, so that a fault finds Waits in their reads more often.
		wg.Go(func() { w.waitJobs(ctx, c) })
		wg.Go(func() { w.waitJobs(ctx, c) })
	}
	wg.Wait()
}

// produce enqueues jobs with unique IDs, some delayed, of random
// priorities, retrying a failed Enqueue under the same ID as the queue's
// documentation says (at most 3 tries: then its outcome stays unknown).
func (w *QueueWorkload) produce(ctx context.Context, clone int) {
	client := int(w.clients.Add(1))
	q := w.Clones[clone]
	for ctx.Err() == nil {
		n := w.next.Add(1)
		name := "j" + strconv.FormatInt(n, 10)
		j := queue.Job{Queue: w.Queues[w.intN(len(w.Queues))], Type: "chaos", ID: name, Payload: []byte(name),
			// The default Retention (a day) outlasts any run: the
			// check reads every job's final status at the end.
			Priority: w.intN(10), MaxAttempts: w.MaxAttempts}
		if w.intN(5) == 0 {
			j.RunAt = time.Now().Add(w.durN(500 * time.Millisecond))
		}
		id := queue.FormatID(j.Queue, name)
		w.mu.Lock()
		w.jobs = append(w.jobs, id)
		w.mu.Unlock()
		for range 3 {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			call := w.History.Now()
			got, err := q.Enqueue(cctx, j)
			out := queueOutcome(cctx, err)
			cancel()
			ret := w.History.Now()
			if err != nil {
				ret = Unknown
			} else if got != id {
				out = QueueOut{Outcome: queueError, Err: fmt.Sprintf("Enqueue returned ID %s, want %s", got, id)}
			}
			w.History.Add(client, QueueOp{Kind: "enqueue", Job: id, MaxAttempts: w.MaxAttempts}, out, call, ret)
			if err == nil || ctx.Err() != nil {
				break
			}
		}
		// About 100 jobs a second over 3 producers: below what the workers
		// run, so that no backlog outlives the run.
		sleep(ctx, 10*time.Millisecond+w.durN(20*time.Millisecond))
	}
}

// lateAck is a user of Dequeue and Ack without a Worker: it leases for a
// third of a lease and acks after up to a lease, mostly too late, so
// that its Acks race the deliveries that superseded them.
func (w *QueueWorkload) lateAck(ctx context.Context, clone int) {
	rec := w.recorder(clone)
	for ctx.Err() == nil {
		queues := slices.Clone(w.Queues)
		w.rngMu.Lock()
		w.rng.Shuffle(len(queues), func(i, k int) { queues[i], queues[k] = queues[k], queues[i] })
		w.rngMu.Unlock()
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		d, err := rec.Dequeue(dctx, queues, w.Lease/3)
		cancel()
		if err != nil || d == nil {
			sleep(ctx, 20*time.Millisecond)
			continue
		}
		sleep(ctx, w.durN(w.Lease))
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = d.Ack(actx, []byte(queueResult(d.ID, d.Token)))
		cancel()
	}
}

// waitJobs calls Wait on random jobs (some not yet, or never, enqueued
// successfully) with a deadline.
func (w *QueueWorkload) waitJobs(ctx context.Context, clone int) {
	client := int(w.clients.Add(1))
	q := w.Clones[clone]
	for ctx.Err() == nil {
		w.mu.Lock()
		var id queue.JobID
		if n := len(w.jobs); n > 0 {
			id = w.jobs[max(0, n-1-w.intN(min(n, 200)))] // a recent one, mostly not ended yet
		}
		w.mu.Unlock()
		if id == "" {
			sleep(ctx, 10*time.Millisecond)
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond+w.durN(1500*time.Millisecond))
		call := w.History.Now()
		info, err := q.Wait(wctx, id)
		out := queueOutcome(wctx, err)
		cancel()
		if err == nil {
			out.State, out.Result, out.Attempt = info.State, string(info.Result), info.Attempt
		}
		w.History.Add(client, QueueOp{Kind: "wait", Job: id}, out, call, w.History.Now())
	}
}

// Settle waits, while the workers still run on healed links, until every
// job that exists has ended or settle has passed; it returns the jobs
// that had not.
func (w *QueueWorkload) Settle(settle time.Duration) []queue.JobID {
	w.mu.Lock()
	pending := slices.Clone(w.jobs)
	w.mu.Unlock()
	deadline := time.Now().Add(settle)
	for len(pending) > 0 && time.Now().Before(deadline) {
		var still []queue.JobID
		for _, id := range pending {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := w.Clones[0].Status(ctx, id)
			cancel()
			if errors.Is(err, queue.ErrNotFound) || err == nil && info.State.Final() {
				continue
			}
			still = append(still, id)
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return pending
}

// Verify reads the status of every job (the workers stopped), retrying
// a failed read, and returns the history to check.
func (w *QueueWorkload) Verify() []porcupine.Operation {
	client := int(w.clients.Add(1))
	w.mu.Lock()
	jobs := slices.Clone(w.jobs)
	w.mu.Unlock()
	for _, id := range jobs {
		var out QueueOut
		call := w.History.Now()
		for try := 0; try < 5; try++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			info, err := w.Clones[try%len(w.Clones)].Status(ctx, id)
			out = queueOutcome(ctx, err)
			cancel()
			if err == nil {
				out.State, out.Result, out.Attempt = info.State, string(info.Result), info.Attempt
			}
			if out.Outcome == queueOK || out.Outcome == queueNotFound {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		w.History.Add(client, QueueOp{Kind: "status", Job: id, MaxAttempts: w.MaxAttempts}, out, call, w.History.Now())
	}
	return w.History.Ops()
}

// QueueStats counts what a history exercised.
func QueueStats(ops []porcupine.Operation) string {
	n := map[string]int{}
	for _, op := range ops {
		in, out := op.Input.(QueueOp), queueOut(op)
		n[in.Kind+" "+out.Outcome]++
		if in.Kind == "status" && out.Outcome == queueOK {
			n["status "+string(out.State)]++
		}
	}
	keys := slices.SortedFunc(maps.Keys(n), func(a, b string) int { return cmp.Compare(a, b) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, n[k])
	}
	return strings.Join(parts, ", ")
}
