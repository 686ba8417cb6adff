package impls

// Local tier: cache.Memory (the store behind it and behind a Loader's
// LocalTTL tier) side by side with github.com/maypok86/otter/v2, the
// well-kept W-TinyLFU cache for Go, to decide whether the hand-written
// store earns its keep. Shared by localtier_bench_test.go and
// cmd/compare.
//
// Each implementation is reached through the LocalTier interface, so call
// overhead is equal. Values are []byte and are copied on Set and on Get
// on both sides: Memory promises copies, and a Memory built on otter
// would have to copy too.

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"

	"github.com/scaleout/scaleout/cache"
)

// LocalTier is what the comparison drives: a get of a key, and a set
// with a TTL (0: none).
type LocalTier interface {
	Get(key string) ([]byte, bool)
	Set(key string, v []byte, ttl time.Duration)
	Len() int
}

// LocalTierImpl is one implementation under test; New makes one bounded
// to capacity entries.
type LocalTierImpl struct {
	Name   string // report row
	Bench  string // sub-benchmark name
	Config string
	Ours   bool
	TTL    time.Duration // the TTL its Sets pass
	New    func(capacity int) LocalTier
}

// Local tier implementation names.
const (
	LocalOurs        = "ours cache.Memory"
	LocalOursTTL     = "ours cache.Memory, per-entry TTL"
	LocalOtter       = "otter v2, defaults"
	LocalOtterTuned  = "otter v2, tuned"
	LocalOtterDropIn = "otter v2, as Memory's store"
)

// LocalTierImpls returns the implementations, ours first.
func LocalTierImpls() []LocalTierImpl {
	return []LocalTierImpl{
		{Name: LocalOurs, Bench: "ours", Ours: true,
			Config: "`cache.NewMemory(MemoryConfig{MaxEntries: n})` (default shards and policy, W-TinyLFU), `Set(ctx, k, v, 0)`",
			New:    newMemoryTier},
		{Name: LocalOursTTL, Bench: "ours-ttl", Ours: true, TTL: time.Hour,
			Config: "the same, `Set(ctx, k, v, time.Hour)`: what a Loader's local tier does",
			New:    newMemoryTier},
		{Name: LocalOtter, Bench: "otter",
			Config: "`otter.Must(&Options[string, []byte]{MaximumSize: n})`, `GetIfPresent`, `Set`",
			New: func(n int) LocalTier {
				return otterTier{otter.Must(&otter.Options[string, []byte]{MaximumSize: n})}
			}},
		{Name: LocalOtterTuned, Bench: "otter-tuned",
			Config: "as defaults plus `InitialCapacity: n` (the hash table never grows); otter has no policy knobs (its W-TinyLFU window adapts by itself)",
			New: func(n int) LocalTier {
				return otterTier{otter.Must(&otter.Options[string, []byte]{MaximumSize: n, InitialCapacity: n})}
			}},
		{Name: LocalOtterDropIn, Bench: "otter-dropin", TTL: time.Hour,
			Config: "what Memory needs of it: tuned, plus a TTL per entry (`ExpiryWritingFunc` reading it from the value), " +
				"and hit, miss and eviction counts (`StatsRecorder: stats.NewCounter()`); `Set(ctx, k, v, time.Hour)`. Its default Executor " +
				"(maintenance on goroutines of its own, and with expiry a clean-up goroutine ticking every second) is kept: it is otter's fastest, " +
				"though Memory promises no goroutines",
			New: newOtterDropIn},
	}
}

type memoryTier struct{ m *cache.Memory }

func newMemoryTier(n int) LocalTier {
	m, err := cache.NewMemory(cache.MemoryConfig{MaxEntries: n})
	if err != nil {
		panic(err)
	}
	return memoryTier{m}
}

func (t memoryTier) Get(k string) ([]byte, bool) {
	v, err := t.m.Get(ctxBg, k)
	return v, err == nil
}

func (t memoryTier) Set(k string, v []byte, ttl time.Duration) {
	if err := t.m.Set(ctxBg, k, v, ttl); err != nil {
		panic(err)
	}
}

func (t memoryTier) Len() int { return t.m.Stats().Entries }

type otterTier struct{ c *otter.Cache[string, []byte] }

func (t otterTier) Get(k string) ([]byte, bool) {
	v, ok := t.c.GetIfPresent(k)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), v...), true
}

