package admin

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/scaleout/scaleout/observe"
)

// Run samples the registered sources every Config.Interval, keeping the
// last Config.Window of points for the charts and the rates the panels
// show, until ctx ends; then it returns ctx.Err(). It takes a first
// sample at once. Without Run the page shows current figures (depths,
// totals, gauges, leaders) but no charts and no rates. A second Run while
// one runs returns ErrAlreadyRunning at once. Run starts no goroutine:
// sampling is done on the caller's.
func (h *Handler) Run(ctx context.Context) error {
	if !h.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer h.running.Store(false)
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		h.sample(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// sample reads the sources and records a point of every series; a source
// that hangs is given up on after an Interval.
func (h *Handler) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Interval)
	defer cancel()
	rd := h.read(ctx, false)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.record(&rd)
}

// Keys of the series a sample records: the kind of panel, the source's
// name, what is measured in it, and the figure.
func seriesKey(parts ...string) string         { return strings.Join(parts, "\x00") }
func queueKey(store, q, fig string) string     { return seriesKey("queue", store, q, fig) }
func cacheKey(m, fig string) string            { return seriesKey("cache", m, fig) }
func backendKey(m, backend, fig string) string { return seriesKey("balance", m, backend, fig) }
func nodeKey(m, node, fig string) string       { return seriesKey("replica", m, node, fig) }

// Metrics of package queue the panels read (their Descs are queue's).
const (
	queueHandlerDuration = "scaleout.queue.handler.duration"
	queueFailed          = "scaleout.queue.failed"
)

// record adds the points of reading rd, under h.mu.
func (h *Handler) record(rd *reading) {
	hs := &h.hist
	dt := math.NaN()
	if !hs.last.IsZero() {
		dt = rd.at.Sub(hs.last).Seconds()
	}
	hs.last = rd.at
	// A running total first seen counts from 0 if its source was read by
	// the last sample too.
	was := hs.sources
	hs.sources = make(map[string]bool, len(was))
	for _, s := range rd.stores {
		hs.sources["queue\x00"+s] = true
	}
	for _, m := range rd.meters {
		hs.sources["meter\x00"+m.name] = true
	}
	// rate is the growth of a running total per second since the last
	// sample; mean is the mean of a histogram's observations since then.
	rate := func(seen bool, key string, total float64) float64 {
		d, ok := hs.delta(key, total, seen)
		if !ok || !(dt > 0) {
			return math.NaN()
		}
		return d / dt
	}
	mean := func(seen bool, key string, sum float64, count int64) float64 {
		ds, ok1 := hs.delta(key+"\x00sum", sum, seen)
		dc, ok2 := hs.delta(key+"\x00count", float64(count), seen)
		if !ok1 || !ok2 || dc == 0 {
			return math.NaN()
		}
		return ds / dc
	}

	for _, q := range rd.queues {
		c, m := q.counts, rd.meter(q.store)
		storeSeen, meterSeen := was["queue\x00"+q.store], was["meter\x00"+q.store]
		key := func(fig string) string { return queueKey(q.store, c.Queue, fig) }
		hs.add(key("depth"), rd.at, float64(c.Pending()))
		hs.add(key("throughput"), rd.at, rate(storeSeen, key("done"), float64(c.DoneTotal)))
		sum, n, _ := m.sum(queueHandlerDuration, "queue", c.Queue)
		hs.add(key("latency"), rd.at, mean(meterSeen, key("latency"), sum, n))
		failures := math.NaN()
		if failed, _, ok := m.sum(queueFailed, "queue", c.Queue); ok {
			failures = rate(meterSeen, key("failed"), failed)
		}
		hs.add(key("failures"), rd.at, failures)
	}
	for _, m := range rd.meters {
		seen := was["meter\x00"+m.name]
		if m.has("cache") {
			key := func(fig string) string { return cacheKey(m.name, fig) }
			hits, _, _ := m.sum(observe.CacheHits.Name)
			misses, _, _ := m.sum(observe.CacheMisses.Name)
			dh, ok1 := hs.delta(key("hits"), hits, seen)
			dm, ok2 := hs.delta(key("misses"), misses, seen)
			ratio := math.NaN()
			if ok1 && ok2 && dh+dm > 0 {
				ratio = dh / (dh + dm)
			}
			hs.add(key("hit_ratio"), rd.at, ratio)
			loads, _, _ := m.sum(observe.CacheLoads.Name)
			hs.add(key("loads"), rd.at, rate(seen, key("loads_total"), loads))
			sum, n, _ := m.sum(observe.CacheLoadDuration.Name)
			hs.add(key("load_latency"), rd.at, mean(seen, key("load_latency"), sum, n))
		}
		if m.has("balance") {
			for _, b := range backends(m) {
				key := func(fig string) string { return backendKey(m.name, b, fig) }
				picks, _, _ := m.sum(observe.BalancePicks.Name, "backend", b)
				hs.add(key("rate"), rd.at, rate(seen, key("picks"), picks))
				sum, n, _ := m.sum(observe.BalanceDuration.Name, "backend", b)
				hs.add(key("latency"), rd.at, mean(seen, key("latency"), sum, n))
			}
		}
		if m.has("replica") {
			for _, node := range nodes(m) {
				lag, _, ok := m.sum(observe.ReplicaLag.Name, "node", node)
				if !ok {
					lag = math.NaN()
				}
				hs.add(nodeKey(m.name, node, "lag"), rd.at, lag)
			}
		}
	}
	// Totals not seen now are of series gone: forget them.
	hs.totals, hs.next = hs.next, make(map[string]float64, len(hs.next))
	h.noteLeaders(rd)
	hs.forget(rd.at.Add(-h.cfg.Window))
}

// noteLeaders notes when each election's leader changed, under h.mu.
func (h *Handler) noteLeaders(rd *reading) {
	for _, e := range rd.elections {
		if e.err != nil {
			continue
		}
		s := e.src
		if !s.known || s.seen != e.leader {
			if s.known {
				s.changed = true
			}
			s.seen, s.since, s.known = e.leader, rd.at, true
		}
	}
}

// backends returns the backends a balancer Meter reported, by address.
func backends(m meterReading) []string {
	return m.labelValues("backend", observe.BalancePicks.Name, observe.BalanceInFlight.Name,
		observe.BalanceHealthy.Name, observe.BalanceDuration.Name)
}

// nodes returns the nodes a replica router's Meter reported, by name.
func nodes(m meterReading) []string {
	return m.labelValues("node", observe.ReplicaPrimary.Name, observe.ReplicaServing.Name,
		observe.ReplicaLag.Name, observe.ReplicaReads.Name, observe.ReplicaWrites.Name)
}
