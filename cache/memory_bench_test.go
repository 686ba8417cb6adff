package cache

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// storeBench returns a store of 10,000 small values and their keys.
func storeBench(b *testing.B) (*store[int], []string) {
	s, err := newStore[int](MemoryConfig{MaxEntries: 20_000})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "bench:key:" + strconv.Itoa(i)
		s.set(keys[i], i, int64(len(keys[i])+8), 0)
	}
	return s, keys
}

// BenchmarkStoreGet is a hit of store.get with a small value, serially:
// no allocation, and the cost of the index, the counters and the policy
// without Memory's copy.
func BenchmarkStoreGet(b *testing.B) {
	s, keys := storeBench(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if v, ok := s.get(keys[i%len(keys)]); !ok || v != i%len(keys) {
			b.Fatal(v, ok)
		}
		i++
	}
}

// BenchmarkStoreGetParallel is BenchmarkStoreGet from GOMAXPROCS
// goroutines.
func BenchmarkStoreGetParallel(b *testing.B) {
	s, keys := storeBench(b)
	b.ReportAllocs()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(n.Add(1)) * 7919
		for pb.Next() {
			if _, ok := s.get(keys[i%len(keys)]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}
