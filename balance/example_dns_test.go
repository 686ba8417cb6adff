package balance_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/scaleout/scaleout/balance"
)

// ExampleDNS keeps a balancer's backends in step with DNS: every clone's
// address is an A record of one name, and each request goes to the least
// loaded of them, instead of every client sticking to the one address it
// resolved (the skew examples/dnsskew measures). The load is what each
// clone reports (LoadReporter), polled by a LoadProber that discovery
// keeps in step with the balancer.
func ExampleDNS() {
	prober, err := balance.NewLoadProber(balance.LoadProberConfig{})
	if err != nil {
		log.Fatal(err)
	}
	lb := balance.NewLeastLoaded(balance.LeastLoadedConfig{Load: prober.Load})
	discovery, err := balance.NewDNS(balance.DNSConfig{
		Name:     "clones.example.internal.", // fully qualified: no search domains
		Port:     8080,
		Interval: 30 * time.Second,
		Target:   balance.Updaters(lb, prober),
		OnError: func(err error) {
			// The balancer keeps the last good set; just say so.
			slog.Warn("DNS discovery", "err", err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go discovery.Run(ctx) // both return when ctx is cancelled
	go prober.Run(ctx)

	c, err := lb.Pick(ctx, "")
	if err != nil {
		return // no backend yet
	}
	defer c.Done(nil)
	fmt.Println("send the request to", c.Backend().Addr)
}

// ExampleDNS_srv discovers backends from SRV records
// (_http._tcp.clones.example.internal.), which carry each backend's port
// and weight; a weighted balancer uses the weights.
func ExampleDNS_srv() {
	lb := balance.NewWeightedRoundRobin()
	discovery, err := balance.NewDNS(balance.DNSConfig{
		Name:    "clones.example.internal.",
		SRV:     true,
		Service: "http", // Proto defaults to "tcp"
		Target:  lb,
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = discovery.Run // run it as in ExampleDNS
}

// ExampleDNS_Resolve resolves once, without a Target. An IP literal
// resolves to itself, which is handy in tests and for one fixed backend.
func ExampleDNS_Resolve() {
	d, err := balance.NewDNS(balance.DNSConfig{Name: "127.0.0.1", Port: 8080})
	if err != nil {
		log.Fatal(err)
	}
	backends, err := d.Resolve(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, b := range backends {
		fmt.Println(b.Addr)
	}
	// Output: 127.0.0.1:8080
}

// ExampleNewDNS shows the validation of a configuration.
func ExampleNewDNS() {
	_, err := balance.NewDNS(balance.DNSConfig{Name: "clones.example.internal."})
	fmt.Println(err)
	// Output: balance: invalid configuration: dns: Port 0 out of range 1-65535
}
