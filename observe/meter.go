package observe

// A Meter makes the instruments a package reports through. Adapters
// implement it (observe/otelobserve for OpenTelemetry, observe/promobserve
// for Prometheus) and so does Recorder, the in-memory one for tests and
// small dashboards. A package takes a Meter in its Config, nil meaning no
// instrumentation, and makes every instrument it will ever use once, when it
// is built or when the thing measured appears (a backend added to a
// balancer, a node to a replica router), never on a hot path.
//
// Each method returns the instrument of one series: d names the metric and
// labelValues gives, in the order of d.Labels, the value of each of its
// labels, bound for the instrument's life. A Meter must be safe for
// concurrent use, may return the same series for equal names and label
// values (two balancers picking the same backend then add to one counter),
// and its instruments' methods must be safe for concurrent use and should
// not allocate: they run on every pick, every cache hit. Callers never pass
// a number of label values other than len(d.Labels) (the New functions of
// this package check it).
//
// Instances are told apart by the Meter, not by the metric: to see two
// balancers apart, give each a Meter of its own with constant labels (the
// adapters' option), rather than a label every package would have to carry.
type Meter interface {
	// Counter returns a monotonic counter: Add is called with n >= 0.
	Counter(d Desc, labelValues ...string) Adder
	// UpDownCounter returns a counter Add may lower, for amounts in
	// use (requests in flight).
	UpDownCounter(d Desc, labelValues ...string) Adder
	// Gauge returns a gauge whose last Set value is current (a lag, a
	// term number, 1 or 0 for a state).
	Gauge(d Desc, labelValues ...string) Setter
	// Histogram returns a distribution of observed values (latencies in
	// seconds); d.Buckets suggests its boundaries.
	Histogram(d Desc, labelValues ...string) Observer
}

// An Adder is a counter's series; Add must not allocate.
type Adder interface{ Add(n int64) }

// A Setter is a gauge's series; Set must not allocate.
type Setter interface{ Set(v float64) }

// An Observer is a histogram's series; Observe must not allocate.
type Observer interface{ Observe(v float64) }
