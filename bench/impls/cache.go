package impls

// Cache benchmarks: scaleout's cache package (cache.Memory, the
// rediscache and memcachedcache stores, and cache.Loader on them) side by
// side with raw go-redis and gomemcache calls and with go-redis/cache v9
// and eko/gocache v4 on the same servers. Shared by cache_bench_test.go
// and cmd/compare, so both measure exactly the same code paths.
//
// Every case reads 1 KiB values (random bytes; a small struct for the
// typed Loader rows) under keys written before the timer starts by the
// library's own Set, so each library reads its own encoding. Keys are
// cycled; every op is one hit.
//
// The remote rows are also measured interleaved (CacheInterleavedCases):
// one Get of every library per iteration, each timed alone, so that their
// ratios compare calls made in the same stretch of a shared machine.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	ekocache "github.com/eko/gocache/lib/v4/cache"
	ekostore "github.com/eko/gocache/lib/v4/store"
	ekoredis "github.com/eko/gocache/store/redis/v4"
	gocache "github.com/go-redis/cache/v9"
	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/memcachedcache"
	"github.com/scaleout/scaleout/cache/rediscache"
)

// The environment variables naming the servers; a case that needs an
// unset one is skipped.
const (
	RedisAddrEnv     = "SCALEOUT_REDIS_ADDR"
	MemcachedAddrEnv = "SCALEOUT_MEMCACHED_ADDR"
)

// Cache benchmark parameters.
const (
	CacheValueSize   = 1024   // bytes of every []byte value
	CacheRemoteKeys  = 256    // keys cycled by the remote and local-tier cases
	CacheMemoryKeys  = 10_000 // keys cycled by the cache.Memory cases
	cacheTTL         = time.Hour
	cacheLocalTTL    = time.Minute
	goRedisLocalSize = 1000 // go-redis/cache's NewTinyLFU size, as in its README
)

// Cache groups: the rows of one group are compared with each other.
const (
	CacheGroupRedis     = "remote hit, Redis"
	CacheGroupMemcached = "remote hit, Memcached"
	CacheGroupLocal     = "local-tier hit"
	CacheGroupMemory    = "cache.Memory hit"
)

// Cache case names. cmd/compare keys its ratios and targets on them.
const (
	CacheRawGoRedis         = "raw go-redis GET"
	CacheRedisCache         = "ours rediscache.Get"
	CacheRedisLoader        = "ours Loader[[]byte] on rediscache"
	CacheGoRedisCache       = "go-redis/cache v9 Get"
	CacheEko                = "eko/gocache v4 Get (redis store)"
	CacheRawMemcache        = "raw gomemcache Get"
	CacheMemcachedCache     = "ours memcachedcache.Get"
	CacheMemcachedLoader    = "ours Loader[[]byte] on memcachedcache"
	CacheLocalLoader        = "ours Loader[[]byte], LocalTTL 1m"
	CacheLocalGoRedis       = "go-redis/cache v9, TinyLFU local cache, []byte"
	CacheLocalLoaderT       = "ours Loader[struct], LocalTTL 1m"
	CacheLocalGoRedisT      = "go-redis/cache v9, TinyLFU local cache, struct"
	CacheLocalLoaderREADME  = "ours Loader, README style"
	CacheLocalLoaderClosure = "ours Loader[struct], a load closure per call"
	CacheMemorySerial       = "ours cache.Memory Get, serial"
	CacheMemoryParallel     = "ours cache.Memory Get, RunParallel"
)

// A CacheCase is one cache benchmark.
type CacheCase struct {
	// Group is one of the CacheGroup constants.
	Group string
	// Name labels the case in reports.
	Name string
	// Bench is the sub-benchmark name: no spaces or slashes.
	Bench string
	// Ours marks scaleout's cache package.
	Ours bool
	// Parallel marks a b.RunParallel case.
	Parallel bool
	// Env is the environment variable naming the server the case needs,
	// "" for none.
	Env string
	// Config says in words what one op is, for the report.
	Config string
	// Build connects, writes the keys and returns the benchmark body. The
	// body checks every answer it times and fails the benchmark (b.Fatal)
	// on a wrong one; close releases what Build made.
	Build func(env *CacheEnv) (body func(*testing.B), close func(), err error)
}

// CacheUser is the small struct of the typed Loader and go-redis/cache
// rows.
type CacheUser struct {
	ID     int64
	Name   string
	Email  string
	Active bool
	Roles  []string
}

// CacheEnv holds the clients the cases share, and the key prefix of this
// run; Close deletes every key written under it.
type CacheEnv struct {
	RedisAddr, MemcachedAddr string
	Prefix                   string

	rdb *redis.Client
	mc  *memcache.Client
	mck []string // memcached keys to delete (raw keys, ours by their cache key)
	mcc []*memcachedcache.Cache
	mco [][]string
}

