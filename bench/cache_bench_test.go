package bench

import (
	"testing"

	"github.com/scaleout/scaleout/bench/impls"
)

// Cache benchmarks: scaleout's cache package side by side with raw
// go-redis and gomemcache calls, go-redis/cache v9 and eko/gocache v4, on
// the same servers (bodies in impls/cache.go, shared with cmd/compare,
// which runs them several times and reports medians and ratios):
//
//	cd bench && eval "$(../scripts/services.sh env)"
//	go test -run '^$' -bench 'Cache' -count 5 .
//
// BenchmarkCacheRemoteHit/<impl>: one GET of a 1 KiB value from Redis
// per op (raw-goredis, rediscache, loader, go-redis-cache, eko-gocache).
// BenchmarkCacheMemcachedHit/<impl>: the same from Memcached
// (raw-gomemcache, memcachedcache, loader). BenchmarkCacheLocalHit/<impl>:
// a hit of the local tier in front of Redis (ours: Loader with LocalTTL;
// theirs: go-redis/cache with a TinyLFU local cache), for a 1 KiB []byte
// and a small struct; the struct also called as the README shows
// (loader-readme: cache.GetWith, 0 allocs) and with a load closure made
// per call (loader-closure: 1 alloc). BenchmarkCacheMemory/{serial,parallel}: cache.Memory
// Get hits on 10,000 keys of 1 KiB. The Redis and Memcached benchmarks
// skip without SCALEOUT_REDIS_ADDR or SCALEOUT_MEMCACHED_ADDR. Every key
// is written by the library's own Set before the timer starts.
//
// BenchmarkCacheRemoteInterleaved/{redis,memcached}: the remote rows'
// libraries in one loop, one Get of each per iteration (own keys, the
// starting library rotating every iteration), each Get timed alone. Its
// ns/op is a whole iteration; the figures to read are the metrics
// <impl>-ns/op (mean ns of one Get of that library) and the ratios
// loader/raw, loader/go-redis-cache, loader/eko-gocache, ... Rows run one
// after the other each get their own window of a shared machine, where
// the round trip moves by several times between windows; these ratios
// compare Gets made in the same window:
//
//	go test -run '^$' -bench CacheRemoteInterleaved -count 5 .

func BenchmarkCacheRemoteHit(b *testing.B)    { benchCache(b, impls.CacheGroupRedis) }
func BenchmarkCacheMemcachedHit(b *testing.B) { benchCache(b, impls.CacheGroupMemcached) }
func BenchmarkCacheLocalHit(b *testing.B)     { benchCache(b, impls.CacheGroupLocal) }
func BenchmarkCacheMemory(b *testing.B)       { benchCache(b, impls.CacheGroupMemory) }

func BenchmarkCacheRemoteInterleaved(b *testing.B) {
	env, err := impls.NewCacheEnv()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := env.Close(); err != nil {
			b.Errorf("cleaning up: %v", err)
		}
	})
	for _, il := range impls.CacheInterleavedCases() {
		if !env.Has(il.Env) {
			b.Run(il.Bench, func(b *testing.B) {
				b.Skipf(`%s unset: run eval "$(../scripts/services.sh env)" first`, il.Env)
			})
			continue
		}
		body, closeFn, err := il.Build(env)
		if err != nil {
			b.Fatalf("%s: %v", il.Bench, err)
		}
		b.Run(il.Bench, body)
		closeFn()
	}
}

func benchCache(b *testing.B, group string) {
	env, err := impls.NewCacheEnv()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := env.Close(); err != nil {
			b.Errorf("cleaning up: %v", err)
		}
	})
	for _, cc := range impls.CacheCases() {
		if cc.Group != group {
			continue
		}
		if !env.Has(cc.Env) {
			b.Run(cc.Bench, func(b *testing.B) {
				b.Skipf(`%s unset: run eval "$(../scripts/services.sh env)" first`, cc.Env)
			})
			continue
		}
		// Built once, outside b.Run, whose function runs once per
		// b.N tried.
		body, closeFn, err := cc.Build(env)
		if err != nil {
			b.Fatalf("%s: %v", cc.Bench, err)
		}
		b.Run(cc.Bench, body)
		closeFn()
	}
}
