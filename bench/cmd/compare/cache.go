package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/scaleout/scaleout/bench/impls"
)

// Cache targets, from the cache package's issue.
const (
	loaderRawRatioTarget   = 1.10 // Loader on rediscache over a raw go-redis GET; on memcachedcache over a raw gomemcache Get
	loaderLibsRatioTarget  = 1.00 // Loader on rediscache over go-redis/cache and eko/gocache
	localNsTarget          = 100.0
	localAllocsTarget      = 1
	readmeAllocsTarget     = 0   // the local hit in the README's style (cache.GetWith)
	memoryParallelTarget   = 1.6 // parallel over serial throughput of cache.Memory, on 2 cores
	memoryParallelTargetOn = 2
)

// cacheRow is one cache case and its measurements.
type cacheRow struct {
	cc    impls.CacheCase
	body  func(*testing.B)
	close func()
	skip  string // why the case was not measured; "" when it was

	ns     []float64 // ns/op of each run
	allocs []int64   // allocs/op of each run
	bytes  []int64   // B/op of each run
}

func (r *cacheRow) measured() bool { return r.skip == "" && len(r.ns) > 0 }

// ilRow is one interleaved measurement (impls.CacheInterleaved) and its
// runs.
type ilRow struct {
	il    impls.CacheInterleaved
	body  func(*testing.B)
	close func()
	skip  string

	extra []map[string]float64 // the reported metrics of each run
}

// ratioTarget is a remote ratio target, checked on the interleaved
// measurement.
type ratioTarget struct {
	num, den string // case names
	target   float64
}

var remoteRatioTargets = []ratioTarget{
	{impls.CacheRedisLoader, impls.CacheRawGoRedis, loaderRawRatioTarget},
	{impls.CacheRedisLoader, impls.CacheGoRedisCache, loaderLibsRatioTarget},
	{impls.CacheRedisLoader, impls.CacheEko, loaderLibsRatioTarget},
	{impls.CacheMemcachedLoader, impls.CacheRawMemcache, loaderRawRatioTarget},
}

// ilRatio returns the interleaved measurement reporting num over den, and
// the ratio's unit; nil if none does.
func (c *comparison) ilRatio(num, den string) (*ilRow, string) {
	for _, r := range c.cacheIL {
		for _, ra := range r.il.Ratios {
			if ra.Num == num && ra.Den == den {
				return r, ra.Unit
			}
		}
	}
	return nil, ""
}

// ilValues returns the ratio num/den of each interleaved run (nil when it
// was not measured) and, when it was not, why.
func (c *comparison) ilValues(num, den string) ([]float64, string) {
	r, unit := c.ilRatio(num, den)
	switch {
	case r == nil:
		return nil, "no interleaved measurement"
	case r.skip != "":
		return nil, r.skip
	case len(r.extra) == 0:
		return nil, "not run"
	}
	xs := make([]float64, 0, len(r.extra))
	for _, ex := range r.extra {
		x, ok := ex[unit]
		if !ok {
			return nil, "metric " + unit + " missing"
		}
		xs = append(xs, x)
	}
	return xs, ""
}

// ilRatioCheck holds the median over runs of each interleaved run's
// ratio num/den to ≤ target.
func (c *comparison) ilRatioCheck(t ratioTarget) check {
	ch := check{what: fmt.Sprintf("%s × %s ≤ %.2f (interleaved)", t.num, t.den, t.target)}
	xs, why := c.ilValues(t.num, t.den)
	if xs == nil {
		ch.got = "nothing (" + why + ")"
		return ch
	}
	x := median(xs)
	ch.got, ch.pass = fmt.Sprintf("× %.3f (runs %.3f–%.3f)", x, slices.Min(xs), slices.Max(xs)), x <= t.target
	return ch
}

// buildCache connects to the servers named by the environment, writes the
// keys of every case whose server is set, and records the others as
// skipped. A set server that does not answer, or a case that cannot be
// set up, is an error.
func (c *comparison) buildCache() error {
	env, err := impls.NewCacheEnv()
	if err != nil {
		return err
	}
	c.cacheEnv = env
	for _, il := range impls.CacheInterleavedCases() {
		r := &ilRow{il: il}
		c.cacheIL = append(c.cacheIL, r)
		if !env.Has(il.Env) {
			r.skip = fmt.Sprintf("$%s unset", il.Env)
			continue
		}
		logf("cache benchmarks: setting up the interleaved %s measurement", il.Bench)
		if r.body, r.close, err = il.Build(env); err != nil {
			return fmt.Errorf("interleaved cache benchmark %s: %w", il.Bench, err)
		}
	}
	for _, cc := range impls.CacheCases() {
		r := &cacheRow{cc: cc}
		c.cacheRows = append(c.cacheRows, r)
		if !env.Has(cc.Env) {
			r.skip = fmt.Sprintf("$%s unset", cc.Env)
			continue
		}
		logf("cache benchmarks: setting up %s", cc.Name)
		if r.body, r.close, err = cc.Build(env); err != nil {
			return fmt.Errorf("cache benchmark %s: %w", cc.Name, err)
		}
	}
	return nil
}

