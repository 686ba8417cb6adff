package otelobserve

import (
	"context"
	"fmt"
	"maps"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/scaleout/scaleout/queue"
)

// Attributes of the span JobMiddleware starts for a job, beside
// OpenTelemetry's messaging conventions (messaging.system "scaleout",
// messaging.operation.name and .type "process",
// messaging.destination.name the queue, messaging.message.id the job's
// ID).
const (
	// JobTypeKey is the job's Type.
	JobTypeKey = attribute.Key("scaleout.queue.job.type")
	// JobAttemptKey is the delivery's Attempt, 1 on the first.
	JobAttemptKey = attribute.Key("scaleout.queue.job.attempt")
)

// A TraceOption configures InjectJob and JobMiddleware.
type TraceOption func(*traceConfig)

type traceConfig struct {
	tp   trace.TracerProvider
	prop propagation.TextMapPropagator
}

// WithTracerProvider makes JobMiddleware start its spans with a Tracer
// of tp, instead of the global provider (otel.GetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) TraceOption {
	return func(c *traceConfig) { c.tp = tp }
}

// WithPropagator makes InjectJob and JobMiddleware write and read the trace
// context with p, instead of the global propagator
// (otel.GetTextMapPropagator), which propagates nothing until the program
// sets one (otel.SetTextMapPropagator(propagation.TraceContext{})).
func WithPropagator(p propagation.TextMapPropagator) TraceOption {
	return func(c *traceConfig) { c.prop = p }
}

func newTraceConfig(opts []TraceOption) traceConfig {
	var c traceConfig
	c.apply(opts)
	return c
}

// apply sets c by opts, then the globals where they set nothing.
func (c *traceConfig) apply(opts []TraceOption) {
	for _, o := range opts {
		o(c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.prop == nil {
		c.prop = otel.GetTextMapPropagator()
	}
}

// InjectJob writes the trace context of ctx (with the W3C propagator,
// traceparent and tracestate, and baggage if the propagator carries it)
// into j.Headers, for JobMiddleware to continue the trace in whichever
// process runs the job. Call it before Enqueue, with the context of the
// request that enqueues. It writes into a copy of j.Headers, never into
// the map the caller gave (which other jobs may share), and leaves
// j.Headers as it was when ctx carries nothing to propagate.
func InjectJob(ctx context.Context, j *queue.Job, opts ...TraceOption) {
	// One allocation for both: the options need the config on the heap,
	// and so does the propagator the carrier.
	in := &struct {
		traceConfig
		headerCarrier
	}{headerCarrier: headerCarrier{base: j.Headers}}
	in.apply(opts)
	in.prop.Inject(ctx, &in.headerCarrier)
	if in.h != nil {
		j.Headers = in.h
	}
}

// headerCarrier is the propagation.TextMapCarrier InjectJob writes
// through: the job's headers, copied at the first Set into one map sized
// for them and what the propagator adds (traceparent, tracestate), and not
// at all when it sets nothing.
type headerCarrier struct {
	base, h map[string]string // h is the copy, nil until a Set
}

func (c *headerCarrier) Get(key string) string {
	if c.h != nil {
		return c.h[key]
	}
	return c.base[key]
}

func (c *headerCarrier) Set(key, value string) {
	if c.h == nil {
		c.h = make(map[string]string, len(c.base)+2)
		maps.Copy(c.h, c.base)
	}
	c.h[key] = value
}

func (c *headerCarrier) Keys() []string {
	if c.h != nil {
		return propagation.MapCarrier(c.h).Keys()
	}
	return propagation.MapCarrier(c.base).Keys()
}

// JobMiddleware returns a queue.Middleware (WorkerConfig.Middleware) that
// continues the trace InjectJob put in a job's headers: each delivery runs
// in a span of kind consumer named "process <queue>", a child of the span
// that enqueued the job (a root span when the job carries no trace
// context), with the attributes above. The handler's context carries the
// span, so the spans the handler starts are its children. An error the
// handler returns is recorded on the span, which then has status Error; so
// is a panic, which goes on to the Worker's recovery as it came. Put it
// first in the Middleware, so that the others run inside the span.
func JobMiddleware(opts ...TraceOption) queue.Middleware {
	c := newTraceConfig(opts)
	tracer := c.tp.Tracer(ScopeName)
	prop := c.prop
	var spans queueSpans
	return func(next queue.Handler) queue.Handler {
		return queue.HandlerFunc(func(ctx context.Context, d *queue.Delivery) (err error) {
			ctx = prop.Extract(ctx, propagation.MapCarrier(d.Job.Headers))
			qs := spans.of(d.Job.Queue)
			ctx, span := tracer.Start(ctx, qs.name, qs.kind, trace.WithAttributes(
				qs.system, qs.operationName, qs.operationType, qs.destination,
				attribute.String("messaging.message.id", string(d.ID)),
				JobTypeKey.String(d.Job.Type),
				JobAttemptKey.Int(d.Attempt),
			))
			defer func() {
				if v := recover(); v != nil {
					perr := fmt.Errorf("handler panicked: %v", v)
					span.RecordError(perr)
					span.SetStatus(codes.Error, perr.Error())
					span.End()
					panic(v)
				}
				if err != nil {
					span.RecordError(err)
					span.SetStatus(codes.Error, err.Error())
				}
				span.End()
			}()
			return next.Process(ctx, d)
		})
	}
}
