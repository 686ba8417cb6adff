package balance_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/scaleout/scaleout/balance"
)

func ExampleRoundRobin() {
	// The zero value starts at the first backend; NewRoundRobin starts at
	// a random one, so that clients started together do not move in step.
	var lb balance.RoundRobin
	err := lb.Update([]balance.Backend{{Addr: "10.0.0.1:80"}, {Addr: "10.0.0.2:80"}, {Addr: "10.0.0.3:80"}})
	if err != nil {
		panic(err)
	}
	for range 4 {
		c, err := lb.Pick(context.Background(), "")
		if err != nil {
			panic(err)
		}
		fmt.Println(c.Backend().Addr)
		c.Done(nil) // when the request ends, with its error
	}
	// Output:
	// 10.0.0.1:80
	// 10.0.0.2:80
	// 10.0.0.3:80
	// 10.0.0.1:80
}

func ExampleWeightedRoundRobin() {
	var lb balance.WeightedRoundRobin
	err := lb.Update([]balance.Backend{
		{Addr: "big", Weight: 5},
		{Addr: "small1", Weight: 1},
		{Addr: "small2"}, // weight 0 means 1
	})
	if err != nil {
		panic(err)
	}
	// Every 7 picks give big 5 turns, spread out rather than in a burst.
	var round []string
	for range 7 {
		c, err := lb.Pick(context.Background(), "")
		if err != nil {
			panic(err)
		}
		round = append(round, c.Backend().Addr)
		c.Done(nil)
	}
	fmt.Println(strings.Join(round, " "))
	// Output:
	// big small1 big big small2 big big
}

func ExampleZoneAware() {
	lb, err := balance.NewZoneAware(balance.ZoneAwareConfig{Local: "eu-west-1a"})
	if err != nil {
		panic(err)
	}
	spread := func() map[string]int {
		zones := map[string]int{}
		for range 700 {
			c, err := lb.Pick(context.Background(), "")
			if err != nil {
				panic(err)
			}
			zones[c.Backend().Zone]++
			c.Done(nil)
		}
		return zones
	}

	// Callers are assumed spread over the zones like the backends: each
	// zone has the capacity for its own callers, so traffic stays local.
	set := []balance.Backend{
		{Addr: "10.1.0.1:80", Zone: "eu-west-1a"}, {Addr: "10.1.0.2:80", Zone: "eu-west-1a"},
		{Addr: "10.1.0.3:80", Zone: "eu-west-1a"},
		{Addr: "10.2.0.1:80", Zone: "eu-west-1b"}, {Addr: "10.2.0.2:80", Zone: "eu-west-1b"},
		{Addr: "10.2.0.3:80", Zone: "eu-west-1b"},
	}
	if err := lb.Update(set); err != nil {
		panic(err)
	}
	fmt.Println(spread(), lb.Spill())

	// Two local backends fail: the local zone now has 1/4 of the capacity
	// for 1/2 of the callers, so it keeps half its traffic and spills half.
	if err := lb.Update(set[2:]); err != nil {
		panic(err)
	}
	fmt.Println(spread(), lb.Spill())
	// Output:
	// map[eu-west-1a:700] 0
	// map[eu-west-1a:350 eu-west-1b:350] 0.5
}
