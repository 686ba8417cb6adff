package observe_test

import (
	"fmt"
	"time"

	"github.com/scaleout/scaleout/observe"
)

// A package binds its instruments once, when the thing measured appears,
// and calls them on its hot path; a Recorder shows what it reported.
func Example() {
	rec := observe.NewRecorder()
	var m observe.Meter = rec // nil would turn the instruments off

	// When backend a is added: one bound instrument per metric.
	picks := observe.NewCounter(m, observe.BalancePicks, "10.0.0.1:8080")
	latency := observe.NewHistogram(m, observe.BalanceDuration, "10.0.0.1:8080")

	// On every pick: a method call, no allocation.
	for range 3 {
		picks.Inc()
		latency.ObserveDuration(20 * time.Millisecond)
	}

	fmt.Println(rec.Value("scaleout.balance.picks", "backend", "10.0.0.1:8080"))
	fmt.Println(rec.Count("scaleout.balance.duration"), rec.Value("scaleout.balance.duration"))
	fmt.Println(observe.PrometheusName(observe.BalancePicks))
	// Output:
	// 3
	// 3 0.06
	// scaleout_balance_picks_total
}
