package httpproxy

import (
	"sync"
	"time"

	"github.com/scaleout/scaleout/observe"
)

// metrics are the Proxy's instruments (see package observe). The status
// classes are bound at New; a backend's latency histogram when the proxy
// first sends it a request, since backends come and go with the balancer's
// set: later requests find it in a sync.Map, without allocating.
type metrics struct {
	meter    observe.Meter
	classes  [6]observe.Counter // by status/100; [0] unused
	retries  observe.Counter
	upstream sync.Map // backend address -> observe.Histogram
}

func newMetrics(m observe.Meter) *metrics {
	if m == nil {
		return nil
	}
	ms := &metrics{meter: m, retries: observe.NewCounter(m, observe.HTTPProxyRetries)}
	for c := 1; c < len(ms.classes); c++ {
		ms.classes[c] = observe.NewCounter(m, observe.HTTPProxyRequests, string(rune('0'+c))+"xx")
	}
	return ms
}

// answered counts a request the proxy answered with status.
func (m *metrics) answered(status int) {
	if m == nil {
		return
	}
	if c := status / 100; c > 0 && c < len(m.classes) {
		m.classes[c].Inc()
	}
}

func (m *metrics) retried() {
	if m != nil {
		m.retries.Inc()
	}
}

// upstreamSince records the time to a response header from addr.
func (m *metrics) upstreamSince(addr string, start time.Time) {
	if m == nil {
		return
	}
	h, ok := m.upstream.Load(addr)
	if !ok {
		h, _ = m.upstream.LoadOrStore(addr, observe.NewHistogram(m.meter, observe.HTTPProxyUpstreamDuration, addr))
	}
	h.(observe.Histogram).ObserveDuration(time.Since(start))
}