// closeCache releases the cases and deletes the keys they wrote.
func (c *comparison) closeCache() {
	for _, r := range c.cacheRows {
		if r.close != nil {
			r.close()
		}
	}
	for _, r := range c.cacheIL {
		if r.close != nil {
			r.close()
		}
	}
	if c.cacheEnv != nil {
		if err := c.cacheEnv.Close(); err != nil {
			logf("cache benchmarks: cleaning up: %v", err)
		}
		c.cacheEnv = nil
	}
}

// caches runs every cache benchmark c.runs times, interleaved like the
// lookups: run, then case; each run ends with the interleaved
// measurements.
func (c *comparison) caches() {
	for r := range c.runs {
		logf("cache benchmarks: run %d of %d", r+1, c.runs)
		for _, row := range c.cacheIL {
			if row.skip != "" {
				continue
			}
			res := testing.Benchmark(row.body)
			if res.N == 0 {
				c.closeCache()
				fatal(fmt.Errorf("interleaved cache benchmark %s failed", row.il.Bench))
			}
			row.extra = append(row.extra, res.Extra)
		}
		for _, row := range c.cacheRows {
			if row.skip != "" {
				continue
			}
			res := testing.Benchmark(row.body)
			if res.N == 0 {
				c.closeCache()
				fatal(fmt.Errorf("cache benchmark %s failed", row.cc.Name))
			}
			row.ns = append(row.ns, float64(res.T.Nanoseconds())/float64(res.N))
			row.allocs = append(row.allocs, res.AllocsPerOp())
			row.bytes = append(row.bytes, res.AllocedBytesPerOp())
		}
	}
}

// cacheRowNamed returns the row of the case named name, nil if none.
func (c *comparison) cacheRowNamed(name string) *cacheRow {
	for _, r := range c.cacheRows {
		if r.cc.Name == name {
			return r
		}
	}
	return nil
}

// cacheChecks returns the targets a row is held to, measured. The remote
// ratio targets are not a row's: they are checked on the interleaved
// measurements (ilRatioCheck).
func (c *comparison) cacheChecks(r *cacheRow) []check {
	var checks []check
	switch r.cc.Name {
	case impls.CacheLocalLoader, impls.CacheLocalLoaderT, impls.CacheLocalLoaderREADME:
		maxAllocs := int64(localAllocsTarget)
		if r.cc.Name == impls.CacheLocalLoaderREADME {
			maxAllocs = readmeAllocsTarget
		}
		nsCh := check{what: fmt.Sprintf("≤ %.0f ns/op", localNsTarget)}
		allocCh := check{what: fmt.Sprintf("≤ %d alloc/op", maxAllocs)}
		if r.measured() {
			ns, allocs := median(r.ns), slices.Max(r.allocs)
			nsCh.got, nsCh.pass = fmtNs(ns)+" ns/op", ns <= localNsTarget
			allocCh.got, allocCh.pass = fmt.Sprintf("%d", allocs), allocs <= maxAllocs
		} else {
			nsCh.got = "nothing (" + r.skip + ")"
			allocCh.got = nsCh.got
		}
		checks = append(checks, nsCh, allocCh)
	case impls.CacheMemoryParallel:
		ch := check{what: fmt.Sprintf("parallel ≥ %.1f× serial throughput (on %d cores; GOMAXPROCS here %d)",
			memoryParallelTarget, memoryParallelTargetOn, c.gomaxprocs)}
		if x := c.memoryParallelRatio(); !math.IsNaN(x) {
			ch.got, ch.pass = fmt.Sprintf("%.2f×", x), x >= memoryParallelTarget
		} else {
			ch.got = "nothing"
		}
		checks = append(checks, ch)
	}
	return checks
}

// memoryParallelRatio is cache.Memory's parallel throughput over its
// serial throughput: serial ns/op over parallel ns/op.
func (c *comparison) memoryParallelRatio() float64 {
	s, p := c.cacheRowNamed(impls.CacheMemorySerial), c.cacheRowNamed(impls.CacheMemoryParallel)
	if s == nil || p == nil || !s.measured() || !p.measured() {
		return math.NaN()
	}
	return median(s.ns) / median(p.ns)
}

