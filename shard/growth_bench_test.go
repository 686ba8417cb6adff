package shard_test

import (
	"fmt"
	"testing"

	"github.com/scaleout/scaleout/shard"
)

// growthSizes are the member counts of the growth benchmarks: a
// construction or plan whose cost grows faster than the members shows as a
// ns/op that grows faster than tenfold from one size to the next.
var growthSizes = []int{10, 100, 1000, 10000}

// growthNames returns n distinct member names "node-0", "node-1", ....
func growthNames(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("node-%d", i)
	}
	return s
}

// boundedPartitions is the partition count the growth benchmarks build a
// Bounded with at n members: the default up to 1,000 members, 65,536 at
// 10,000 (more partitions than members are required).
var boundedPartitions = map[int]int{10000: 1 << 16}

// BenchmarkNewBounded measures building a Bounded table of n members.
func BenchmarkNewBounded(b *testing.B) {
	for _, n := range growthSizes {
		members := shard.Members(growthNames(n)...)
		cfg := shard.BoundedConfig{Partitions: boundedPartitions[n]}
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := shard.NewBounded(members, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNewRing measures building a Ring of n members with the default
// 160 points each.
func BenchmarkNewRing(b *testing.B) {
	for _, n := range growthSizes {
		members := shard.Members(growthNames(n)...)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := shard.NewRing(members, shard.RingConfig{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPlanMovesRing measures the plan for one member joining n: the
// moves stay about 160 hash ranges whatever n is.
func BenchmarkPlanMovesRing(b *testing.B) {
	for _, n := range growthSizes {
		all := growthNames(n + 1)
		from, err := shard.NewRing(shard.Members(all[:n]...), shard.RingConfig{})
		if err != nil {
			b.Fatal(err)
		}
		to, err := shard.NewRing(shard.Members(all...), shard.RingConfig{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := shard.PlanMoves(from, to); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