// NewCacheEnv reads the server addresses from the environment and
// connects to those that are set; an unset address leaves its cases to be
// skipped. It fails when a set server does not answer.
func NewCacheEnv() (*CacheEnv, error) {
	var buf [6]byte
	_, _ = rand.Read(buf[:])
	e := &CacheEnv{
		RedisAddr:     os.Getenv(RedisAddrEnv),
		MemcachedAddr: os.Getenv(MemcachedAddrEnv),
		Prefix:        "scaleoutbench:cache:" + hex.EncodeToString(buf[:]) + ":",
	}
	ctx := context.Background()
	if e.RedisAddr != "" {
		e.rdb = redis.NewClient(&redis.Options{Addr: e.RedisAddr, ContextTimeoutEnabled: true})
		if err := e.rdb.Ping(ctx).Err(); err != nil {
			_ = e.rdb.Close()
			return nil, fmt.Errorf("redis at %s ($%s): %w", e.RedisAddr, RedisAddrEnv, err)
		}
	}
	if e.MemcachedAddr != "" {
		e.mc = memcache.New(e.MemcachedAddr)
		if err := e.mc.Ping(); err != nil {
			if e.rdb != nil {
				_ = e.rdb.Close()
			}
			return nil, fmt.Errorf("memcached at %s ($%s): %w", e.MemcachedAddr, MemcachedAddrEnv, err)
		}
	}
	return e, nil
}

// Has reports whether the variable env names a server of e ("" always).
func (e *CacheEnv) Has(env string) bool {
	switch env {
	case RedisAddrEnv:
		return e.rdb != nil
	case MemcachedAddrEnv:
		return e.mc != nil
	}
	return true
}

// Close deletes the keys the cases wrote and closes the clients.
func (e *CacheEnv) Close() error {
	ctx := context.Background()
	var errs []error
	if e.rdb != nil {
		iter := e.rdb.Scan(ctx, 0, e.Prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		errs = append(errs, iter.Err())
		for len(keys) > 0 {
			n := min(len(keys), 1000)
			errs = append(errs, e.rdb.Del(ctx, keys[:n]...).Err())
			keys = keys[n:]
		}
		errs = append(errs, e.rdb.Close())
	}
	if e.mc != nil {
		for _, k := range e.mck {
			if err := e.mc.Delete(k); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
				errs = append(errs, err)
			}
		}
		for i, c := range e.mcc {
			errs = append(errs, c.Delete(ctx, e.mco[i]...))
		}
		errs = append(errs, e.mc.Close())
	}
	return errors.Join(errs...)
}

