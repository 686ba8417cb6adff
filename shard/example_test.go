package shard_test

import (
	"fmt"
	"strings"

	"github.com/scaleout/scaleout/shard"
)

// Users A–M live on one database, N–Z on another; later a third database
// takes T–Z, and the plan names the one key range to copy.
func ExampleRange() {
	byName, err := shard.NewRange([]shard.Span{
		{Start: "", Shard: "users-1"},
		{Start: "n", Shard: "users-2"},
	})
	if err != nil {
		panic(err)
	}
	for _, user := range []string{"Alice", "Nora", "Zed"} {
		fmt.Println(user, "->", byName.Shard(strings.ToLower(user)))
	}

	grown, err := byName.Split("t", "users-3")
	if err != nil {
		panic(err)
	}
	plan, err := shard.PlanMoves(byName, grown)
	if err != nil {
		panic(err)
	}
	for _, m := range plan.Moves {
		fmt.Printf("copy [%q, %q) from %s to %s\n", m.Start, m.End, m.From, m.To)
	}
	// Output:
	// Alice -> users-1
	// Nora -> users-2
	// Zed -> users-2
	// copy ["t", "") from users-2 to users-3
}

// Keys with the same hash tag land on the same shard, as in Redis Cluster,
// so one user's records can be read and written together.
func ExampleSlot() {
	fmt.Println(shard.Slot("{user:42}:profile") == shard.Slot("{user:42}:cart"))
	fmt.Println(shard.Slot("foo"))
	// Output:
	// true
	// 12182
}

// Adding a fourth shard to a Maglev table moves only the partitions the plan
// lists; everything else stays where it is.
func ExamplePlanMoves() {
	before, _ := shard.NewMaglev(shard.Members("db-a", "db-b", "db-c"), shard.MaglevConfig{})
	after, _ := shard.NewMaglev(shard.Members("db-a", "db-b", "db-c", "db-d"), shard.MaglevConfig{})
	plan, err := shard.PlanMoves(before, after)
	if err != nil {
		panic(err)
	}
	frac, _ := plan.Fraction()
	toD := 0
	for _, m := range plan.Moves {
		if m.To == "db-d" {
			toD++
		}
	}
	fmt.Printf("%s; %.0f%% of keys move, %d of %d moves go to the new shard\n",
		plan.Unit, frac*100, toD, len(plan.Moves))
	// Output: partitions; 25% of keys move, 16384 of 16425 moves go to the new shard
}

// Replicated placement: each key on three distinct shards. When the first
// owner is removed, the key already lives on its new owner.
func ExampleRendezvous_Owners() {
	r, err := shard.NewRendezvous(shard.Members("cache-1", "cache-2", "cache-3", "cache-4", "cache-5"))
	if err != nil {
		panic(err)
	}
	owners, err := r.Owners("session:8f2c", 3)
	if err != nil {
		panic(err)
	}
	fmt.Println(len(owners), owners[0] == r.Shard("session:8f2c"))
	// Output: 3 true
}
