package queue

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/observe"
)

// DefaultDepthInterval is how often a DepthReporter polls when its
// Interval is 0: the default scrape interval of Prometheus.
const DefaultDepthInterval = 15 * time.Second

// DepthReporterConfig configures a DepthReporter. Zero values mean the
// defaults.
type DepthReporterConfig struct {
	// Queues are the queues to report; nil means every queue the
	// Inspector lists (Inspector.Queues) at each poll.
	Queues []string
	// Interval is the time between polls; default DefaultDepthInterval.
	Interval time.Duration
	// Meter receives scaleout.queue.depth and scaleout.queue.oldest_age,
	// by queue (see package observe). nil means none: Run then polls
	// nothing and only waits for its context.
	Meter observe.Meter
	// Logger receives failed polls; nil means slog.Default() (see the
	// logging rule in package scaleout's documentation).
	Logger *slog.Logger
}

// A DepthReporter reports how deep queues are: every Interval it reads
// each queue's Inspector.Counts and sets the gauges scaleout.queue.depth
// (state ready, scheduled, active and dead) and scaleout.queue.oldest_age
// (QueueCounts.OldestReady, in seconds) of its Meter. Enqueued, started and
// finished jobs are counted where they happen (the queues' Config.Meter,
// WorkerConfig.Meter); how many are waiting is a property of the queue
// that only the queue can tell, so it is polled.
//
// The figures are the queue's, not the process's: every process running a
// DepthReporter on the same queues reports the same figures, so run one
// (beside an admin page, or under failover.Run), or aggregate the series
// with max, never sum. Each poll costs what the Inspector states for
// Counts (O(1) on Memory and redisqueue), per queue. A poll that fails
// leaves the gauges of the queues it could not read at their last values
// and is logged; the next poll tries again. A queue that is no longer
// listed keeps its last values, as observe's series of a thing removed do.
//
// A DepthReporter runs in a loop the caller starts with Run; its
// constructor starts nothing.
type DepthReporter struct {
	in  Inspector
	cfg DepthReporterConfig
	log *slog.Logger

	// gauges are bound as queues appear; only the running Run uses them.
	gauges  map[string]*depthGauges
	running atomic.Bool
}

// depthGauges are the gauges of one queue.
type depthGauges struct {
	ready, scheduled, active, dead, oldest observe.Gauge
}

// NewDepthReporter returns a DepthReporter polling in. A nil Inspector, a
// negative Interval or a bad queue name is an error wrapping
// ErrInvalidConfig.
func NewDepthReporter(in Inspector, cfg DepthReporterConfig) (*DepthReporter, error) {
	if in == nil {
		return nil, fmt.Errorf("%w: depth reporter: nil Inspector", ErrInvalidConfig)
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("%w: depth reporter: negative Interval", ErrInvalidConfig)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultDepthInterval
	}
	for _, name := range cfg.Queues {
		if err := CheckQueue(name); err != nil {
			return nil, fmt.Errorf("depth reporter: %w", err)
		}
	}
	cfg.Queues = slices.Clone(cfg.Queues)
	r := &DepthReporter{in: in, cfg: cfg, log: cfg.Logger, gauges: map[string]*depthGauges{}}
	if r.log == nil {
		r.log = slog.Default()
	}
	return r, nil
}

// Run polls at once, then every Interval, until ctx is done; it returns
// ctx's error. A second Run while one runs returns ErrAlreadyRunning at
// once. Each poll is bounded by Interval, so that a hung backend does not
// stack polls up.
func (r *DepthReporter) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer r.running.Store(false)
	if r.cfg.Meter == nil {
		<-ctx.Done()
		return ctx.Err()
	}
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		r.poll(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// poll reads the counts of the queues and sets their gauges, logging one
// record, with the first error, for the queues it could not read.
func (r *DepthReporter) poll(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.Interval)
	defer cancel()
	names := r.cfg.Queues
	if names == nil {
		var err error
		if names, err = r.in.Queues(pctx); err != nil {
			if ctx.Err() == nil {
				r.log.Warn("queue: depth reporter: listing the queues failed", "err", err)
			}
			return
		}
	}
	var failed []string
	var firstErr error
	for _, name := range names {
		c, err := r.in.Counts(pctx, name)
		if err != nil {
			failed = append(failed, name)
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		g := r.gaugesOf(name)
		g.ready.Set(float64(c.Ready))
		g.scheduled.Set(float64(c.Scheduled))
		g.active.Set(float64(c.Active))
		g.dead.Set(float64(c.Dead))
		g.oldest.Set(c.OldestReady.Seconds())
	}
	if len(failed) > 0 && ctx.Err() == nil {
		r.log.Warn("queue: depth reporter: counting queues failed", "queues", failed, "err", firstErr)
	}
}

// gaugesOf returns the gauges of queue, bound the first time.
func (r *DepthReporter) gaugesOf(queue string) *depthGauges {
	g := r.gauges[queue]
	if g == nil {
		m := r.cfg.Meter
		g = &depthGauges{
			ready:     observe.NewGauge(m, observe.QueueDepth, queue, string(StateReady)),
			scheduled: observe.NewGauge(m, observe.QueueDepth, queue, string(StateScheduled)),
			active:    observe.NewGauge(m, observe.QueueDepth, queue, string(StateActive)),
			dead:      observe.NewGauge(m, observe.QueueDepth, queue, string(StateDead)),
			oldest:    observe.NewGauge(m, observe.QueueOldestAge, queue),
		}
		r.gauges[queue] = g
	}
	return g
}