// CacheCases returns every cache case, in report order.
func CacheCases() []CacheCase {
	return []CacheCase{
		{Group: CacheGroupRedis, Name: CacheRawGoRedis, Bench: "raw-goredis", Env: RedisAddrEnv,
			Config: "`client.Get(ctx, k).Bytes()` (go-redis v9 `*redis.Client`, default options); value written with `SET`",
			Build:  serialCase(getRawGoRedis)},
		{Group: CacheGroupRedis, Name: CacheRedisCache, Bench: "rediscache", Ours: true, Env: RedisAddrEnv,
			Config: "`rediscache.New(client, Config{Prefix})` then `(*Cache).Get`; value written with its `Set`",
			Build:  serialCase(getRedisCache)},
		{Group: CacheGroupRedis, Name: CacheRedisLoader, Bench: "loader", Ours: true, Env: RedisAddrEnv,
			Config: "`cache.NewLoader[[]byte](rediscache, LoaderConfig{})` (no local tier) then `Get(ctx, k, 1h, load)`, " +
				"load failing the benchmark if called; value written with `(*Loader).Set`",
			Build: serialCase(getRedisLoader)},
		{Group: CacheGroupRedis, Name: CacheGoRedisCache, Bench: "go-redis-cache", Env: RedisAddrEnv,
			Config: "`cache.New(&Options{Redis: client})` (no LocalCache) then `Get(ctx, k, &[]byte)`; value written with its `Set`",
			Build:  serialCase(getGoRedisCache)},
		{Group: CacheGroupRedis, Name: CacheEko, Bench: "eko-gocache", Env: RedisAddrEnv,
			Config: "`cache.New[string](redis_store.NewRedis(client))` then `Get(ctx, k)` (string: the redis store returns " +
				"strings, and `Cache[[]byte]` would silently answer nil); value written with its `Set`",
			Build: serialCase(getEko)},

		{Group: CacheGroupMemcached, Name: CacheRawMemcache, Bench: "raw-gomemcache", Env: MemcachedAddrEnv,
			Config: "`client.Get(k)` (bradfitz/gomemcache, default options); value written with `client.Set`",
			Build:  serialCase(getRawMemcache)},
		{Group: CacheGroupMemcached, Name: CacheMemcachedCache, Bench: "memcachedcache", Ours: true, Env: MemcachedAddrEnv,
			Config: "`memcachedcache.New(client, Config{Prefix})` then `(*Cache).Get`; value written with its `Set`",
			Build:  serialCase(getMemcachedCache)},
		{Group: CacheGroupMemcached, Name: CacheMemcachedLoader, Bench: "loader", Ours: true, Env: MemcachedAddrEnv,
			Config: "`cache.NewLoader[[]byte](memcachedcache, LoaderConfig{})` then `Get(ctx, k, 1h, load)`, " +
				"load failing the benchmark if called; value written with `(*Loader).Set`",
			Build: serialCase(getMemcachedLoader)},

		{Group: CacheGroupLocal, Name: CacheLocalLoader, Bench: "loader-bytes", Ours: true, Env: RedisAddrEnv,
			Config: "`NewLoader[[]byte](rediscache, LoaderConfig{LocalTTL: time.Minute})`; every key read once before " +
				"the timer (filling the local tier), then deleted from Redis, so every timed Get is a local hit",
			Build: buildLocalLoaderBytes},
		{Group: CacheGroupLocal, Name: CacheLocalGoRedis, Bench: "go-redis-cache-bytes", Env: RedisAddrEnv,
			Config: "`cache.New(&Options{Redis: client, LocalCache: cache.NewTinyLFU(1000, time.Minute)})`, `Get(ctx, k, &[]byte)`; " +
				"filled and deleted from Redis as ours",
			Build: buildGoRedisCacheLocal},
		{Group: CacheGroupLocal, Name: CacheLocalLoaderT, Bench: "loader-struct", Ours: true, Env: RedisAddrEnv,
			Config: "`NewLoader[CacheUser](rediscache, LoaderConfig{LocalTTL: time.Minute})` (JSON codec), a 5-field struct; " +
				"filled and deleted from Redis as above",
			Build: buildLocalLoaderStruct},
		{Group: CacheGroupLocal, Name: CacheLocalGoRedisT, Bench: "go-redis-cache-struct", Env: RedisAddrEnv,
			Config: "go-redis/cache with the TinyLFU local cache as above, `Get(ctx, k, &CacheUser{})` (msgpack)",
			Build:  buildGoRedisCacheStruct},
		{Group: CacheGroupLocal, Name: CacheLocalLoaderREADME, Bench: "loader-readme", Ours: true, Env: RedisAddrEnv,
			Config: "the struct Loader above called as the README shows: `cache.GetWith(l, ctx, k, time.Hour, byKey, k)`, " +
				"`byKey` a `func(ctx, key string) (CacheUser, error)` made once, the key passed apart",
			Build: buildLocalLoaderStructCalling("localr:", getREADME)},
		{Group: CacheGroupLocal, Name: CacheLocalLoaderClosure, Bench: "loader-closure", Ours: true, Env: RedisAddrEnv,
			Config: "the struct Loader above called with a load closure made for each call: " +
				"`l.Get(ctx, k, time.Hour, func(ctx context.Context) (CacheUser, error) { return byKey(ctx, k) })`",
			Build: buildLocalLoaderStructCalling("localc:", getClosure)},

		{Group: CacheGroupMemory, Name: CacheMemorySerial, Bench: "serial", Ours: true,
			Config: "`cache.NewMemory(MemoryConfig{})`, 10,000 keys of 1 KiB, `Get` from one goroutine",
			Build:  buildMemory(false)},
		{Group: CacheGroupMemory, Name: CacheMemoryParallel, Bench: "parallel", Ours: true, Parallel: true,
			Config: "the same Memory, `Get` under `b.RunParallel` (GOMAXPROCS goroutines)",
			Build:  buildMemory(true)},
	}
}

// cacheValue returns a fresh random 1 KiB value.
func cacheValue() []byte {
	v := make([]byte, CacheValueSize)
	_, _ = rand.Read(v)
	return v
}

func cacheUser(i int) CacheUser {
	return CacheUser{
		ID: int64(i), Name: fmt.Sprintf("user %d", i), Email: fmt.Sprintf("user%d@example.com", i), Active: true,
		Roles: []string{"reader", "writer"},
	}
}

// cacheKeys returns n keys under prefix.
func cacheKeys(prefix string, n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("%suser:%06d", prefix, i)
	}
	return ks
}

// serialBody returns a body that calls get on the keys in turn, b.N
// times, failing on an error or a value of the wrong size (size < 0: not
// checked).
func serialBody(keys []string, size int, get func(k string) (int, error), after func(*testing.B)) func(*testing.B) {
	return serialBodyAround(keys, size, get, func(*testing.B) func(*testing.B) { return after })
}

// serialBodyAround is serialBody that calls around before the timer on
// every run of the body (a body runs once per b.N tried), and the check
// it returns after the loop.
func serialBodyAround(keys []string, size int, get func(k string) (int, error), around func(*testing.B) func(*testing.B)) func(*testing.B) {
	return func(b *testing.B) {
		after := around(b)
		b.ReportAllocs()
		j := 0
		b.ResetTimer()
		for range b.N {
			n, err := get(keys[j])
			if err != nil {
				b.Fatalf("get %s: %v", keys[j], err)
			}
			if size >= 0 && n != size {
				b.Fatalf("get %s: %d bytes, want %d", keys[j], n, size)
			}
			if j++; j == len(keys) {
				j = 0
			}
		}
		b.StopTimer()
		if after != nil {
			after(b)
		}
	}
}

