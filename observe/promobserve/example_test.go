package promobserve_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/observe/promobserve"
)

// A balancer reporting to Prometheus: give its Config the Meter, serve the
// registry on /metrics.
func Example() {
	reg := prometheus.NewRegistry()
	meter := promobserve.New(reg, promobserve.WithConstLabels(prometheus.Labels{"balancer": "front"}))

	lb, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{Meter: meter})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer lb.Close()
	_ = lb.Update([]balance.Backend{{Addr: "10.0.0.1:8080"}, {Addr: "10.0.0.2:8080"}})
	for range 4 {
		c, _ := lb.Pick(context.Background(), "")
		c.Done(nil)
	}
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	fams, _ := reg.Gather()
	for _, f := range fams {
		if strings.HasSuffix(f.GetName(), "picks_total") {
			for _, m := range f.GetMetric() {
				fmt.Println(f.GetName(), m.GetLabel()[0].GetValue(), m.GetCounter().GetValue()) // labels sorted: backend, balancer
			}
		}
	}
	// Output:
	// scaleout_balance_picks_total 10.0.0.1:8080 2
	// scaleout_balance_picks_total 10.0.0.2:8080 2
}