// cacheReference is the row each row's "×" column compares it with, ""
// for none.
var cacheReference = map[string]string{
	impls.CacheRedisCache:         impls.CacheRawGoRedis,
	impls.CacheRedisLoader:        impls.CacheRawGoRedis,
	impls.CacheGoRedisCache:       impls.CacheRawGoRedis,
	impls.CacheEko:                impls.CacheRawGoRedis,
	impls.CacheMemcachedCache:     impls.CacheRawMemcache,
	impls.CacheMemcachedLoader:    impls.CacheRawMemcache,
	impls.CacheLocalLoader:        impls.CacheLocalGoRedis,
	impls.CacheLocalLoaderT:       impls.CacheLocalGoRedisT,
	impls.CacheLocalLoaderREADME:  impls.CacheLocalGoRedisT,
	impls.CacheLocalLoaderClosure: impls.CacheLocalGoRedisT,
}

// cacheRatio is the "×" column of a row.
func (c *comparison) cacheRatio(r *cacheRow) string {
	if !r.measured() {
		return ""
	}
	if r.cc.Name == impls.CacheMemoryParallel {
		if x := c.memoryParallelRatio(); !math.IsNaN(x) {
			return fmt.Sprintf("%.2f× serial throughput", x)
		}
		return ""
	}
	var parts []string
	remote := r.cc.Group == impls.CacheGroupRedis || r.cc.Group == impls.CacheGroupMemcached
	add := func(other string) {
		if remote {
			// Rows measured in different windows cannot be compared:
			// the interleaved ratio, median over the runs.
			if xs, _ := c.ilValues(r.cc.Name, other); xs != nil {
				parts = append(parts, fmt.Sprintf("%.3f × %s (interleaved)", median(xs), other))
			}
			return
		}
		o := c.cacheRowNamed(other)
		if o == nil || !o.measured() {
			return
		}
		parts = append(parts, fmt.Sprintf("%.3f × %s", median(r.ns)/median(o.ns), other))
	}
	if ref, ok := cacheReference[r.cc.Name]; ok {
		add(ref)
	}
	if r.cc.Name == impls.CacheRedisLoader {
		add(impls.CacheGoRedisCache)
		add(impls.CacheEko)
	}
	if ref := cacheReference[r.cc.Name]; r.cc.Group == impls.CacheGroupLocal && ref != "" {
		if o := c.cacheRowNamed(ref); o != nil && o.measured() {
			parts = append(parts, fmt.Sprintf("allocs %d vs %d", slices.Max(r.allocs), slices.Max(o.allocs)))
		}
	}
	return strings.Join(parts, "; ")
}

// reportCache writes the cache section and returns its checks.
func (c *comparison) reportCache(body *strings.Builder) []check {
	var all []check
	fmt.Fprintf(body, "## Cache\n\n")
	fmt.Fprintf(body, "One `Get` hit per op on %d-byte values (random bytes; a 5-field struct for the typed rows), "+
		"each library reading entries written before the timer by its own `Set` (each has its own encoding), "+
		"%d keys cycled (%s for cache.Memory). Remote rows are one round trip to a real server on loopback "+
		"($%s, $%s; rows without their server are marked not measured and their targets missed). "+
		"Local-tier rows read every key once before the timer and then delete it from Redis, so a timed Get that is not "+
		"answered locally fails the run; every Loader row fails if its load function is ever called or its miss, "+
		"error or load counters move. "+
		"Serial rows call from one goroutine; the parallel row uses `b.RunParallel` with GOMAXPROCS %d goroutines. "+
		"Median of %d runs, %s each, interleaved across implementations; the range is min–max over the runs; "+
		"B/op and allocs/op are the worst run. \"×\" is median ns/op over the named row's (lower is faster), "+
		"except for the parallel row, whose figure is throughput over the serial row's (higher is better), "+
		"and for the remote rows, whose \"×\" is the interleaved ratio below.\n\n",
		impls.CacheValueSize, impls.CacheRemoteKeys, thousands(impls.CacheMemoryKeys),
		impls.RedisAddrEnv, impls.MemcachedAddrEnv, c.gomaxprocs, c.runs, c.cacheBenchtime)
	if c.gomaxprocs != memoryParallelTargetOn {
		fmt.Fprintf(body, "**Note:** the cache.Memory parallel target is set for %d cores; this run has GOMAXPROCS %d.\n\n",
			memoryParallelTargetOn, c.gomaxprocs)
	}
	fmt.Fprintf(body, "| group | implementation | ns/op (median) | range | B/op | allocs/op | × | target | result |\n")
	fmt.Fprintf(body, "|---|---|--:|--:|--:|--:|---|---|---|\n")
	for _, r := range c.cacheRows {
		checks := c.cacheChecks(r)
		if r.measured() {
			fmt.Fprintf(body, "| %s | %s | %s | %s–%s | %d | %d | %s | %s | %s |\n",
				r.cc.Group, r.cc.Name, fmtNs(median(r.ns)), fmtNs(slices.Min(r.ns)), fmtNs(slices.Max(r.ns)),
				slices.Max(r.bytes), slices.Max(r.allocs), c.cacheRatio(r), targets(checks), verdict(checks))
		} else {
			fmt.Fprintf(body, "| %s | %s | not measured: %s | | | | | %s | %s |\n",
				r.cc.Group, r.cc.Name, r.skip, targets(checks), verdict(checks))
		}
		for _, ch := range checks {
			ch.what = fmt.Sprintf("cache, %s: %s", r.cc.Name, ch.what)
			all = append(all, ch)
		}
	}

	all = append(all, c.reportInterleaved(body)...)

	fmt.Fprintf(body, "\n| implementation | configuration |\n|---|---|\n")
	for _, r := range c.cacheRows {
		fmt.Fprintf(body, "| %s | %s |\n", r.cc.Name, r.cc.Config)
	}
	c.reportLocalTier(body)
	return all
}