// checkAll reads every key once through get, before any timing.
func checkAll(keys []string, size int, get func(k string) (int, error)) error {
	for _, k := range keys {
		n, err := get(k)
		if err != nil {
			return fmt.Errorf("get %s: %w", k, err)
		}
		if size >= 0 && n != size {
			return fmt.Errorf("get %s: %d bytes, want %d", k, n, size)
		}
	}
	return nil
}

// A cacheGetter is one library's Get hit on its own keys, written before
// by the library's own Set: what the per-row bodies (serialCase) and the
// interleaved body time.
type cacheGetter struct {
	keys []string
	size int // bytes (or roles) every answer must have
	get  func(k string) (int, error)
	// around runs before the timer of every run of a body (a body runs
	// once per b.N tried) and returns the check to run after its loop,
	// nil for none.
	around func(*testing.B) func(*testing.B)
	close  func()
}

// newGetter is a cacheGetter of 1 KiB values without checks of its own,
// after reading every key once.
func newGetter(keys []string, get func(k string) (int, error)) (*cacheGetter, error) {
	if err := checkAll(keys, CacheValueSize, get); err != nil {
		return nil, err
	}
	return &cacheGetter{keys: keys, size: CacheValueSize, get: get, around: noAround, close: func() {}}, nil
}

func noAround(*testing.B) func(*testing.B) { return nil }

// A getterFunc builds one library's getter; tag is added to its key
// prefix, so the per-row and the interleaved cases of one CacheEnv write
// different keys.
type getterFunc func(e *CacheEnv, tag string) (*cacheGetter, error)

// serialCase is the CacheCase.Build of a per-row case: the getter alone,
// b.N Gets in a row.
func serialCase(get getterFunc) func(*CacheEnv) (func(*testing.B), func(), error) {
	return func(e *CacheEnv) (func(*testing.B), func(), error) {
		g, err := get(e, "")
		if err != nil {
			return nil, nil, err
		}
		return serialBodyAround(g.keys, g.size, g.get, g.around), g.close, nil
	}
}

// A CacheInterleaved is the interleaved measurement of one store's remote
// rows. Rows benchmarked one after the other each get their own window of
// a shared machine, whose round trip moves by several times between
// windows, so ratios of such rows are noise. The interleaved body does,
// in each iteration, one Get with every library in turn (each on its own
// keys, the same key index for all), the starting library rotating every
// iteration, and times each call alone with time.Now: every library sees
// the same stretch of the machine. It reports each library's median ns per
// Get as the metric "<Bench of the library's case>-ns/op" and every Ratio
// under its Unit; its ns/op is the time of one whole iteration.
type CacheInterleaved struct {
	// Group is the CacheGroup of the rows, Bench the sub-benchmark name.
	Group, Bench string
	// Env is the environment variable naming the server.
	Env string
	// Libs are the CacheCase names measured, in their iteration order.
	Libs []string
	// Ratios are the ratios of median ns reported.
	Ratios []CacheRatio
	// Build connects, writes the keys and returns the benchmark body,
	// which fails the benchmark on a wrong answer and, for the Loaders,
	// when load was called or the Loader's miss counters moved.
	Build func(env *CacheEnv) (body func(*testing.B), close func(), err error)
}

// A CacheRatio is median ns per Get of case Num over case Den, reported
// under the metric Unit.
type CacheRatio struct {
	Num, Den, Unit string
}

// CacheMetric is the metric under which the interleaved body reports the
// median ns per Get of the case with sub-benchmark name bench.
func CacheMetric(bench string) string { return bench + "-ns/op" }

// CacheInterleavedCases returns the interleaved measurements, Redis then
// Memcached.
func CacheInterleavedCases() []CacheInterleaved {
	redisLibs := []string{CacheRawGoRedis, CacheRedisCache, CacheRedisLoader, CacheGoRedisCache, CacheEko}
	mcLibs := []string{CacheRawMemcache, CacheMemcachedCache, CacheMemcachedLoader}
	return []CacheInterleaved{
		{Group: CacheGroupRedis, Bench: "redis", Env: RedisAddrEnv, Libs: redisLibs,
			Ratios: []CacheRatio{
				{CacheRedisLoader, CacheRawGoRedis, "loader/raw"},
				{CacheRedisLoader, CacheGoRedisCache, "loader/go-redis-cache"},
				{CacheRedisLoader, CacheEko, "loader/eko-gocache"},
				{CacheRedisCache, CacheRawGoRedis, "rediscache/raw"},
				{CacheGoRedisCache, CacheRawGoRedis, "go-redis-cache/raw"},
				{CacheEko, CacheRawGoRedis, "eko-gocache/raw"},
			},
			Build: interleavedCase(redisLibs)},
		{Group: CacheGroupMemcached, Bench: "memcached", Env: MemcachedAddrEnv, Libs: mcLibs,
			Ratios: []CacheRatio{
				{CacheMemcachedLoader, CacheRawMemcache, "loader/raw"},
				{CacheMemcachedCache, CacheRawMemcache, "memcachedcache/raw"},
			},
			Build: interleavedCase(mcLibs)},
	}
}

