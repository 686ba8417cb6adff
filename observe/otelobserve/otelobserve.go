// Package otelobserve reports scaleout's metrics through OpenTelemetry: a
// Meter (package observe) whose instruments are those of an
// OpenTelemetry metric.Meter, named, unit and description as in
// observe's table (scaleout.balance.picks, unit {pick}).
//
// Each metric is one OpenTelemetry instrument, made the first time a
// package binds it; an observe instrument is that instrument with its
// attribute set computed once (the metric's labels, plus the constant
// attributes of WithAttributes) and passed with every call as a
// pre-built option slice, which is how the OpenTelemetry API avoids an
// allocation per measurement. Counters and up-down counters are Int64,
// gauges Float64Gauge, histograms Float64Histogram with the metric's
// bucket boundaries. Measurements carry context.Background(): the hot
// paths of the library (a pick, a cache hit) have no context to give, so
// exemplars are not linked to traces.
//
// # Traces across the job queue
//
// A job runs later and often elsewhere than the request that enqueued it;
// its trace goes with it in Job.Headers. InjectJob, called before
// Enqueue, writes the caller's trace context there (W3C traceparent and
// tracestate through the configured propagator), and JobMiddleware, in
// the Worker's Middleware, reads it back and runs each delivery in a
// consumer span, a child of the enqueuing span, with the job's queue,
// type and attempt, and the handler's error recorded. Both use the
// global tracer provider and propagator unless given others
// (WithTracerProvider, WithPropagator); the global propagator carries
// nothing until the program sets one. See ExampleJobMiddleware.
package otelobserve

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/scaleout/scaleout/observe"
)

// ScopeName is the instrumentation scope of the Meter New takes from a
// MeterProvider.
const ScopeName = "github.com/scaleout/scaleout"

// Meter is an observe.Meter on an OpenTelemetry metric.Meter. It is safe
// for concurrent use.
type Meter struct {
	m     metric.Meter
	attrs []attribute.KeyValue

	mu    sync.Mutex
	insts map[string]any // by metric name
	errs  []error
}

var _ observe.Meter = (*Meter)(nil)

// An Option configures New.
type Option func(*Meter)

// WithAttributes adds attributes to every measurement of the Meter, to
// tell instances apart (attribute.String("balancer", "front")).
func WithAttributes(kv ...attribute.KeyValue) Option {
	return func(m *Meter) { m.attrs = append(m.attrs, kv...) }
}

// New returns a Meter on mp's Meter of scope ScopeName.
func New(mp metric.MeterProvider, opts ...Option) *Meter {
	m := &Meter{m: mp.Meter(ScopeName), insts: map[string]any{}}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Err returns the errors making instruments met, joined, or nil.
func (m *Meter) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return errors.Join(m.errs...)
}

// inst returns d's instrument, made by mk on first use.
func (m *Meter) inst(d observe.Desc, mk func() (any, error)) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	if in, ok := m.insts[d.Name]; ok {
		return in
	}
	in, err := mk()
	if err != nil {
		m.errs = append(m.errs, err)
	}
	m.insts[d.Name] = in
	return in
}

// set returns the attribute set of one series.
func (m *Meter) set(d observe.Desc, labelValues []string) attribute.Set {
	kv := append([]attribute.KeyValue(nil), m.attrs...)
	for i, name := range d.Labels {
		kv = append(kv, attribute.String(name, labelValues[i]))
	}
	return attribute.NewSet(kv...)
}

// Counter implements observe.Meter with an Int64Counter.
func (m *Meter) Counter(d observe.Desc, labelValues ...string) observe.Adder {
	c := m.inst(d, func() (any, error) {
		return m.m.Int64Counter(d.Name, metric.WithUnit(d.Unit), metric.WithDescription(d.Description))
	}).(metric.Int64Counter)
	return adder{c, []metric.AddOption{metric.WithAttributeSet(m.set(d, labelValues))}}
}

// UpDownCounter implements observe.Meter with an Int64UpDownCounter.
func (m *Meter) UpDownCounter(d observe.Desc, labelValues ...string) observe.Adder {
	c := m.inst(d, func() (any, error) {
		return m.m.Int64UpDownCounter(d.Name, metric.WithUnit(d.Unit), metric.WithDescription(d.Description))
	}).(metric.Int64UpDownCounter)
	return adder{c, []metric.AddOption{metric.WithAttributeSet(m.set(d, labelValues))}}
}

// Gauge implements observe.Meter with a Float64Gauge.
func (m *Meter) Gauge(d observe.Desc, labelValues ...string) observe.Setter {
	g := m.inst(d, func() (any, error) {
		return m.m.Float64Gauge(d.Name, metric.WithUnit(d.Unit), metric.WithDescription(d.Description))
	}).(metric.Float64Gauge)
	return recorder{g, []metric.RecordOption{metric.WithAttributeSet(m.set(d, labelValues))}}
}

// Histogram implements observe.Meter with a Float64Histogram whose bucket
// boundaries are d's.
func (m *Meter) Histogram(d observe.Desc, labelValues ...string) observe.Observer {
	h := m.inst(d, func() (any, error) {
		return m.m.Float64Histogram(d.Name, metric.WithUnit(d.Unit), metric.WithDescription(d.Description),
			metric.WithExplicitBucketBoundaries(d.BucketsOf()...))
	}).(metric.Float64Histogram)
	return recorder{h, []metric.RecordOption{metric.WithAttributeSet(m.set(d, labelValues))}}
}

// int64Adder is what Int64Counter and Int64UpDownCounter have in common.
type int64Adder interface {
	Add(ctx context.Context, n int64, opts ...metric.AddOption)
}

type adder struct {
	c    int64Adder
	opts []metric.AddOption
}

func (a adder) Add(n int64) { a.c.Add(context.Background(), n, a.opts...) }

// float64Recorder is what Float64Gauge and Float64Histogram have in common.
type float64Recorder interface {
	Record(ctx context.Context, v float64, opts ...metric.RecordOption)
}

type recorder struct {
	r    float64Recorder
	opts []metric.RecordOption
}

func (r recorder) Set(v float64)     { r.r.Record(context.Background(), v, r.opts...) }
func (r recorder) Observe(v float64) { r.r.Record(context.Background(), v, r.opts...) }
