package observe

// A Kind is the type of instrument a metric is measured with.
type Kind uint8

// The kinds of instrument, one per method of Meter.
const (
	KindCounter Kind = iota + 1
	KindUpDownCounter
	KindGauge
	KindHistogram
)

// String returns the kind's name as in the package documentation's table.
func (k Kind) String() string {
	switch k {
	case KindCounter:
		return "counter"
	case KindUpDownCounter:
		return "updowncounter"
	case KindGauge:
		return "gauge"
	case KindHistogram:
		return "histogram"
	}
	return "unknown"
}

// A Desc describes one metric: its name, unit and labels. The names follow
// OpenTelemetry's conventions (dotted, lower case, the unit kept out of the
// name, no _total); adapters for systems with other rules translate them
// (promobserve: scaleout.balance.picks, a counter, becomes
// scaleout_balance_picks_total; scaleout.balance.duration in s becomes
// scaleout_balance_duration_seconds).
type Desc struct {
	// Name is dotted: scaleout.<package>.<what>.
	Name string
	// Kind is the instrument the metric is measured with.
	Kind Kind
	// Unit is UCUM as OpenTelemetry uses it: "s" for seconds, "By" for
	// bytes, or an annotation in braces ("{pick}") for a count of things.
	Unit string
	// Description is one sentence for the metric's help text.
	Description string
	// Labels are the names of the labels (OpenTelemetry attributes) whose
	// values an instrument binds when it is made; nil for none.
	Labels []string
	// Buckets are a histogram's suggested bucket boundaries, in Unit;
	// nil means DurationBuckets for seconds.
	Buckets []float64
}

// DurationBuckets are the default boundaries of histograms in seconds, from
// half a millisecond (a cache load on a local network) to ten seconds (a
// slow upstream request).
var DurationBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// BucketsOf returns d's bucket boundaries: d.Buckets, or DurationBuckets.
func (d Desc) BucketsOf() []float64 {
	if d.Buckets != nil {
		return d.Buckets
	}
	return DurationBuckets
}