// interleavedGetters are the getters of the remote cases, by name.
var interleavedGetters = map[string]getterFunc{
	CacheRawGoRedis:      getRawGoRedis,
	CacheRedisCache:      getRedisCache,
	CacheRedisLoader:     getRedisLoader,
	CacheGoRedisCache:    getGoRedisCache,
	CacheEko:             getEko,
	CacheRawMemcache:     getRawMemcache,
	CacheMemcachedCache:  getMemcachedCache,
	CacheMemcachedLoader: getMemcachedLoader,
}

// cacheCaseBench is the sub-benchmark name of the case named name.
func cacheCaseBench(name string) string {
	for _, cc := range CacheCases() {
		if cc.Name == name {
			return cc.Bench
		}
	}
	panic("no cache case " + name)
}

// interleavedCase builds the interleaved body over the cases named libs
// (and the ratios of the CacheInterleaved it is found in).
func interleavedCase(libs []string) func(*CacheEnv) (func(*testing.B), func(), error) {
	return func(e *CacheEnv) (func(*testing.B), func(), error) {
		var gs []*cacheGetter
		closeAll := func() {
			for _, g := range gs {
				g.close()
			}
		}
		for _, name := range libs {
			g, err := interleavedGetters[name](e, "il-")
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("%s: %w", name, err)
			}
			gs = append(gs, g)
		}
		var ratios []CacheRatio
		for _, il := range CacheInterleavedCases() {
			if slices.Equal(il.Libs, libs) {
				ratios = il.Ratios
			}
		}
		return interleavedBody(libs, gs, ratios), closeAll, nil
	}
}

func interleavedBody(libs []string, gs []*cacheGetter, ratios []CacheRatio) func(*testing.B) {
	metric := make([]string, len(libs))
	index := map[string]int{}
	for i, name := range libs {
		metric[i] = CacheMetric(cacheCaseBench(name))
		index[name] = i
	}
	return func(b *testing.B) {
		afters := make([]func(*testing.B), len(gs))
		for i, g := range gs {
			afters[i] = g.around(b)
		}
		n, j := len(gs), 0
		took := make([][]time.Duration, n)
		for l := range took {
			took[l] = make([]time.Duration, 0, b.N)
		}
		b.ResetTimer()
		for i := range b.N {
			first := i % n
			for o := range n {
				l := first + o
				if l >= n {
					l -= n
				}
				g := gs[l]
				t0 := time.Now()
				got, err := g.get(g.keys[j])
				took[l] = append(took[l], time.Since(t0))
				if err != nil {
					b.Fatalf("%s: get %s: %v", libs[l], g.keys[j], err)
				}
				if got != g.size {
					b.Fatalf("%s: get %s: %d bytes, want %d", libs[l], g.keys[j], got, g.size)
				}
			}
			if j++; j == CacheRemoteKeys {
				j = 0
			}
		}
		b.StopTimer()
		for _, after := range afters {
			if after != nil {
				after(b)
			}
		}
		// Medians, not means: on a shared machine one scheduler stall
		// during one library's call would otherwise skew a whole run.
		median := make([]float64, n)
		for l := range n {
			slices.Sort(took[l])
			median[l] = float64(took[l][len(took[l])/2].Nanoseconds())
			b.ReportMetric(median[l], metric[l])
		}
		for _, r := range ratios {
			b.ReportMetric(median[index[r.Num]]/median[index[r.Den]], r.Unit)
		}
	}
}

var ctxBg = context.Background()

func getRawGoRedis(e *CacheEnv, tag string) (*cacheGetter, error) {
	keys := cacheKeys(e.Prefix+tag+"raw:", CacheRemoteKeys)
	for _, k := range keys {
		if err := e.rdb.Set(ctxBg, k, cacheValue(), cacheTTL).Err(); err != nil {
			return nil, err
		}
	}
	get := func(k string) (int, error) {
		v, err := e.rdb.Get(ctxBg, k).Bytes()
		return len(v), err
	}
	return newGetter(keys, get)
}

func getRedisCache(e *CacheEnv, tag string) (*cacheGetter, error) {
	rc, err := rediscache.New(e.rdb, rediscache.Config{Prefix: e.Prefix + tag + "rc:"})
	if err != nil {
		return nil, err
	}
	keys := cacheKeys("", CacheRemoteKeys)
	for _, k := range keys {
		if err := rc.Set(ctxBg, k, cacheValue(), cacheTTL); err != nil {
			return nil, err
		}
	}
	get := func(k string) (int, error) {
		v, err := rc.Get(ctxBg, k)
		return len(v), err
	}
	return newGetter(keys, get)
}

// errLoadCalled is what the load functions of the hit benchmarks return:
// they must never run.
var errLoadCalled = errors.New("load called on a benchmark that only hits")

