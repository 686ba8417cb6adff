package otelobserve

import (
	"maps"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// queueSpan is what JobMiddleware's spans for the jobs of one queue have in
// common, made once per queue instead of once per job: the span's name,
// its kind as a start option, and the attributes that do not change from
// job to job.
type queueSpan struct {
	name                                              string
	kind                                              trace.SpanStartOption
	system, operationName, operationType, destination attribute.KeyValue
}

func newQueueSpan(queue string) *queueSpan {
	return &queueSpan{
		name:          "process " + queue,
		kind:          trace.WithSpanKind(trace.SpanKindConsumer),
		system:        attribute.String("messaging.system", "scaleout"),
		operationName: attribute.String("messaging.operation.name", "process"),
		operationType: attribute.String("messaging.operation.type", "process"),
		destination:   attribute.String("messaging.destination.name", queue),
	}
}

// maxQueueSpans bounds the queues a queueSpans remembers: a Worker takes
// jobs from the few queues of its config, but a middleware could be given
// deliveries from anywhere, and the others are made per job.
const maxQueueSpans = 64

// queueSpans are the queueSpan of each queue seen, read without a lock on
// every job (a map replaced whole when a queue is added, which happens
// once per queue).
type queueSpans struct {
	m  atomic.Pointer[map[string]*queueSpan]
	mu sync.Mutex // serializes additions
}

func (s *queueSpans) of(queue string) *queueSpan {
	if m := s.m.Load(); m != nil {
		if qs, ok := (*m)[queue]; ok {
			return qs
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.m.Load()
	if old != nil {
		if qs, ok := (*old)[queue]; ok {
			return qs
		}
		if len(*old) >= maxQueueSpans {
			return newQueueSpan(queue)
		}
	}
	qs := newQueueSpan(queue)
	m := map[string]*queueSpan{}
	if old != nil {
		m = maps.Clone(*old)
	}
	m[queue] = qs
	s.m.Store(&m)
	return qs
}
