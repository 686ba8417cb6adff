package balance

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// An endpoint is a backend as one Update gave it, with the statistics the
// balancer keeps about it. Endpoints are immutable; the statistics are
// shared by every endpoint of the same Addr across Update calls (see
// registry), so in-flight counts and latency averages survive a change of
// the set, and a Choice made before the change reports to the same place.
type endpoint struct {
	Backend
	*stats
	track
}

// track says which statistics a balancer needs; the others cost nothing.
type track struct {
	inflightOn bool
	// total, when not nil, is this backend's stripe of the balancer's
	// running total of requests in flight over all its backends (see
	// registry.totals), so that a pick that needs the total reads a few
	// counters rather than every backend's. Requests to a backend that an
	// Update removed count until they are Done.
	total *atomic.Int64
	// ll, when not nil, is LeastLoaded's index of backends by load, which
	// must follow every change of an in-flight count (see llIndex).
	ll         *llIndex
	latencyOn  bool
	failuresOn bool
	decay      time.Duration // the EWMA's time constant, when latency is tracked
}

// stats are one backend's counters.
type stats struct {
	// inflight counts picks whose Choice is not yet Done.
	inflight atomic.Int64
	// ewmaNanos is an exponentially weighted moving average of request
	// latency in nanoseconds, as float64 bits.
	ewmaNanos atomic.Uint64
	// samples counts latency samples, up to warmupSamples.
	samples atomic.Int64
	// lastSample is the monotonic time of the last sample, which sets the
	// weight of the next one (a decay by elapsed time, not by count).
	lastSample atomic.Int64
	// failures counts consecutive failed requests; a success resets it.
	failures atomic.Int64

	// LeastLoaded's index (see llIndex): whether it holds the backend,
	// and at which index of its set. llSlot is read under the index's lock.
	llOn   atomic.Bool
	llSlot int32

	// Every pick of a load-aware strategy writes some backend's counters
	// while others read them: a cache line (two, with the adjacent-line
	// prefetcher) of its own keeps the writes to one backend from stalling
	// the reads of its neighbours.
	_ [128 - 5*8 - 2*4]byte
}

// begin records the start of a request in *c, the caller's result. A
// timed pick measures the request's latency, when the balancer tracks it.
func (e *endpoint) begin(c *Choice, timed bool) {
	c.ep = e
	if e.inflightOn || timed && e.latencyOn {
		e.beginTracked(c, timed) // kept apart so that begin inlines
	}
}

func (e *endpoint) beginTracked(c *Choice, timed bool) {
	if e.inflightOn {
		e.inflight.Add(1)
		if e.total != nil {
			e.total.Add(1)
		}
		if e.ll != nil && e.llOn.Load() { // inlined: a scanned set pays one load, not a call
			e.ll.resync(e.stats)
		}
	}
	if timed && e.latencyOn {
		c.start, c.timed = nanotime(), true
	}
}

// tracks reports whether Done has anything to record for this endpoint.
func (t *track) tracks() bool { return t.inflightOn || t.latencyOn || t.failuresOn }

// finish records the end of a request.
func (e *endpoint) finish(c *Choice, err error, aborted bool) {
	if e.inflightOn {
		e.inflight.Add(-1)
		if e.total != nil {
			e.total.Add(-1)
		}
		if e.ll != nil && e.llOn.Load() { // inlined: a scanned set pays one load, not a call
			e.ll.resync(e.stats)
		}
	}
	if aborted {
		return // says nothing of the backend: neither a failure nor a latency
	}
	if e.failuresOn {
		if err != nil {
			e.failures.Add(1)
		} else if e.failures.Load() != 0 {
			e.failures.Store(0)
		}
	}
	if c.timed {
		now := nanotime()
		e.observe(float64(now-c.start), now)
	}
}

