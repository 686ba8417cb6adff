package promobserve_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/observe/promobserve"
)

// gather returns the registry's families by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// series returns the metric of family f whose labels are labels.
func series(t *testing.T, f *dto.MetricFamily, labels map[string]string) *dto.Metric {
	t.Helper()
	if f == nil {
		t.Fatalf("no such family")
	}
	for _, m := range f.GetMetric() {
		match := len(m.GetLabel()) == len(labels)
		for _, l := range m.GetLabel() {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if match {
			return m
		}
	}
	t.Fatalf("%s has no series %v: %v", f.GetName(), labels, f.GetMetric())
	return nil
}

// TestBalanceAndCache runs a known workload through a balancer and a
// cache Loader reporting to one registry, gathers it and checks the
// names, types, help, labels (the constant one included) and values a
// Prometheus server would scrape.
func TestBalanceAndCache(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := promobserve.New(reg, promobserve.WithConstLabels(prometheus.Labels{"instance_name": "front"}))
	h, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{Meter: m})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Update([]balance.Backend{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 6 {
		c, err := h.Pick(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			c.Done(errors.New("reset"))
		} else {
			c.Done(nil)
		}
	}
	mem, err := cache.NewMemory(cache.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := cache.NewLoader(mem, cache.LoaderConfig[string]{Meter: m, LocalTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	load := func(context.Context) (string, error) { return "v", nil }
	for range 3 {
		if _, err := l.Get(ctx, "k", time.Minute, load); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Err(); err != nil {
		t.Fatal(err)
	}

	fams := gather(t, reg)
	front := func(kv ...string) map[string]string {
		out := map[string]string{"instance_name": "front"}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	picks := fams["scaleout_balance_picks_total"]
	if picks.GetType() != dto.MetricType_COUNTER || picks.GetHelp() != observe.BalancePicks.Description {
		t.Errorf("picks: type %v, help %q", picks.GetType(), picks.GetHelp())
	}
	for _, b := range []string{"10.0.0.1:80", "10.0.0.2:80"} {
		if got := series(t, picks, front("backend", b)).GetCounter().GetValue(); got != 3 {
			t.Errorf("picks of %s = %v, want 3", b, got)
		}
		if got := series(t, fams["scaleout_balance_in_flight"], front("backend", b)).GetGauge().GetValue(); got != 0 {
			t.Errorf("in flight of %s = %v, want 0", b, got)
		}
		if got := series(t, fams["scaleout_balance_healthy"], front("backend", b)).GetGauge().GetValue(); got != 1 {
			t.Errorf("healthy of %s = %v, want 1", b, got)
		}
		hist := series(t, fams["scaleout_balance_duration_seconds"], front("backend", b)).GetHistogram()
		if hist.GetSampleCount() != 3 || len(hist.GetBucket()) != len(observe.DurationBuckets) {
			t.Errorf("duration of %s: %d samples in %d buckets, want 3 in %d", b, hist.GetSampleCount(), len(hist.GetBucket()), len(observe.DurationBuckets))
		}
	}
	var errs float64
	for _, s := range fams["scaleout_balance_errors_total"].GetMetric() {
		errs += s.GetCounter().GetValue()
	}
	if errs != 1 {
		t.Errorf("errors = %v, want 1", errs)
	}
	if got := series(t, fams["scaleout_balance_panic"], front()).GetGauge().GetValue(); got != 0 {
		t.Errorf("panic = %v, want 0", got)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"scaleout_cache_hits_total", front("tier", "local"), 2},
		{"scaleout_cache_hits_total", front("tier", "shared"), 0},
		{"scaleout_cache_misses_total", front(), 1},
		{"scaleout_cache_loads_total", front(), 1},
	} {
		if got := series(t, fams[tc.name], tc.labels).GetCounter().GetValue(); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if got := series(t, fams["scaleout_cache_load_duration_seconds"], front()).GetHistogram().GetSampleCount(); got != 1 {
		t.Errorf("load duration samples = %d, want 1", got)
	}
}

// TestEveryMetric binds every metric of observe's table and checks the
// name and type each has once gathered.
func TestEveryMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := promobserve.New(reg)
	want := map[string]dto.MetricType{}
	for _, d := range observe.Descs() {
		values := make([]string, len(d.Labels))
		for i := range values {
			values[i] = "x"
		}
		switch d.Kind {
		case observe.KindCounter:
			observe.NewCounter(m, d, values...).Inc()
			want[observe.PrometheusName(d)] = dto.MetricType_COUNTER
		case observe.KindUpDownCounter:
			observe.NewUpDownCounter(m, d, values...).Add(-1)
			want[observe.PrometheusName(d)] = dto.MetricType_GAUGE
		case observe.KindGauge:
			observe.NewGauge(m, d, values...).Set(1)
			want[observe.PrometheusName(d)] = dto.MetricType_GAUGE
		case observe.KindHistogram:
			observe.NewHistogram(m, d, values...).Observe(1)
			want[observe.PrometheusName(d)] = dto.MetricType_HISTOGRAM
		}
	}
	if err := m.Err(); err != nil {
		t.Fatal(err)
	}
	fams := gather(t, reg)
	if len(fams) != len(want) {
		t.Errorf("%d families gathered, want %d", len(fams), len(want))
	}
	for name, typ := range want {
		if f := fams[name]; f == nil || f.GetType() != typ {
			t.Errorf("%s: gathered %v, want a %v", name, f, typ)
		}
	}
}

// TestSharedRegistry checks that two Meters on one registry share a
// metric when their constant labels agree and keep apart when they
// differ.
func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := promobserve.New(reg)
	b := promobserve.New(reg)
	observe.NewCounter(a, observe.CacheMisses).Inc()
	observe.NewCounter(b, observe.CacheMisses).Inc()
	x := promobserve.New(reg, promobserve.WithConstLabels(prometheus.Labels{"cache": "x"}))
	y := promobserve.New(reg, promobserve.WithConstLabels(prometheus.Labels{"cache": "y"}))
	observe.NewCounter(x, observe.CacheLoads).Add(2)
	observe.NewCounter(y, observe.CacheLoads).Add(3)
	for _, m := range []*promobserve.Meter{a, b, x, y} {
		if err := m.Err(); err != nil {
			t.Fatal(err)
		}
	}
	fams := gather(t, reg)
	if got := series(t, fams["scaleout_cache_misses_total"], map[string]string{}).GetCounter().GetValue(); got != 2 {
		t.Errorf("misses = %v, want 2 (both Meters' in one series)", got)
	}
	for c, want := range map[string]float64{"x": 2, "y": 3} {
		if got := series(t, fams["scaleout_cache_loads_total"], map[string]string{"cache": c}).GetCounter().GetValue(); got != want {
			t.Errorf("loads of cache %s = %v, want %v", c, got, want)
		}
	}
}

// TestZeroAllocs checks that the adapter's instruments allocate nothing.
func TestZeroAllocs(t *testing.T) {
	m := promobserve.New(prometheus.NewRegistry())
	c := observe.NewCounter(m, observe.BalancePicks, "a")
	u := observe.NewUpDownCounter(m, observe.BalanceInFlight, "a")
	g := observe.NewGauge(m, observe.BalanceHealthy, "a")
	h := observe.NewHistogram(m, observe.BalanceDuration, "a")
	if allocs := testing.AllocsPerRun(1000, func() {
		c.Inc()
		u.Add(1)
		g.Set(1)
		h.Observe(0.01)
	}); allocs != 0 {
		t.Errorf("%v allocations per round, want 0", allocs)
	}
}
