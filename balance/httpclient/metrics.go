package httpclient

import "github.com/scaleout/scaleout/observe"

// metrics are the Transport's instruments (see package observe), all bound
// at New.
type metrics struct {
	classes [6]observe.Counter // by status/100; [0] is error
	retries observe.Counter
}

func newMetrics(m observe.Meter) *metrics {
	if m == nil {
		return nil
	}
	ms := &metrics{retries: observe.NewCounter(m, observe.HTTPClientRetries)}
	ms.classes[0] = observe.NewCounter(m, observe.HTTPClientRequests, "error")
	for c := 1; c < len(ms.classes); c++ {
		ms.classes[c] = observe.NewCounter(m, observe.HTTPClientRequests, string(rune('0'+c))+"xx")
	}
	return ms
}

// answered counts a request that got a response with status.
func (m *metrics) answered(status int) {
	if m == nil {
		return
	}
	if c := status / 100; c > 0 && c < len(m.classes) {
		m.classes[c].Inc()
	}
}

// failed counts a request that got no response.
func (m *metrics) failed() {
	if m != nil {
		m.classes[0].Inc()
	}
}

func (m *metrics) retried() {
	if m != nil {
		m.retries.Inc()
	}
}