// warmupSamples is how many first samples a backend's latency is learnt
// from before the average starts decaying by time. While it warms up, a
// balancer does not trust its latency (P2C costs it with its rival's, so
// it keeps getting traffic and samples), and its latency is the fastest of
// its samples so far: noise (a cold connection, the caller descheduled
// between Pick and Done on a loaded machine) only ever adds time, so one
// noisy early sample must not rank a backend, and a backend that really
// is slow is slow in every sample. Once warm, a sample weighs by the time
// since the previous one, which keeps any single sample from carrying the
// average when requests come fast.
const warmupSamples = 8

// observe folds one latency sample taken at now into the moving average.
// The old average's weight decays with the time since the last sample, so
// a backend that was slow a minute ago is not judged by it now.
func (e *endpoint) observe(sample float64, now int64) {
	last := e.lastSample.Swap(now)
	n := e.samples.Load()
	if n < warmupSamples {
		e.samples.Add(1)
	}
	for {
		old := e.ewmaNanos.Load()
		prev, next := math.Float64frombits(old), sample
		switch {
		case n >= warmupSamples:
			w := 1 - math.Exp(-float64(now-last)/float64(e.decay))
			next = prev*(1-w) + sample*w
		case n > 0 && prev > 0: // a concurrent first sample may not be in yet
			next = min(prev, sample)
		}
		if e.ewmaNanos.CompareAndSwap(old, math.Float64bits(next)) {
			return
		}
	}
}

// warm reports whether the backend's latency is known: it has had
// warmupSamples samples.
func (st *stats) warm() bool { return st.samples.Load() >= warmupSamples }

// latency returns the moving average latency in nanoseconds, 0 if unknown.
func (st *stats) latency() float64 {
	return math.Float64frombits(st.ewmaNanos.Load())
}

var processStart = time.Now()

// nanotime returns monotonic nanoseconds since process start: a reading to
// subtract from another, nothing more (inside a testing/synctest bubble it
// is offset, even negative, but differences stay exact).
func nanotime() int64 {
	return int64(time.Since(processStart))
}

// A registry hands out endpoints for backend sets, keeping each Addr's
// stats across sets. It is not safe for concurrent use: balancers call it
// under their update lock, as the last fallible step of Update, since it
// commits the new set's stats.
type registry struct {
	track track
	// totals, when not nil, is the running total of requests in flight
	// that the endpoints' track.total count in, kept for sets of at least
	// runningTotalMin backends only (see there).
	totals *stripedTotal
	stats  map[string]*stats
	byAddr atomic.Pointer[map[string]*endpoint] // the current set, for PickAddr
}

// endpoints validates backends and returns their endpoints, in order.
// Stats of addresses no longer in the set are forgotten (a Choice still
// holding them keeps them alive until Done).
func (r *registry) endpoints(backends []Backend) ([]*endpoint, error) {
	if err := validate(backends); err != nil {
		return nil, err
	}
	next := make(map[string]*stats, len(backends))
	byAddr := make(map[string]*endpoint, len(backends))
	eps := make([]*endpoint, len(backends))
	for i, b := range backends {
		st := r.stats[b.Addr]
		if st == nil {
			st = new(stats)
		}
		next[b.Addr] = st
		eps[i] = &endpoint{Backend: b, stats: st, track: r.track}
		if r.totals != nil && len(backends) >= runningTotalMin {
			eps[i].total = r.totals.cell(i)
		}
		byAddr[b.Addr] = eps[i]
	}
	r.stats = next
	r.byAddr.Store(&byAddr)
	return eps, nil
}

// pickAddr is PickAddr for every strategy built on a registry: the
// backend at addr in the current set, timed when the strategy tracks
// latency.
func (r *registry) pickAddr(ctx context.Context, addr string) (c Choice, err error) {
	if err := ctx.Err(); err != nil {
		return Choice{}, err
	}
	m := r.byAddr.Load()
	if m == nil {
		return Choice{}, ErrNoBackend
	}
	e := (*m)[addr]
	if e == nil {
		return Choice{}, fmt.Errorf("%w: %q is not in the set", ErrNoBackend, addr)
	}
	e.begin(&c, true)
	return c, nil
}