// loaderBody builds the body of a Loader case: keys are written with Set
// (fill nil) or also read once into the local tier and then removed from
// the remote store by fill, and the body fails if load ever runs or the
// Loader saw a miss.
func loaderBody[T any](oc cache.ObjectCache, cfg cache.LoaderConfig[T], keys []string, val func(i int) T,
	size func(T) int, wantSize int, fill func([]string) error) (func(*testing.B), func(), error) {
	g, err := loaderGetter(oc, cfg, keys, val, size, wantSize, fill)
	if err != nil {
		return nil, nil, err
	}
	return serialBodyAround(g.keys, g.size, g.get, g.around), g.close, nil
}

// loaderGetter is loaderBody's Loader as a cacheGetter: its around checks,
// after every run of a body, that load never ran and that the Loader's
// miss, error and load counters did not move (and, with a local tier,
// that every Get of the run was a local hit).
func loaderGetter[T any](oc cache.ObjectCache, cfg cache.LoaderConfig[T], keys []string, val func(i int) T,
	size func(T) int, wantSize int, fill func([]string) error) (*cacheGetter, error) {
	return loaderGetterCalling(oc, cfg, keys, val, size, wantSize, fill, getPrebuilt[T])
}

// A loaderCall makes the Get of a case from its Loader and the load
// function of a key (which fails the run when called): the style in which
// the case calls the Loader.
type loaderCall[T any] func(l *cache.Loader[T], load func(ctx context.Context, key string) (T, error)) func(k string) (T, error)

// getPrebuilt calls Get with a load function made once, before the timer.
func getPrebuilt[T any](l *cache.Loader[T], load func(context.Context, string) (T, error)) func(string) (T, error) {
	once := func(ctx context.Context) (T, error) { return load(ctx, "") }
	return func(k string) (T, error) { return l.Get(ctxBg, k, cacheTTL, once) }
}

// loaderGetterCalling is loaderGetter calling the Loader through call.
func loaderGetterCalling[T any](oc cache.ObjectCache, cfg cache.LoaderConfig[T], keys []string, val func(i int) T,
	size func(T) int, wantSize int, fill func([]string) error, call loaderCall[T]) (*cacheGetter, error) {
	l, err := cache.NewLoader(oc, cfg)
	if err != nil {
		return nil, err
	}
	var calls atomic.Int64
	load := func(context.Context, string) (T, error) {
		calls.Add(1)
		var zero T
		return zero, errLoadCalled
	}
	lget := call(l, load)
	get := func(k string) (int, error) {
		v, err := lget(k)
		return size(v), err
	}
	setup := func() error {
		for i, k := range keys {
			if err := l.Set(ctxBg, k, val(i), cacheTTL); err != nil {
				return err
			}
		}
		if err := checkAll(keys, wantSize, get); err != nil {
			return err
		}
		if fill != nil {
			// The local tier now holds every key: take them away from
			// the remote store, so that a Get that is not a local hit
			// fails.
			return fill(keys)
		}
		return nil
	}
	if err := setup(); err != nil {
		_ = l.Close()
		return nil, err
	}
	around := func(b *testing.B) func(*testing.B) {
		if fill != nil {
			// Fill the local tier afresh on every run: entries live
			// LocalTTL, and a run may come more than LocalTTL after the
			// last fill.
			if err := setup(); err != nil {
				b.Fatal(err)
			}
		}
		st0 := l.Stats()
		return func(b *testing.B) {
			if n := calls.Load(); n > 0 {
				b.Fatalf("load called %d times", n)
			}
			st := l.Stats()
			if st.Misses != st0.Misses || st.CacheErrors != st0.CacheErrors || st.Loads != st0.Loads {
				b.Fatalf("loader stats moved: before %+v, after %+v", st0, st)
			}
			if cfg.LocalTTL > 0 && st.LocalHits-st0.LocalHits != uint64(b.N) {
				b.Fatalf("%d local hits in %d Gets", st.LocalHits-st0.LocalHits, b.N)
			}
		}
	}
	return &cacheGetter{keys: keys, size: wantSize, get: get, around: around, close: func() { _ = l.Close() }}, nil
}

func bytesLen(v []byte) int { return len(v) }

func randomValue(int) []byte { return cacheValue() }

func getRedisLoader(e *CacheEnv, tag string) (*cacheGetter, error) {
	rc, err := rediscache.New(e.rdb, rediscache.Config{Prefix: e.Prefix + tag + "loader:"})
	if err != nil {
		return nil, err
	}
	return loaderGetter(rc, cache.LoaderConfig[[]byte]{}, cacheKeys("", CacheRemoteKeys), randomValue, bytesLen,
		CacheValueSize, nil)
}

// delRedis deletes keys (under prefix) from Redis.
func (e *CacheEnv) delRedis(prefix string) func([]string) error {
	return func(keys []string) error {
		full := make([]string, len(keys))
		for i, k := range keys {
			full[i] = prefix + k
		}
		return e.rdb.Del(ctxBg, full...).Err()
	}
}

