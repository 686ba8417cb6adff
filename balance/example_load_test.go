package balance_test

import (
	"context"
	"fmt"
	"sort"

	"github.com/scaleout/scaleout/balance"
)

// LeastLoaded sends the next request to the backend with the fewest
// requests in flight: here the one whose request just finished.
func ExampleLeastLoaded() {
	lb := balance.NewLeastLoaded(balance.LeastLoadedConfig{})
	if err := lb.Update([]balance.Backend{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}, {Addr: "10.0.0.3:80"}}); err != nil {
		panic(err)
	}
	ctx := context.Background()

	// Three long requests, one on each backend (ties go to a random one).
	var held []balance.Choice
	var addrs []string
	for range 3 {
		c, _ := lb.Pick(ctx, "")
		held = append(held, c)
		addrs = append(addrs, c.Backend().Addr)
	}
	sort.Strings(addrs)
	fmt.Println("in flight on:", addrs)

	// The request on 10.0.0.2 finishes; the next one goes there.
	for i := range held {
		if held[i].Backend().Addr == "10.0.0.2:80" {
			held[i].Done(nil)
		}
	}
	c, _ := lb.Pick(ctx, "")
	fmt.Println("next:", c.Backend().Addr)
	c.Done(nil)
	// Output:
	// in flight on: [10.0.0.1:80 10.0.0.2:80 10.0.0.3:80]
	// next: 10.0.0.2:80
}

// A load report, as a prober polling the backends would keep it, raises a
// backend's load above what this balancer sees of it.
func ExampleLeastLoadedConfig_load() {
	reported := map[string]float64{"10.0.0.1:80": 40} // busy with other clients' requests
	lb := balance.NewLeastLoaded(balance.LeastLoadedConfig{
		Load: func(addr string) float64 { return reported[addr] }, // read-only here; use atomics when a prober writes
	})
	if err := lb.Update([]balance.Backend{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}}); err != nil {
		panic(err)
	}
	for range 3 {
		c, _ := lb.Pick(context.Background(), "")
		fmt.Println(c.Backend().Addr)
		c.Done(nil)
	}
	// Output:
	// 10.0.0.2:80
	// 10.0.0.2:80
	// 10.0.0.2:80
}

// P2C compares two random backends by in-flight requests × latency. With
// two backends it always compares both: a request in flight on one sends
// the next to the other.
func ExampleP2C() {
	lb, err := balance.NewP2C(balance.P2CConfig{})
	if err != nil {
		panic(err)
	}
	if err := lb.Update([]balance.Backend{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}}); err != nil {
		panic(err)
	}
	ctx := context.Background()
	first, _ := lb.Pick(ctx, "")
	second, _ := lb.Pick(ctx, "")
	fmt.Println("spread:", first.Backend().Addr != second.Backend().Addr)
	first.Done(nil)
	second.Done(nil)
	// Output:
	// spread: true
}

// ConsistentHash keeps a key on its home backend, and moves a request
// elsewhere only while the home carries more than its share of the
// requests in flight.
func ExampleConsistentHash() {
	lb, err := balance.NewConsistentHash(balance.ConsistentHashConfig{LoadFactor: 1.25})
	if err != nil {
		panic(err)
	}
	backends := []balance.Backend{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}, {Addr: "10.0.0.3:80"}, {Addr: "10.0.0.4:80"}}
	if err := lb.Update(backends); err != nil {
		panic(err)
	}
	ctx := context.Background()
	home, _ := lb.Pick(ctx, "cart:alice")
	home.Done(nil)
	same := true
	for range 1000 {
		c, _ := lb.Pick(ctx, "cart:alice")
		same = same && c.Backend().Addr == home.Backend().Addr
		c.Done(nil)
	}
	fmt.Println("1000 picks, same backend:", same)

	// A hot key: 8 requests in flight at once. The home takes its bound,
	// ceil(1.25 · 8 / 4) = 3, and the rest spill to the others.
	perBackend := map[string]int{}
	var held []balance.Choice
	for range 8 {
		c, _ := lb.Pick(ctx, "cart:alice")
		perBackend[c.Backend().Addr]++
		held = append(held, c)
	}
	fmt.Println("home holds:", perBackend[home.Backend().Addr], "of 8")
	for i := range held {
		held[i].Done(nil)
	}

	// Another backend joins: alice's home does not change unless the new
	// backend takes her partition (about 1 key in 5).
	if err := lb.Update(append(backends, balance.Backend{Addr: "10.0.0.5:80"})); err != nil {
		panic(err)
	}
	c, _ := lb.Pick(ctx, "cart:alice")
	fmt.Println("home kept or moved to the new backend:", c.Backend().Addr == home.Backend().Addr || c.Backend().Addr == "10.0.0.5:80")
	c.Done(nil)
	// Output:
	// 1000 picks, same backend: true
	// home holds: 3 of 8
	// home kept or moved to the new backend: true
}
