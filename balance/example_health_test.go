package balance_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/scaleout/scaleout/balance"
)

// Health keeps a failing backend out of the rotation: five failed requests
// in a row eject it for a while, and the strategy behind Health never sees
// it meanwhile.
func ExampleHealth() {
	lb, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{})
	if err != nil {
		panic(err)
	}
	defer lb.Close()
	_ = lb.Update([]balance.Backend{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}, {Addr: "10.0.0.3:80"}})

	ctx := context.Background()
	for range 5 {
		c, _ := lb.PickAddr(ctx, "10.0.0.2:80") // say its requests keep failing
		c.Done(errors.New("connection refused"))
	}
	for _, b := range lb.Eligible() {
		fmt.Println(b.Addr)
	}
	// Output:
	// 10.0.0.1:80
	// 10.0.0.3:80
}

// Random spreads picks by weight: a backend of weight 3 gets three times
// the picks of one of weight 1, with no shared counter between pickers.
func ExampleRandom() {
	lb := balance.NewRandom()
	_ = lb.Update([]balance.Backend{{Addr: "10.0.0.1:80", Weight: 3}, {Addr: "10.0.0.2:80", Weight: 1}})
	count := map[string]int{}
	for range 40_000 {
		c, _ := lb.Pick(context.Background(), "")
		count[c.Backend().Addr]++
		c.Done(nil)
	}
	ratio := float64(count["10.0.0.1:80"]) / float64(count["10.0.0.2:80"])
	fmt.Printf("about %.0f to 1\n", ratio)
	// Output: about 3 to 1
}