// reportInterleaved writes the interleaved ratios table and returns the
// remote ratio checks.
func (c *comparison) reportInterleaved(body *strings.Builder) []check {
	fmt.Fprintf(body, "\n### Remote hits: interleaved ratios\n\n")
	fmt.Fprintf(body, "The remote rows above are benchmarked one after the other, each in its own %s window. "+
		"This machine is shared (2 cores, other work running): between windows the loopback round trip moves by "+
		"several times (24–108 µs has been seen), so a ratio of two such rows is mostly the difference between their "+
		"windows. The ratios here, and the remote targets, come instead from one benchmark per store "+
		"(`BenchmarkCacheRemoteInterleaved/{redis,memcached}`, %s per run) whose loop does, in every iteration, one `Get` "+
		"with each library in turn, each on its own pre-populated keys (the same key index for all), the starting library "+
		"rotating every iteration to remove order bias, every call timed alone with `time.Now` around it "+
		"(a few tens of ns of clock reads against a round trip of tens of µs). Every library thus sees the same "+
		"stretch of the machine. A run's ratio is the libraries' median ns per `Get` over that run; the table gives the "+
		"median of the %d runs' ratios and their min–max. The Loaders are checked here as in their rows: a run fails "+
		"if load is called or their miss counters move.\n\n",
		c.cacheBenchtime, c.cacheBenchtime, c.runs)
	fmt.Fprintf(body, "| store | ratio | median | range | median ns per Get (median over runs) | target | result |\n")
	fmt.Fprintf(body, "|---|---|--:|--:|---|---|---|\n")
	var all []check
	for _, r := range c.cacheIL {
		for _, ra := range r.il.Ratios {
			var checks []check
			for _, t := range remoteRatioTargets {
				if t.num == ra.Num && t.den == ra.Den {
					checks = append(checks, c.ilRatioCheck(t))
				}
			}
			name := fmt.Sprintf("%s × %s", ra.Num, ra.Den)
			xs, why := c.ilValues(ra.Num, ra.Den)
			if xs == nil {
				fmt.Fprintf(body, "| %s | %s | not measured: %s | | | %s | %s |\n",
					r.il.Group, name, why, targets(checks), verdict(checks))
			} else {
				fmt.Fprintf(body, "| %s | %s | %.3f | %.3f–%.3f | %s | %s | %s |\n",
					r.il.Group, name, median(xs), slices.Min(xs), slices.Max(xs),
					c.ilMeans(r, ra), targets(checks), verdict(checks))
			}
			for _, ch := range checks {
				ch.what = "cache, " + ch.what
				all = append(all, ch)
			}
		}
	}
	return all
}

// ilMeans is the median over runs of the median ns per Get of the two
// libraries of a ratio.
func (c *comparison) ilMeans(r *ilRow, ra impls.CacheRatio) string {
	var parts []string
	for _, name := range []string{ra.Num, ra.Den} {
		row := c.cacheRowNamed(name)
		if row == nil {
			continue
		}
		unit := impls.CacheMetric(row.cc.Bench)
		var xs []float64
		for _, ex := range r.extra {
			if x, ok := ex[unit]; ok {
				xs = append(xs, x)
			}
		}
		if len(xs) > 0 {
			parts = append(parts, fmtNs(median(xs)))
		}
	}
	return strings.Join(parts, " / ")
}
