package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"
)

// SchedulerConfig configures a Scheduler. Zero values mean the defaults.
type SchedulerConfig struct {
	// Location is where cron fields are read (see
	// ParseScheduleInLocation); default UTC. Every Scheduler enqueueing the same periodic job must use the
	// same one.
	Location *time.Location
	// MaxDelay is how late a slot may still be enqueued: a slot not
	// enqueued within MaxDelay of its time (the queue was down, the
	// process was not running) is skipped. Default: half the interval to
	// the next slot, at most an hour; never more than that interval.
	MaxDelay time.Duration
	// Logger receives enqueue errors and skipped slots; nil means
	// slog.Default() (see the logging rule in package scaleout's
	// documentation).
	Logger *slog.Logger
}

// Enqueue retry backoff of the Scheduler: from schedBackoffMin doubling to
// schedBackoffMax, jittered.
const (
	schedBackoffMin = 100 * time.Millisecond
	schedBackoffMax = 5 * time.Second
)

// Bounds of a slot job's UniqueFor (see Scheduler).
const (
	minUniqueFor = time.Minute
	maxUniqueFor = 24 * time.Hour
)

// maxPeriodicName bounds a periodic job's name so that its slot IDs are
// valid job IDs.
const maxPeriodicName = maxName - len("periodic:") - len(":2006-01-02T15:04:05Z")

// A Scheduler enqueues periodic jobs: "pre-render the pages every hour".
//
// Any number of Schedulers, on any number of machines, may run the same
// periodic jobs with no leader: each slot (one due time of a schedule) is
// enqueued once. The slot's job has the ID and UniqueKey
// "periodic:<name>:<slot time in UTC, RFC 3339>" and a UniqueFor of twice
// the interval between slots (at least a minute and twice MaxDelay, at
// most a day unless MaxDelay needs more), so every Scheduler but the
// first enqueues nothing: its Enqueue names the first one's job (same ID,
// type and payload: no error) or, once that job is forgotten, is refused
// by the held UniqueKey (ErrDuplicate), which is the expected answer.
// The job can thus be found with Status or Wait by that ID (queue name,
// "/", then the ID).
//
// Run waits on a timer for the next slot. When Enqueue fails it retries
// with backoff until the slot is older than MaxDelay, then skips it with
// a log. On start, Run enqueues the current slot (the latest one not in
// the future) if it is at most MaxDelay old, then continues with the
// following slots; older missed slots are never enqueued. Likewise a
// Scheduler that falls behind skips to the latest slot.
type Scheduler struct {
	q   JobQueue
	cfg SchedulerConfig
	log *slog.Logger

	mu      sync.Mutex
	entries []*periodic
	names   map[string]bool
	running bool
}

// periodic is one job added to a Scheduler.
type periodic struct {
	name  string
	spec  string
	sched Schedule
	job   Job
}

