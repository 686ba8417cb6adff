package observe

import (
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Recorder is a Meter that keeps every series in memory: a fake for a
// service's tests ("after this workload, three picks of backend a"), and a
// source of figures for a page that shows them. Its instruments are atomic
// and do not allocate. The zero value is not usable; call NewRecorder.
type Recorder struct {
	mu     sync.Mutex
	series map[string]*series // by name and label values
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{series: make(map[string]*series)}
}

// A Series is one series of a Recorder at the time of Recorder.Series.
type Series struct {
	Desc Desc
	// Labels are the series' label values by name.
	Labels map[string]string
	// Value is a counter's sum, a gauge's last value or a histogram's
	// sum of observations.
	Value float64
	// Count is how many times the series was added to, set or observed.
	Count int64
}

type series struct {
	desc   Desc
	values []string
	n      atomic.Int64  // counter sum
	bits   atomic.Uint64 // gauge value or histogram sum, as math.Float64bits
	count  atomic.Int64
}

func (s *series) Add(n int64) {
	s.n.Add(n)
	s.count.Add(1)
}

func (s *series) Set(v float64) {
	s.bits.Store(math.Float64bits(v))
	s.count.Add(1)
}

func (s *series) Observe(v float64) {
	for {
		old := s.bits.Load()
		if s.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			break
		}
	}
	s.count.Add(1)
}

func (s *series) value() float64 {
	switch s.desc.Kind {
	case KindCounter, KindUpDownCounter:
		return float64(s.n.Load())
	}
	return math.Float64frombits(s.bits.Load())
}

func (r *Recorder) get(d Desc, values []string) *series {
	key := d.Name + "\x00" + strings.Join(values, "\x00")
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.series[key]
	if !ok {
		s = &series{desc: d, values: slices.Clone(values)}
		r.series[key] = s
	}
	return s
}

// Counter implements Meter.
func (r *Recorder) Counter(d Desc, labelValues ...string) Adder { return r.get(d, labelValues) }

// UpDownCounter implements Meter.
func (r *Recorder) UpDownCounter(d Desc, labelValues ...string) Adder { return r.get(d, labelValues) }

// Gauge implements Meter.
func (r *Recorder) Gauge(d Desc, labelValues ...string) Setter { return r.get(d, labelValues) }

// Histogram implements Meter.
func (r *Recorder) Histogram(d Desc, labelValues ...string) Observer { return r.get(d, labelValues) }

// Value returns the sum of the values of the series of metric name whose
// labels match labels, given as name, value pairs: labels left out match
// any value. For a counter it is the count, for a histogram the sum of its
// observations, for gauges the sum of their last values. A metric nobody
// reported has 0.
func (r *Recorder) Value(name string, labels ...string) float64 {
	var v float64
	r.each(name, labels, func(s *series) { v += s.value() })
	return v
}

// Count returns how many times the matching series (as for Value) were
// added to, set or observed: for a histogram, its number of observations.
func (r *Recorder) Count(name string, labels ...string) int64 {
	var n int64
	r.each(name, labels, func(s *series) { n += s.count.Load() })
	return n
}

// Series returns every series, sorted by name and label values.
func (r *Recorder) Series() []Series {
	var out []Series
	r.each("", nil, func(s *series) {
		labels := make(map[string]string, len(s.values))
		for i, v := range s.values {
			labels[s.desc.Labels[i]] = v
		}
		out = append(out, Series{Desc: s.desc, Labels: labels, Value: s.value(), Count: s.count.Load()})
	})
	return out
}

// each calls f on the series of name (all for "") matching labels, in
// order of name and label values.
func (r *Recorder) each(name string, labels []string, f func(*series)) {
	r.mu.Lock()
	keys := make([]string, 0, len(r.series))
	for k := range r.series {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	matched := make([]*series, 0, len(keys))
	for _, k := range keys {
		s := r.series[k]
		if (name == "" || s.desc.Name == name) && s.matches(labels) {
			matched = append(matched, s)
		}
	}
	r.mu.Unlock()
	for _, s := range matched {
		f(s)
	}
}

func (s *series) matches(labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		k := slices.Index(s.desc.Labels, labels[i])
		if k < 0 || s.values[k] != labels[i+1] {
			return false
		}
	}
	return true
}