func buildLocalLoaderBytes(e *CacheEnv) (func(*testing.B), func(), error) {
	p := e.Prefix + "local:"
	rc, err := rediscache.New(e.rdb, rediscache.Config{Prefix: p})
	if err != nil {
		return nil, nil, err
	}
	return loaderBody(rc, cache.LoaderConfig[[]byte]{LocalTTL: cacheLocalTTL}, cacheKeys("", CacheRemoteKeys),
		randomValue, bytesLen, CacheValueSize, e.delRedis(p))
}

func buildLocalLoaderStruct(e *CacheEnv) (func(*testing.B), func(), error) {
	return buildLocalLoaderStructCalling("localt:", getPrebuilt[CacheUser])(e)
}

// buildLocalLoaderStructCalling is buildLocalLoaderStruct, under its own
// key prefix, calling the Loader through call.
func buildLocalLoaderStructCalling(prefix string, call loaderCall[CacheUser]) func(*CacheEnv) (func(*testing.B), func(), error) {
	return func(e *CacheEnv) (func(*testing.B), func(), error) {
		p := e.Prefix + prefix
		rc, err := rediscache.New(e.rdb, rediscache.Config{Prefix: p})
		if err != nil {
			return nil, nil, err
		}
		g, err := loaderGetterCalling(rc, cache.LoaderConfig[CacheUser]{LocalTTL: cacheLocalTTL}, cacheKeys("", CacheRemoteKeys),
			cacheUser, func(u CacheUser) int { return len(u.Roles) }, 2, e.delRedis(p), call)
		if err != nil {
			return nil, nil, err
		}
		return serialBodyAround(g.keys, g.size, g.get, g.around), g.close, nil
	}
}

// getREADME calls GetWith as the README shows: the load function made
// once, the key passed apart.
func getREADME(l *cache.Loader[CacheUser], load func(context.Context, string) (CacheUser, error)) func(string) (CacheUser, error) {
	return func(k string) (CacheUser, error) { return cache.GetWith(l, ctxBg, k, cacheTTL, load, k) }
}

// getClosure calls Get with a load closure made for each call, binding
// its key: the style GetWith replaces.
func getClosure(l *cache.Loader[CacheUser], load func(context.Context, string) (CacheUser, error)) func(string) (CacheUser, error) {
	return func(k string) (CacheUser, error) {
		return l.Get(ctxBg, k, cacheTTL, func(ctx context.Context) (CacheUser, error) { return load(ctx, k) })
	}
}

// getGoRedisCache is go-redis/cache without a local cache: every Get is
// a round trip.
func getGoRedisCache(e *CacheEnv, tag string) (*cacheGetter, error) {
	c := gocache.New(&gocache.Options{Redis: e.rdb})
	keys := cacheKeys(e.Prefix+tag+"goredis:", CacheRemoteKeys)
	for _, k := range keys {
		if err := c.Set(&gocache.Item{Ctx: ctxBg, Key: k, Value: cacheValue(), TTL: cacheTTL}); err != nil {
			return nil, err
		}
	}
	get := func(k string) (int, error) {
		var v []byte
		err := c.Get(ctxBg, k, &v)
		return len(v), err
	}
	return newGetter(keys, get)
}

// buildGoRedisCacheLocal is go-redis/cache with its TinyLFU local cache,
// every key read into it and then deleted from Redis.
func buildGoRedisCacheLocal(e *CacheEnv) (func(*testing.B), func(), error) {
	var c *gocache.Cache
	keys := cacheKeys(e.Prefix+"goredislocal:", CacheRemoteKeys)
	get := func(k string) (int, error) {
		var v []byte
		err := c.Get(ctxBg, k, &v)
		return len(v), err
	}
	setup := func() error {
		// A new cache (and local cache) on every fill: go-tinylfu's
		// Set of a key it holds adds a second entry, whose eviction
		// later drops the key.
		c = gocache.New(&gocache.Options{Redis: e.rdb, LocalCache: gocache.NewTinyLFU(goRedisLocalSize, cacheLocalTTL)})
		for _, k := range keys {
			if err := c.Set(&gocache.Item{Ctx: ctxBg, Key: k, Value: cacheValue(), TTL: cacheTTL}); err != nil {
				return err
			}
		}
		if err := checkAll(keys, CacheValueSize, get); err != nil {
			return err
		}
		return e.rdb.Del(ctxBg, keys...).Err()
	}
	if err := setup(); err != nil {
		return nil, nil, err
	}
	return serialBodyAround(keys, CacheValueSize, get, refill(setup)), func() {}, nil
}

// refill runs setup before the timer of every run of a local-tier body:
// local entries live a minute, and a run may come more than a minute
// after the last fill.
func refill(setup func() error) func(*testing.B) func(*testing.B) {
	return func(b *testing.B) func(*testing.B) {
		if err := setup(); err != nil {
			b.Fatal(err)
		}
		return nil
	}
}