func (t otterTier) Set(k string, v []byte, _ time.Duration) {
	t.c.Set(k, append([]byte(nil), v...))
}

func (t otterTier) Len() int { return t.c.EstimatedSize() }

// ttlValue is a value with the TTL it was set for, read by the drop-in's
// expiry calculator: Memory's TTL is per Set.
type ttlValue struct {
	v   []byte
	ttl time.Duration
}

type otterDropIn struct {
	c *otter.Cache[string, ttlValue]
}

func newOtterDropIn(n int) LocalTier {
	return otterDropIn{otter.Must(&otter.Options[string, ttlValue]{
		MaximumSize:     n,
		InitialCapacity: n,
		StatsRecorder:   stats.NewCounter(),
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, ttlValue]) time.Duration {
			if e.Value.ttl <= 0 {
				return 1<<63 - 1 // no expiry
			}
			return e.Value.ttl
		}),
	})}
}

func (t otterDropIn) Get(k string) ([]byte, bool) {
	v, ok := t.c.GetIfPresent(k)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), v.v...), true
}

func (t otterDropIn) Set(k string, v []byte, ttl time.Duration) {
	t.c.Set(k, ttlValue{append([]byte(nil), v...), ttl})
}

func (t otterDropIn) Len() int { return t.c.EstimatedSize() }

// Local tier benchmark parameters.
const (
	LocalValueSize   = 16      // bytes of every value of the speed and memory measurements
	LocalHitKeys     = 10_000  // keys read by the hit benchmarks, in a cache of 2×
	LocalMissKeys    = 1 << 20 // keys cycled by the miss+set benchmark, in a cache of LocalHitKeys
	LocalMemEntries  = 100_000 // entries of the memory measurement
	LocalRatioKeys   = 100_000 // the hit-ratio traces' key universe
	LocalRatioLength = 500_000 // and their requests (the scan trace adds a third)
)

// LocalRatioCapacities are the cache sizes of the hit-ratio table: 0.5%,
// 2% and 10% of the universe.
var LocalRatioCapacities = []int{500, 2_000, 10_000}

func localKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	return keys
}

// LocalOp is one per-op measurement: Prepare makes a cache for it and
// returns a function doing n ops on it, so that benchmarks (one op per
// b.N) and cmd/compare's interleaved blocks run the same code.
type LocalOp struct {
	Name    string
	Prepare func(im LocalTierImpl) (func(n int), error)
}

// LocalOps: a Get hit of a 16-byte value, from one goroutine and from
// GOMAXPROCS (n split between them), LocalHitKeys keys in a cache of
// twice as many; and a Get miss followed by a Set of that key (cache-aside
// filling), on keys that come back only after LocalMissKeys others, in a
// full cache of LocalHitKeys, so every Get misses (a W-TinyLFU may keep
// a key that long: under 1% of hits is tolerated) and every Set makes the
// cache evict or decline an entry.
var LocalOps = []LocalOp{
	{"hit, serial", func(im LocalTierImpl) (func(int), error) { return localHit(im, 1) }},
	{"hit, GOMAXPROCS goroutines", func(im LocalTierImpl) (func(int), error) { return localHit(im, runtime.GOMAXPROCS(0)) }},
	{"miss + set", localMissSet},
}

func localHit(im LocalTierImpl, goroutines int) (func(int), error) {
	keys := localKeys("bench:key:", LocalHitKeys)
	t := im.New(2 * LocalHitKeys)
	val := make([]byte, LocalValueSize)
	for _, k := range keys {
		t.Set(k, val, im.TTL)
	}
	for _, k := range keys {
		if _, ok := t.Get(k); !ok {
			return nil, fmt.Errorf("%s: %s missing after fill", im.Name, k)
		}
	}
	var errs atomic.Int64
	cursors := make([]int, goroutines)
	for g := range cursors {
		cursors[g] = g * 7919 % len(keys)
	}
	get := func(g, n int) {
		i := cursors[g]
		for range n {
			if v, ok := t.Get(keys[i]); !ok || len(v) != LocalValueSize {
				errs.Add(1)
			}
			if i++; i == len(keys) {
				i = 0
			}
		}
		cursors[g] = i
	}
	return func(n int) {
		if goroutines == 1 {
			get(0, n)
		} else {
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() { get(g, (n+goroutines-1)/goroutines) })
			}
			wg.Wait()
		}
		if errs.Load() > 0 {
			panic(fmt.Sprintf("%s: %d hits missed", im.Name, errs.Load()))
		}
	}, nil
}

