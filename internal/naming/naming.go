// Package naming generates the shard names that tests and benchmarks
// measure distribution and movement over: a hash that suits one way of
// naming shards and not another would otherwise pass by the choice of
// names.
package naming

import (
	"fmt"
	"math/rand/v2"
)

// A Scheme is one way shards get named in practice.
type Scheme struct {
	Name string
	// Names returns n distinct names; Names(n+1) extends Names(n), so
	// its last name is a shard joining the first n.
	Names func(n int) []string
}

// Schemes returns shard-NN, node-N, addresses with ports, DNS names with
// ports, and random (seeded) UUIDs.
func Schemes() []Scheme {
	return []Scheme{
		{Name: "shard-NN", Names: format("shard-%02d")},
		{Name: "node-N", Names: format("node-%d")},
		{Name: "10.0.x.y:6379", Names: func(n int) []string {
			s := make([]string, n)
			for i := range s {
				s[i] = fmt.Sprintf("10.0.%d.%d:6379", i/250, i%250+1)
			}
			return s
		}},
		{Name: "cache-N.prod.example.com:11211", Names: format("cache-%d.prod.example.com:11211")},
		{Name: "UUID", Names: func(n int) []string {
			rng := rand.New(rand.NewPCG(4, 4))
			s := make([]string, n)
			for i := range s {
				a, b := rng.Uint64(), rng.Uint64()
				s[i] = fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x",
					a>>32, a>>16&0xffff, a&0xfff, 0x8000|b>>48&0x3fff, b&0xffffffffffff)
			}
			return s
		}},
	}
}

// format returns names fmt.Sprintf(f, i) for i = 0, 1, ....
func format(f string) func(int) []string {
	return func(n int) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf(f, i)
		}
		return s
	}
}
