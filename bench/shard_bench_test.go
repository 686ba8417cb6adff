package bench

import (
	"strconv"
	"testing"

	"github.com/scaleout/scaleout/bench/impls"
)

// BenchmarkLookup measures one key lookup for every implementation, ours and
// the other libraries', at 10 and 100 shards:
//
//	go test -bench Lookup -benchmem
//
// cmd/compare runs the same bodies several times and reports medians.
func BenchmarkLookup(b *testing.B) {
	keys := impls.NewKeys(impls.BenchKeys)
	for _, im := range impls.All() {
		b.Run(im.Bench, func(b *testing.B) {
			for _, n := range []int{10, 100} {
				built, err := im.New(impls.ShardNames(n))
				if err != nil {
					b.Fatal(err)
				}
				b.Run(strconv.Itoa(n), func(b *testing.B) { built.Bench(b, keys) })
			}
		})
	}
}
