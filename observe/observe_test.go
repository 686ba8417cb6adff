package observe_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/scaleout/scaleout/observe"
)

// TestDocTable checks that the package documentation's table lists every
// metric of Descs, with its kind, unit, labels and Prometheus name, and
// nothing else: the table is what users build dashboards from.
func TestDocTable(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^//\t(scaleout\.\S+)\s+(\S+)\s+(\S+)\s+(.+?)\s+(scaleout_\S+)$`)
	rows := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(string(src), -1) {
		rows[m[1]] = m[2:]
	}
	seen := map[string]bool{}
	for _, d := range observe.Descs() {
		if seen[d.Name] {
			t.Errorf("%s twice in Descs", d.Name)
		}
		seen[d.Name] = true
		labels := strings.Join(d.Labels, ", ")
		if labels == "" {
			labels = "-"
		}
		want := []string{d.Kind.String(), d.Unit, labels, observe.PrometheusName(d)}
		got, ok := rows[d.Name]
		if !ok {
			t.Errorf("%s is not in doc.go's table", d.Name)
			continue
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("doc.go's row of %s says %q, Descs %q", d.Name, got, want)
		}
		if !strings.HasPrefix(d.Name, "scaleout.") || d.Description == "" || d.Unit == "" {
			t.Errorf("%s: want a scaleout. name, a unit and a description", d.Name)
		}
	}
	for name := range rows {
		if !seen[name] {
			t.Errorf("doc.go's table lists %s, which Descs does not have", name)
		}
	}
}

// TestZeroAllocs checks the promise of the package: an instrumented call
// allocates nothing with instrumentation off (a nil Meter) and with a
// Recorder on.
func TestZeroAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    observe.Meter
	}{{"off", nil}, {"recorder", observe.NewRecorder()}} {
		c := observe.NewCounter(tc.m, observe.BalancePicks, "a")
		u := observe.NewUpDownCounter(tc.m, observe.BalanceInFlight, "a")
		g := observe.NewGauge(tc.m, observe.BalanceHealthy, "a")
		h := observe.NewHistogram(tc.m, observe.BalanceDuration, "a")
		allocs := testing.AllocsPerRun(1000, func() {
			c.Inc()
			u.Add(1)
			u.Add(-1)
			g.SetBool(true)
			h.Observe(0.01)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tc.name, allocs)
		}
		if got := c.Enabled(); got != (tc.m != nil) {
			t.Errorf("%s: Enabled = %v", tc.name, got)
		}
	}
}

// TestRecorder checks what a test using the Recorder relies on: series
// bound twice are one, labels left out match all, and each kind's value.
func TestRecorder(t *testing.T) {
	r := observe.NewRecorder()
	a1 := observe.NewCounter(r, observe.BalanceHealthTransitions, "a", "ejected")
	a2 := observe.NewCounter(r, observe.BalanceHealthTransitions, "a", "ejected")
	b := observe.NewCounter(r, observe.BalanceHealthTransitions, "b", "up")
	a1.Add(2)
	a2.Inc()
	b.Inc()
	for _, tc := range []struct {
		labels []string
		want   float64
	}{
		{nil, 4},
		{[]string{"backend", "a"}, 3},
		{[]string{"state", "up"}, 1},
		{[]string{"backend", "a", "state", "up"}, 0},
		{[]string{"nosuchlabel", "x"}, 0},
	} {
		if got := r.Value("scaleout.balance.health_transitions", tc.labels...); got != tc.want {
			t.Errorf("Value(%q) = %v, want %v", tc.labels, got, tc.want)
		}
	}
	u := observe.NewUpDownCounter(r, observe.BalanceInFlight, "a")
	u.Add(3)
	u.Add(-1)
	g := observe.NewGauge(r, observe.ReplicaLag, "n1")
	g.Set(2.5)
	g.Set(0.5)
	h := observe.NewHistogram(r, observe.CacheLoadDuration)
	h.Observe(1)
	h.Observe(2)
	if got := r.Value("scaleout.balance.in_flight"); got != 2 {
		t.Errorf("in flight = %v, want 2", got)
	}
	if got := r.Value("scaleout.replica.lag", "node", "n1"); got != 0.5 {
		t.Errorf("lag = %v, want the last value 0.5", got)
	}
	if got, n := r.Value("scaleout.cache.load.duration"), r.Count("scaleout.cache.load.duration"); got != 3 || n != 2 {
		t.Errorf("histogram sum, count = %v, %v, want 3, 2", got, n)
	}
	if got := r.Value("scaleout.cache.misses"); got != 0 {
		t.Errorf("unreported metric = %v, want 0", got)
	}
	all := r.Series()
	if len(all) != 5 || all[0].Desc.Name != "scaleout.balance.health_transitions" || all[0].Labels["backend"] != "a" {
		t.Errorf("Series() = %+v", all)
	}
}

// TestBindMistakes checks that binding the wrong number of label values or
// a Desc of another kind is refused at once, not reported as a wrong series.
func TestBindMistakes(t *testing.T) {
	r := observe.NewRecorder()
	for name, f := range map[string]func(){
		"too few values":  func() { observe.NewCounter(r, observe.BalancePicks) },
		"too many values": func() { observe.NewGauge(r, observe.BalancePanic, "x") },
		"wrong kind":      func() { observe.NewHistogram(r, observe.BalancePicks, "a") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
	// Off, nothing is checked: a nil Meter costs nothing, even at binding.
	observe.NewCounter(nil, observe.BalancePicks)
}

func BenchmarkCounter(b *testing.B) {
	for _, tc := range []struct {
		name string
		m    observe.Meter
	}{{"off", nil}, {"recorder", observe.NewRecorder()}} {
		b.Run(tc.name, func(b *testing.B) {
			c := observe.NewCounter(tc.m, observe.BalancePicks, "a")
			b.ReportAllocs()
			for b.Loop() {
				c.Inc()
			}
		})
	}
}
