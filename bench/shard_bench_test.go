package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

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

// BenchmarkSameAlgorithm compares our Jump and Rendezvous with go-jump and
// go-rendezvous in the same call shape (each a func(string) string,
// hashing included) the way a shared, noisy machine allows: blocks of
// 2,048 lookups alternate between ours and theirs, and each side's figure
// is its fastest block, which preemption and neighbours can only slow
// down. It reports both and their ratio (ours over theirs; below 1 is
// faster):
//
//	go test -run XXX -bench SameAlgorithm -benchtime 1x
func BenchmarkSameAlgorithm(b *testing.B) {
	keys := impls.NewKeys(impls.BenchKeys)
	byName := map[string]impls.Impl{}
	for _, im := range impls.All() {
		byName[im.Name] = im
	}
	for _, pair := range [][2]string{{impls.OursJump, impls.GoJump}, {impls.OursRendezvous, impls.GoRendezvous}} {
		for _, n := range []int{10, 100} {
			ours, err := byName[pair[0]].New(impls.ShardNames(n))
			if err != nil {
				b.Fatal(err)
			}
			theirs, err := byName[pair[1]].New(impls.ShardNames(n))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%d", byName[pair[0]].Bench, n), func(b *testing.B) {
				b.ReportAllocs()
				a, t := math.Inf(1), math.Inf(1)
				for b.Loop() {
					for range 400 {
						a = min(a, fastestBlock(ours.Str, keys.S))
						t = min(t, fastestBlock(theirs.Str, keys.S))
					}
				}
				b.ReportMetric(a, "ours-ns/lookup")
				b.ReportMetric(t, "theirs-ns/lookup")
				b.ReportMetric(a/t, "ours/theirs")
			})
		}
	}
}

// fastestBlock times one block of 2,048 lookups and returns ns per lookup.
func fastestBlock(f func(string) string, keys []string) float64 {
	const block = 2048
	off := rand.IntN(len(keys))
	start := time.Now()
	for i := range block {
		impls.Sink = f(keys[(off+i)&(len(keys)-1)])
	}
	return float64(time.Since(start).Nanoseconds()) / block
}
