// Package promobserve reports scaleout's metrics to Prometheus: a Meter
// (package observe) whose instruments are client_golang collectors
// registered on a prometheus.Registerer, under the names of observe's
// table (observe.PrometheusName: scaleout.balance.picks becomes
// scaleout_balance_picks_total).
//
// Each metric is one vector (CounterVec, GaugeVec, HistogramVec) with the
// metric's labels, registered the first time a package binds it; an
// instrument is the vector's child for its label values, taken once with
// WithLabelValues, so that the hot path is the child's Inc, Add, Set or
// Observe: an atomic operation, no allocation.
//
// Up-down counters are gauges in Prometheus. Two Meters on one registry
// share a metric's vector when their constant labels are equal (their
// series then add up), and keep apart when they differ: give each
// instance to tell apart a Meter with WithConstLabels.
package promobserve

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleout/scaleout/observe"
)

// Meter is an observe.Meter on a Prometheus registry. It is safe for
// concurrent use.
type Meter struct {
	reg         prometheus.Registerer
	constLabels prometheus.Labels

	mu   sync.Mutex
	vecs map[string]prometheus.Collector // by metric name
	errs []error
}

var _ observe.Meter = (*Meter)(nil)

// An Option configures New.
type Option func(*Meter)

// WithConstLabels adds labels with fixed values to every metric of the
// Meter, to tell instances apart (balancer="front").
func WithConstLabels(l prometheus.Labels) Option {
	return func(m *Meter) { m.constLabels = l }
}

// New returns a Meter registering its collectors on reg
// (prometheus.DefaultRegisterer when nil).
func New(reg prometheus.Registerer, opts ...Option) *Meter {
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	m := &Meter{reg: reg, vecs: map[string]prometheus.Collector{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Err returns the errors registering collectors met, joined, or nil: a
// metric whose labels conflict with a collector already on the registry
// is still counted but not exported. Check it after building the
// instrumented types.
func (m *Meter) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return errors.Join(m.errs...)
}

// vec returns the registered vector of d, made by mk on first use.
func (m *Meter) vec(d observe.Desc, mk func() prometheus.Collector) prometheus.Collector {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.vecs[d.Name]; ok {
		return v
	}
	v := mk()
	if err := m.reg.Register(v); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			v = are.ExistingCollector // another Meter with the same constant labels
		} else {
			m.errs = append(m.errs, err)
		}
	}
	m.vecs[d.Name] = v
	return v
}

func (m *Meter) opts(d observe.Desc) prometheus.Opts {
	return prometheus.Opts{Name: observe.PrometheusName(d), Help: d.Description, ConstLabels: m.constLabels}
}

// Counter implements observe.Meter with a CounterVec's child.
func (m *Meter) Counter(d observe.Desc, labelValues ...string) observe.Adder {
	v := m.vec(d, func() prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts(m.opts(d)), d.Labels)
	}).(*prometheus.CounterVec)
	return counter{v.WithLabelValues(labelValues...)}
}

// UpDownCounter implements observe.Meter with a GaugeVec's child.
func (m *Meter) UpDownCounter(d observe.Desc, labelValues ...string) observe.Adder {
	return gauge{m.gaugeVec(d).WithLabelValues(labelValues...)}
}

// Gauge implements observe.Meter with a GaugeVec's child.
func (m *Meter) Gauge(d observe.Desc, labelValues ...string) observe.Setter {
	return gauge{m.gaugeVec(d).WithLabelValues(labelValues...)}
}

func (m *Meter) gaugeVec(d observe.Desc) *prometheus.GaugeVec {
	return m.vec(d, func() prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts(m.opts(d)), d.Labels)
	}).(*prometheus.GaugeVec)
}

// Histogram implements observe.Meter with a HistogramVec's child, with
// d's buckets.
func (m *Meter) Histogram(d observe.Desc, labelValues ...string) observe.Observer {
	v := m.vec(d, func() prometheus.Collector {
		o := m.opts(d)
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: o.Name, Help: o.Help, ConstLabels: o.ConstLabels, Buckets: d.BucketsOf(),
		}, d.Labels)
	}).(*prometheus.HistogramVec)
	return v.WithLabelValues(labelValues...)
}

type counter struct{ c prometheus.Counter }

func (c counter) Add(n int64) { c.c.Add(float64(n)) }

type gauge struct{ g prometheus.Gauge }

func (g gauge) Add(n int64)   { g.g.Add(float64(n)) }
func (g gauge) Set(v float64) { g.g.Set(v) }
