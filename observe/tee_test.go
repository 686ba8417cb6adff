package observe_test

import (
	"fmt"
	"testing"

	"github.com/scaleout/scaleout/observe"
)

// TestTee checks that every instrument of a Tee reports to each meter, and
// that Tee keeps off what is off.
func TestTee(t *testing.T) {
	a, b := observe.NewRecorder(), observe.NewRecorder()
	m := observe.Tee(a, nil, b)
	picks := observe.NewCounter(m, observe.BalancePicks, "x")
	inFlight := observe.NewUpDownCounter(m, observe.BalanceInFlight, "x")
	lag := observe.NewGauge(m, observe.ReplicaLag, "n1")
	dur := observe.NewHistogram(m, observe.BalanceDuration, "x")
	picks.Add(3)
	inFlight.Add(2)
	inFlight.Add(-1)
	lag.Set(0.25)
	dur.Observe(0.5)
	dur.Observe(1.5)
	for name, r := range map[string]*observe.Recorder{"a": a, "b": b} {
		if got := r.Value("scaleout.balance.picks", "backend", "x"); got != 3 {
			t.Errorf("%s: picks %v, want 3", name, got)
		}
		if got := r.Value("scaleout.balance.in_flight"); got != 1 {
			t.Errorf("%s: in flight %v, want 1", name, got)
		}
		if got := r.Value("scaleout.replica.lag", "node", "n1"); got != 0.25 {
			t.Errorf("%s: lag %v, want 0.25", name, got)
		}
		if n, sum := r.Count("scaleout.balance.duration"), r.Value("scaleout.balance.duration"); n != 2 || sum != 2 {
			t.Errorf("%s: duration count %d sum %v, want 2 and 2", name, n, sum)
		}
	}

	if m := observe.Tee(nil, nil); m != nil {
		t.Errorf("Tee of nil meters = %v, want nil (metrics off)", m)
	}
	if m := observe.Tee(nil, a); m != observe.Meter(a) {
		t.Errorf("Tee of one meter = %T, want that meter", m)
	}

	allocs := testing.AllocsPerRun(100, func() {
		picks.Inc()
		inFlight.Add(1)
		lag.Set(1)
		dur.Observe(0.1)
	})
	if allocs != 0 {
		t.Errorf("a Tee's instruments allocate %v times per call, want 0", allocs)
	}
}

// One Meter for two destinations: a page that shows the figures (package
// admin) and a metrics system.
func ExampleTee() {
	page, system := observe.NewRecorder(), observe.NewRecorder()
	m := observe.Tee(page, system)
	picks := observe.NewCounter(m, observe.BalancePicks, "10.0.0.1:8080")
	picks.Add(2)
	fmt.Println(page.Value("scaleout.balance.picks"), system.Value("scaleout.balance.picks"))
	// Output: 2 2
}

// BenchmarkTee measures a counter's Add through a Tee of two Recorders,
// against one Recorder: the cost of the second destination.
func BenchmarkTee(b *testing.B) {
	for _, tc := range []struct {
		name string
		m    observe.Meter
	}{
		{"one", observe.NewRecorder()},
		{"tee2", observe.Tee(observe.NewRecorder(), observe.NewRecorder())},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := observe.NewCounter(tc.m, observe.BalancePicks, "10.0.0.1:8080")
			b.ReportAllocs()
			for b.Loop() {
				c.Inc()
			}
		})
	}
}