// NewScheduler returns a Scheduler enqueueing on q. A bad config is an
// error wrapping ErrInvalidConfig.
func NewScheduler(q JobQueue, cfg SchedulerConfig) (*Scheduler, error) {
	if q == nil {
		return nil, fmt.Errorf("%w: scheduler: nil JobQueue", ErrInvalidConfig)
	}
	if cfg.MaxDelay < 0 {
		return nil, fmt.Errorf("%w: scheduler: negative MaxDelay", ErrInvalidConfig)
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	s := &Scheduler{q: q, cfg: cfg, log: cfg.Logger, names: map[string]bool{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// Add makes j periodic under name, due at the times of spec, read in
// SchedulerConfig.Location unless the spec names its own zone (see
// ParseScheduleInLocation). It is AddSchedule with the parsed spec.
func (s *Scheduler) Add(name, spec string, j Job) error {
	sched, err := ParseScheduleInLocation(spec, s.cfg.Location)
	if err != nil {
		return err
	}
	return s.add(name, spec, sched, j)
}

// AddSchedule makes j periodic under name, due at the times sched's Next
// gives: any Schedule, such as a robfig/cron schedule (its Schedule has the
// same Next method) or ParseScheduleInLocation's for a zone of its own. Next
// must be deterministic, the same on every Scheduler enqueueing this job:
// its slots are the jobs' identities.
//
// j is the template of every slot's job: its ID, UniqueKey, UniqueFor and
// RunAt must be empty, as the Scheduler sets them. name is 1 to 70
// letters, digits or ".-_:" and unique in the Scheduler; it must be the
// same on every Scheduler enqueueing this job. Add all jobs before Run:
// adding while Run runs is an error. Errors wrap ErrInvalidConfig.
func (s *Scheduler) AddSchedule(name string, sched Schedule, j Job) error {
	if sched == nil {
		return fmt.Errorf("%w: scheduler: job %q: nil Schedule", ErrInvalidConfig, name)
	}
	spec := fmt.Sprintf("%T", sched)
	if st, ok := sched.(fmt.Stringer); ok {
		spec = st.String()
	}
	return s.add(name, spec, sched, j)
}

// add registers a periodic job; spec names its schedule in logs.
func (s *Scheduler) add(name, spec string, sched Schedule, j Job) error {
	if !validName(name) || len(name) > maxPeriodicName {
		return fmt.Errorf("%w: scheduler: name %q: want 1 to %d bytes of [A-Za-z0-9._:-]", ErrInvalidConfig, name, maxPeriodicName)
	}
	if j.ID != "" || j.UniqueKey != "" || j.UniqueFor != 0 || !j.RunAt.IsZero() {
		return fmt.Errorf("%w: scheduler: job %q: ID, UniqueKey, UniqueFor and RunAt are the scheduler's", ErrInvalidConfig, name)
	}
	if _, _, err := Prepare(j, int(^uint(0)>>1)); err != nil {
		return fmt.Errorf("%w: scheduler: job %q: %w", ErrInvalidConfig, name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.running:
		return fmt.Errorf("%w: scheduler: Add while Run runs", ErrInvalidConfig)
	case s.names[name]:
		return fmt.Errorf("%w: scheduler: name %q already added", ErrInvalidConfig, name)
	}
	s.names[name] = true
	s.entries = append(s.entries, &periodic{name: name, spec: spec, sched: sched, job: j})
	return nil
}

// Run enqueues the periodic jobs' slots as they come due, until ctx is
// done; then it returns ctx's error once every goroutine it started has
// ended. Queue errors are logged and retried; they never end Run. A second
// Run while one runs returns ErrAlreadyRunning at once.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrAlreadyRunning
	}
	s.running = true
	entries := s.entries
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()

	var wg sync.WaitGroup
	for _, e := range entries {
		wg.Go(func() { s.loop(ctx, e) })
	}
	wg.Wait()
	<-ctx.Done()
	return ctx.Err()
}

// loop enqueues the slots of e.
func (s *Scheduler) loop(ctx context.Context, e *periodic) {
	log := s.log.With("periodic", e.name, "schedule", e.spec)
	now := time.Now()
	slot := s.pick(e, now.Add(-s.lookback()), now, log)
	for {
		if slot.IsZero() {
			log.Warn("queue: scheduler: the schedule has no more slots")
			return
		}
		if !sleepUntil(ctx, slot) {
			return
		}
		s.fire(ctx, e, slot, log)
		if ctx.Err() != nil {
			return
		}
		slot = s.pick(e, slot, time.Now(), log)
	}
}

// lookback is how far back pick looks for a missed slot: the most
// MaxDelay can be.
func (s *Scheduler) lookback() time.Duration {
	if s.cfg.MaxDelay > 0 {
		return s.cfg.MaxDelay
	}
	return time.Hour
}

// interval is the time from slot to the next slot of e (lookback when
// there is none).
func (s *Scheduler) interval(e *periodic, slot time.Time) time.Duration {
	next := e.sched.Next(slot)
	if next.IsZero() {
		return s.lookback()
	}
	return next.Sub(slot)
}

// maxDelay is how late slot of e may still be enqueued.
func (s *Scheduler) maxDelay(e *periodic, slot time.Time) time.Duration {
	iv := s.interval(e, slot)
	if s.cfg.MaxDelay > 0 {
		return min(s.cfg.MaxDelay, iv)
	}
	return min(iv/2, time.Hour)
}

// pick returns the slot of e to enqueue next, after after: the latest
// slot not later than now if it is at most its MaxDelay old, else the
// first slot after now. The zero Time means there is none.
func (s *Scheduler) pick(e *periodic, after, now time.Time, log *slog.Logger) time.Time {
	if lo := now.Add(-s.lookback()); lo.After(after) {
		after = lo
	}
	slot := e.sched.Next(after)
	if slot.IsZero() || slot.After(now) {
		return slot
	}
	for {
		next := e.sched.Next(slot)
		if next.IsZero() || next.After(now) {
			break
		}
		slot = next
	}
	if late := now.Sub(slot); late > s.maxDelay(e, slot) {
		log.Warn("queue: scheduler: skipping a slot too far in the past", "slot", slot, "late", late)
		return e.sched.Next(now)
	}
	return slot
}

// SlotID returns the ID of the job of slot of the periodic job name,
// which Scheduler sets as the job's ID and UniqueKey.
func SlotID(name string, slot time.Time) string {
	return "periodic:" + name + ":" + slot.UTC().Format(time.RFC3339)
}

// fire enqueues slot of e, retrying until it is enqueued, is a duplicate,
// or is older than its MaxDelay.
func (s *Scheduler) fire(ctx context.Context, e *periodic, slot time.Time, log *slog.Logger) {
	iv, maxDelay := s.interval(e, slot), s.maxDelay(e, slot)
	j := e.job
	j.ID = SlotID(e.name, slot)
	j.UniqueKey = j.ID
	j.UniqueFor = max(min(2*iv, maxUniqueFor), 2*maxDelay, minUniqueFor)
	deadline := slot.Add(maxDelay)
	backoff := schedBackoffMin
	for {
		id, err := s.q.Enqueue(ctx, j)
		switch {
		case err == nil:
			log.Debug("queue: scheduler: enqueued", "slot", slot, "job", id)
			return
		case errors.Is(err, ErrDuplicate):
			return // another scheduler was first
		case ctx.Err() != nil:
			return
		case errors.Is(err, ErrInvalidJob) || errors.Is(err, ErrPayloadTooLarge):
			log.Error("queue: scheduler: the queue refuses the job", "slot", slot, "err", err)
			return
		}
		wait := backoff/2 + mrand.N(backoff/2+1)
		backoff = min(2*backoff, schedBackoffMax)
		if time.Now().Add(wait).After(deadline) {
			log.Error("queue: scheduler: skipping a slot: enqueue failed until it was too late", "slot", slot, "err", err)
			return
		}
		log.Warn("queue: scheduler: enqueue failed, retrying", "slot", slot, "err", err, "retry_in", wait)
		if !sleepUntil(ctx, time.Now().Add(wait)) {
			return
		}
	}
}

// sleepUntil waits until t or until ctx is done; it reports whether t
// came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
