// Command partition shows database partitioning with package shard, on
// in-memory stores so it runs anywhere:
//
//  1. users split by name, A–M on one store and N–Z on another (Range);
//  2. the same users spread by hash over three stores (Maglev);
//  3. a fourth store joins: PlanMoves names the partitions that change
//     owner, only the users in those partitions are copied, and every user
//     is still found on the store the new sharder names.
//
// Run it with: go run ./examples/partition
package main

import (
	"fmt"
	"log"
	"sort"
	"strings"

	"github.com/scaleout/scaleout/shard"
)

// store is one database: user name -> profile.
type store map[string]string

var users = []string{
	"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
	"judy", "mallory", "niaj", "olivia", "peggy", "quentin", "rupert", "sybil",
	"trent", "ursula", "victor", "walter", "xavier", "yvonne", "zoe",
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	// 1. By range: the split the notes describe.
	byName, err := shard.NewRange([]shard.Span{{Start: "", Shard: "users-a-m"}, {Start: "n", Shard: "users-n-z"}})
	if err != nil {
		return err
	}
	fmt.Println("1. by range (A–M, N–Z):")
	printStores(place(byName, users))

	// 2. By hash: even spread whatever the names look like.
	three, err := shard.NewMaglev(shard.Members("db-1", "db-2", "db-3"), shard.MaglevConfig{})
	if err != nil {
		return err
	}
	stores := place(three, users)
	fmt.Println("2. by hash (Maglev, three stores):")
	printStores(stores)

	// 3. A fourth store joins. Copy only what the plan lists.
	four, err := shard.NewMaglev(shard.Members("db-1", "db-2", "db-3", "db-4"), shard.MaglevConfig{})
	if err != nil {
		return err
	}
	plan, err := shard.PlanMoves(three, four)
	if err != nil {
		return err
	}
	moving := map[int]shard.Move{}
	for _, m := range plan.Moves {
		moving[m.Partition] = m
	}
	stores["db-4"] = store{}
	copied := 0
	for name, s := range stores {
		for user, profile := range s {
			if m, ok := moving[four.Partition(user)]; ok && m.From == name {
				stores[m.To][user] = profile
				delete(s, user)
				copied++
			}
		}
	}
	frac, _ := plan.Fraction()
	fmt.Printf("3. db-4 joins: the plan moves %d of %d partitions (%.1f%% of the key space); %d of %d users copied\n",
		len(plan.Moves), shard.DefaultMaglevTableSize, frac*100, copied, len(users))
	printStores(stores)

	// Every user is where the new sharder looks for it.
	for _, u := range users {
		if _, ok := stores[four.Shard(u)][u]; !ok {
			return fmt.Errorf("user %s not found on %s", u, four.Shard(u))
		}
	}
	fmt.Println("every user found on the store the new sharder names")
	return nil
}

// place writes every user to the store its shard names.
func place(s shard.Sharder, users []string) map[string]store {
	stores := map[string]store{}
	for _, name := range s.Shards() {
		stores[name] = store{}
	}
	for _, u := range users {
		stores[s.Shard(u)][u] = "profile of " + u
	}
	return stores
}

func printStores(stores map[string]store) {
	names := make([]string, 0, len(stores))
	for n := range stores {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var us []string
		for u := range stores[n] {
			us = append(us, u)
		}
		sort.Strings(us)
		fmt.Printf("   %-10s %s\n", n, strings.Join(us, " "))
	}
}