func localMissSet(im LocalTierImpl) (func(int), error) {
	keys := localKeys("bench:miss:", LocalMissKeys)
	t := im.New(LocalHitKeys)
	val := make([]byte, LocalValueSize)
	for _, k := range keys[LocalMissKeys-2*LocalHitKeys:] { // full, and warm
		t.Set(k, val, im.TTL)
	}
	i, ops, hits := 0, 0, 0
	return func(n int) {
		for range n {
			if _, ok := t.Get(keys[i]); ok {
				hits++
			} else {
				t.Set(keys[i], val, im.TTL)
			}
			if i++; i == len(keys) {
				i = 0
			}
		}
		if ops += n; ops > 10_000 && hits > ops/100 {
			panic(fmt.Sprintf("%s: %d hits in %d miss + set ops", im.Name, hits, ops))
		}
	}, nil
}

// LocalBench returns the benchmark of op on im: b.N ops.
func LocalBench(op LocalOp, im LocalTierImpl) func(*testing.B) {
	return func(b *testing.B) {
		run, err := op.Prepare(im)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		run(b.N)
	}
}

// LocalBytesPerEntry fills a cache bounded to LocalMemEntries with as
// many entries of LocalValueSize bytes and returns the heap growth
// (runtime.MemStats.HeapAlloc after a GC, the keys allocated before the
// baseline and so not counted) over the entries it holds.
func LocalBytesPerEntry(im LocalTierImpl) float64 {
	keys := localKeys("bench:mem:", LocalMemEntries)
	val := make([]byte, LocalValueSize)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	t := im.New(LocalMemEntries)
	for _, k := range keys {
		t.Set(k, val, im.TTL)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	n := t.Len()
	runtime.KeepAlive(t)
	runtime.KeepAlive(keys)
	if n == 0 {
		return 0
	}
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// LocalTraces are the hit-ratio traces: Zipf(1.01) over LocalRatioKeys
// keys, and the same with one-off keys of a sequential scan (never
// requested again) interleaved one after each Zipf request through the
// middle third, as in the cache package's TestHitRatio.
func LocalTraces() []LocalTrace {
	z := zipfTrace(LocalRatioKeys, LocalRatioLength, 1)
	scan := LocalRatioLength / 3
	sc := make([]uint32, 0, len(z)+scan)
	start := len(z)/2 - scan/2
	for i, k := range zipfTrace(LocalRatioKeys, LocalRatioLength, 2) {
		sc = append(sc, k)
		if j := i - start; j >= 0 && j < scan {
			sc = append(sc, uint32(LocalRatioKeys+j))
		}
	}
	return []LocalTrace{
		{Name: "zipf", Desc: fmt.Sprintf("Zipf(1.01) over %d keys, %d requests", LocalRatioKeys, len(z)), IDs: z, Universe: LocalRatioKeys},
		{Name: "scan", Desc: fmt.Sprintf("Zipf(1.01) over %d keys with a one-pass scan of %d one-off keys interleaved through the middle third, %d requests",
			LocalRatioKeys, scan, len(sc)), IDs: sc, Universe: LocalRatioKeys + scan},
	}
}

// LocalTrace is a sequence of key ids.
type LocalTrace struct {
	Name, Desc string
	IDs        []uint32
	Universe   int
}

func zipfTrace(universe, n int, seed uint64) []uint32 {
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, 0x5ca1e)), 1.01, 1, uint64(universe-1))
	tr := make([]uint32, n)
	for i := range tr {
		tr[i] = uint32(z.Uint64())
	}
	return tr
}

// LocalHitRatio replays tr against a new cache of capacity entries, each
// miss followed by a Set of the key (cache-aside), and returns the
// percentage of requests that hit.
func LocalHitRatio(im LocalTierImpl, tr LocalTrace, capacity int) float64 {
	keys := localKeys("", tr.Universe)
	t := im.New(capacity)
	hits := 0
	for _, id := range tr.IDs {
		k := keys[id]
		if _, ok := t.Get(k); ok {
			hits++
			continue
		}
		t.Set(k, nil, im.TTL)
	}
	return 100 * float64(hits) / float64(len(tr.IDs))
}
