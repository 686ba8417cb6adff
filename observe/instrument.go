package observe

import (
	"fmt"
	"time"
)

// Counter is a bound counter series as a package holds it: its zero value
// (from a nil Meter) does nothing, so the code measuring needs no test of
// its own. Its methods cost a nil check when off and one call on the
// adapter's series when on; neither allocates.
type Counter struct{ a Adder }

// NewCounter returns d's series for labelValues from m, or a Counter that
// does nothing when m is nil. It panics when d is not a counter or the
// number of label values is not len(d.Labels): both are mistakes in the
// calling code, found by its first test, never by input.
func NewCounter(m Meter, d Desc, labelValues ...string) Counter {
	if m == nil {
		return Counter{}
	}
	check(d, KindCounter, labelValues)
	return Counter{m.Counter(d, labelValues...)}
}

// Add adds n, which must not be negative.
func (c Counter) Add(n int64) {
	if c.a != nil {
		c.a.Add(n)
	}
}

// Inc adds 1.
func (c Counter) Inc() {
	if c.a != nil {
		c.a.Add(1)
	}
}

// Enabled reports whether c reports anywhere, for work done only to
// measure.
func (c Counter) Enabled() bool { return c.a != nil }

// UpDownCounter is a bound series of an amount in use, which goes up and
// down (requests in flight); the zero value does nothing.
type UpDownCounter struct{ a Adder }

// NewUpDownCounter is NewCounter for an up-down counter.
func NewUpDownCounter(m Meter, d Desc, labelValues ...string) UpDownCounter {
	if m == nil {
		return UpDownCounter{}
	}
	check(d, KindUpDownCounter, labelValues)
	return UpDownCounter{m.UpDownCounter(d, labelValues...)}
}

// Add adds n, which may be negative.
func (c UpDownCounter) Add(n int64) {
	if c.a != nil {
		c.a.Add(n)
	}
}

// Enabled reports whether c reports anywhere.
func (c UpDownCounter) Enabled() bool { return c.a != nil }

// Gauge is a bound gauge series; the zero value does nothing.
type Gauge struct{ s Setter }

// NewGauge is NewCounter for a gauge.
func NewGauge(m Meter, d Desc, labelValues ...string) Gauge {
	if m == nil {
		return Gauge{}
	}
	check(d, KindGauge, labelValues)
	return Gauge{m.Gauge(d, labelValues...)}
}

// Set records v as the current value.
func (g Gauge) Set(v float64) {
	if g.s != nil {
		g.s.Set(v)
	}
}

// SetBool records 1 for true and 0 for false, for a state.
func (g Gauge) SetBool(b bool) {
	if g.s != nil {
		v := 0.0
		if b {
			v = 1
		}
		g.s.Set(v)
	}
}

// Enabled reports whether g reports anywhere.
func (g Gauge) Enabled() bool { return g.s != nil }

// Histogram is a bound histogram series; the zero value does nothing.
type Histogram struct{ o Observer }

// NewHistogram is NewCounter for a histogram.
func NewHistogram(m Meter, d Desc, labelValues ...string) Histogram {
	if m == nil {
		return Histogram{}
	}
	check(d, KindHistogram, labelValues)
	return Histogram{m.Histogram(d, labelValues...)}
}

// Observe records v.
func (h Histogram) Observe(v float64) {
	if h.o != nil {
		h.o.Observe(v)
	}
}

// ObserveDuration records d in seconds, the unit of every duration
// histogram of the library.
func (h Histogram) ObserveDuration(d time.Duration) {
	if h.o != nil {
		h.o.Observe(d.Seconds())
	}
}

// Enabled reports whether h reports anywhere: a caller that reads the clock
// only to measure skips it when not.
func (h Histogram) Enabled() bool { return h.o != nil }

func check(d Desc, k Kind, labelValues []string) {
	if d.Kind != k {
		panic(fmt.Sprintf("observe: %s is a %v, not a %v", d.Name, d.Kind, k))
	}
	if len(labelValues) != len(d.Labels) {
		panic(fmt.Sprintf("observe: %s has labels %q, given %d values", d.Name, d.Labels, len(labelValues)))
	}
}