func buildGoRedisCacheStruct(e *CacheEnv) (func(*testing.B), func(), error) {
	var c *gocache.Cache
	keys := cacheKeys(e.Prefix+"goredislocalt:", CacheRemoteKeys)
	get := func(k string) (int, error) {
		var u CacheUser
		err := c.Get(ctxBg, k, &u)
		return len(u.Roles), err
	}
	setup := func() error {
		// A new cache on every fill, as for []byte.
		c = gocache.New(&gocache.Options{Redis: e.rdb, LocalCache: gocache.NewTinyLFU(goRedisLocalSize, cacheLocalTTL)})
		for i, k := range keys {
			if err := c.Set(&gocache.Item{Ctx: ctxBg, Key: k, Value: cacheUser(i), TTL: cacheTTL}); err != nil {
				return err
			}
		}
		if err := checkAll(keys, 2, get); err != nil {
			return err
		}
		return e.rdb.Del(ctxBg, keys...).Err()
	}
	if err := setup(); err != nil {
		return nil, nil, err
	}
	return serialBodyAround(keys, 2, get, refill(setup)), func() {}, nil
}

func getEko(e *CacheEnv, tag string) (*cacheGetter, error) {
	c := ekocache.New[string](ekoredis.NewRedis(e.rdb))
	keys := cacheKeys(e.Prefix+tag+"eko:", CacheRemoteKeys)
	for _, k := range keys {
		if err := c.Set(ctxBg, k, string(cacheValue()), ekostore.WithExpiration(cacheTTL)); err != nil {
			return nil, err
		}
	}
	get := func(k string) (int, error) {
		v, err := c.Get(ctxBg, k)
		return len(v), err
	}
	return newGetter(keys, get)
}

// mcPrefix is the key prefix of one memcached case.
func (e *CacheEnv) mcPrefix(part string) string { return e.Prefix + part + ":" }

func getRawMemcache(e *CacheEnv, tag string) (*cacheGetter, error) {
	keys := cacheKeys(e.mcPrefix(tag+"raw"), CacheRemoteKeys)
	e.mck = append(e.mck, keys...)
	for _, k := range keys {
		if err := e.mc.Set(&memcache.Item{Key: k, Value: cacheValue(), Expiration: int32(cacheTTL / time.Second)}); err != nil {
			return nil, err
		}
	}
	get := func(k string) (int, error) {
		it, err := e.mc.Get(k)
		if err != nil {
			return 0, err
		}
		return len(it.Value), nil
	}
	return newGetter(keys, get)
}

func (e *CacheEnv) memcachedCache(part string, keys []string) (*memcachedcache.Cache, error) {
	c, err := memcachedcache.New(e.mc, memcachedcache.Config{Prefix: e.mcPrefix(part)})
	if err != nil {
		return nil, err
	}
	e.mcc = append(e.mcc, c)
	e.mco = append(e.mco, keys)
	return c, nil
}

func getMemcachedCache(e *CacheEnv, tag string) (*cacheGetter, error) {
	keys := cacheKeys("", CacheRemoteKeys)
	c, err := e.memcachedCache(tag+"mcc", keys)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := c.Set(ctxBg, k, cacheValue(), cacheTTL); err != nil {
			return nil, err
		}
	}
	get := func(k string) (int, error) {
		v, err := c.Get(ctxBg, k)
		return len(v), err
	}
	return newGetter(keys, get)
}

func getMemcachedLoader(e *CacheEnv, tag string) (*cacheGetter, error) {
	keys := cacheKeys("", CacheRemoteKeys)
	c, err := e.memcachedCache(tag+"mcloader", keys)
	if err != nil {
		return nil, err
	}
	return loaderGetter(c, cache.LoaderConfig[[]byte]{}, keys, randomValue, bytesLen, CacheValueSize, nil)
}

func buildMemory(parallel bool) func(e *CacheEnv) (func(*testing.B), func(), error) {
	return func(*CacheEnv) (func(*testing.B), func(), error) {
		m, err := cache.NewMemory(cache.MemoryConfig{})
		if err != nil {
			return nil, nil, err
		}
		keys := cacheKeys("", CacheMemoryKeys)
		for _, k := range keys {
			if err := m.Set(ctxBg, k, cacheValue(), 0); err != nil {
				return nil, nil, err
			}
		}
		get := func(k string) (int, error) {
			v, err := m.Get(ctxBg, k)
			return len(v), err
		}
		if err := checkAll(keys, CacheValueSize, get); err != nil {
			return nil, nil, err
		}
		if !parallel {
			return serialBody(keys, CacheValueSize, get, nil), func() { m.Clear() }, nil
		}
		var start atomic.Uint64
		body := func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				// Each goroutine starts at its own place in the keys.
				j := int(start.Add(7919) % uint64(len(keys)))
				for pb.Next() {
					v, err := m.Get(ctxBg, keys[j])
					if err != nil || len(v) != CacheValueSize {
						b.Errorf("get %s: %d bytes, %v", keys[j], len(v), err)
						return
					}
					if j++; j == len(keys) {
						j = 0
					}
				}
			})
		}
		return body, func() { m.Clear() }, nil
	}
}
