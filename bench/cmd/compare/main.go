// Command compare measures our shard strategies against other Go sharding
// libraries, our balance strategies' picks against vulcand/oxy's round
// robin, and our cache package against raw Redis and Memcached clients,
// go-redis/cache and eko/gocache, in one process run and writes the
// results, with the targets they are held to, as a Markdown report:
//
//	cd bench && go run ./cmd/compare -out ../BENCHMARKS.md [-runs 5] [-keys 1000000] [-only shard|balance|cache|queue|replica|session|growth]
//
// It measures nine things:
//
//   - lookup cost: ns/op and allocs/op of one lookup at 10 and 100 shards,
//     each benchmark repeated -runs times (interleaved across
//     implementations, so a noisy stretch of the machine hits all of them
//     alike) and reported as the median;
//
//   - distribution: -keys keys over 10 and 100 shards, max/mean load, next
//     to what an ideal uniform random assignment gives (the noise floor);
//
//   - movement: the fraction of -keys keys whose owner changes when an 11th
//     shard joins 10, as a multiple of the ideal 1/11;
//
//   - pick cost: ns/op and allocs/op of one balancer pick (Pick and Done
//     for ours, NextServer for oxy) at 10 backends serially and under
//     RunParallel, and of WeightedRoundRobin over 10,000 weighted
//     backends, with a bare atomic counter as the floor; -runs medians,
//     interleaved like the lookups;
//
//   - cache hits: ns/op, B/op and allocs/op of one Get hit of a 1 KiB
//     value from Redis (raw go-redis GET, rediscache, Loader on
//     rediscache, go-redis/cache v9, eko/gocache v4) and from Memcached
//     (raw gomemcache, memcachedcache, Loader on it), of a local-tier hit
//     (Loader with LocalTTL against go-redis/cache's TinyLFU local
//     cache), and of cache.Memory serially and under RunParallel; -runs
//     medians, interleaved. The remote ratio targets (Loader over raw
//     go-redis, go-redis/cache and eko/gocache; Loader over raw
//     gomemcache) are checked on an interleaved measurement per store
//     instead (impls.CacheInterleaved: one Get of every library per
//     iteration, each timed alone), the median over runs of each run's
//     ratio: rows benchmarked in different windows of a shared machine
//     cannot be compared. The Redis and Memcached rows need
//     SCALEOUT_REDIS_ADDR and SCALEOUT_MEMCACHED_ADDR (eval "$(../scripts/services.sh env)");
//     without them they are reported as not measured and their targets
//     as missed. Then the local tier: cache.Memory against
//     maypok86/otter/v2 (impls.LocalTierImpls), hits and miss + set in
//     interleaved blocks, memory per entry, and hit ratios on a Zipf and
//     a scan-polluted trace at three capacities.
//
//   - job queues: processing throughput (20,000 pre-enqueued no-op jobs
//     drained at concurrency 10 and 50), enqueue throughput (serial, 16
//     goroutines, EnqueueBatch of 100), enqueue-to-handler latency at 200
//     jobs/s, and Redis bytes per backlog job, of queue.Worker on
//     queue/redisqueue against hibiken/asynq on the same Redis
//     ($SCALEOUT_REDIS_ADDR; without it those rows are not measured and
//     their targets missed), each side at its defaults and both tuned
//     alike, targets against the stronger asynq configuration, and
//     queue.Memory's processing rate; -runs runs, interleaved, medians and
//     per-run ratios. Bytes per job are
//     measured once on a private redis-server the tool starts.
//
//   - replica routing: ns/op, B/op and allocs/op of QueryRowContext+Scan,
//     QueryContext+Next+Close and ExecContext through a bare *sql.DB,
//     replica.DB (static roles, and with a fake Probe) and
//     bxcodec/dbresolver/v2 over the same three pools of an in-memory
//     driver (impls/nopsql), serially and under RunParallel, and of the
//     read on a PostgreSQL primary and standby ($SCALEOUT_PG_PRIMARY_DSN,
//     $SCALEOUT_PG_REPLICA_DSN; without them not measured); -runs
//     medians, interleaved, and the routing overhead over bare from an
//     interleaved measurement per op (impls.ReplicaEnv.Interleaved).
//
//   - sessions: ns/op, allocs/op and store writes/op of one HTTP request
//     through session.Manager (redisstore, Memory) and alexedwards/scs
//     (goredisstore with and without an idle timeout, memstore) for an
//     increment, a read and one increment in ten, with the Redis libraries
//     also measured interleaved for the time ratios;
//
//   - growth: how picks with load on (LeastLoaded, P2C, ConsistentHash,
//     RoundRobin), ConsistentHash.Update, shard.NewBounded, shard.NewRing
//     and PlanMoves between Rings grow from 10 to 10,000 backends or
//     members.
//
// -only shard runs the first three, -only balance the fourth, -only cache
// the fifth (-only localtier its local tier part alone), -only queue the sixth, -only replica the seventh, -only
// session the eighth, -only growth the last.
//
// The tables go to -out and to stdout; progress goes to stderr. The -out
// file is rewritten whole, except its tail from <!-- proxybench:start -->
// on: the block up to <!-- proxybench:end --> that cmd/proxybench
// maintains, and the sections measured by other scripts and written after
// it (instrumentation overhead, River), kept verbatim, at the end.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scaleout/scaleout/bench/impls"
	"github.com/scaleout/scaleout/shard"
)

// shardCounts are the cluster sizes of the lookup and distribution tables.
var shardCounts = []int{10, 100}

func main() {
	// testing.Benchmark reads -test.benchtime; registering the testing
	// flags lets us set it. Our own flags live in a separate FlagSet so
	// -help lists only them.
	testing.Init()
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	out := fs.String("out", "", "write the Markdown report to this file (it is always printed to stdout)")
	runs := fs.Int("runs", 5, "times each lookup benchmark is repeated; the median is reported")
	nkeys := fs.Int("keys", 1_000_000, "keys for the distribution and movement measurements")
	benchtime := fs.Duration("benchtime", time.Second, "duration of each benchmark run")
	trials := fs.Int("trials", 20, "simulated trials of an ideal random assignment for the noise floor")
	pickBenchtime := fs.Duration("pick-benchtime", 500*time.Millisecond, "duration of each balancer pick benchmark run")
	cacheBenchtime := fs.Duration("cache-benchtime", 500*time.Millisecond, "duration of each cache benchmark run")
	queueLatency := fs.Duration("queue-latency", 2*time.Second, "producer duration of each queue latency run (at 200 jobs/s)")
	queueMemJobs := fs.Int("queue-mem-jobs", impls.QueueMemPerJobN, "backlog jobs of the queue's Redis bytes-per-job measurement (e.g. 1000000)")
	replicaBenchtime := fs.Duration("replica-benchtime", 300*time.Millisecond, "duration of each replica routing benchmark run, the interleaved ones included")
	sessionBenchtime := fs.Duration("session-benchtime", 500*time.Millisecond, "duration of each session benchmark run, the interleaved ones included")
	only := fs.String("only", "all", "sections to run: all, shard (lookup, distribution, moves), balance (balancer picks), cache (cache hits, with localtier), localtier (cache.Memory against otter), queue (job queue), "+
		"replica (replica routing), session (session middleware) or growth (picks, updates and constructors from 10 to 10,000); "+
		"a partial report cannot be written with -out")
	fs.Parse(os.Args[1:])
	if *runs < 1 || *nkeys < 1 || *trials < 1 || *benchtime <= 0 || *pickBenchtime <= 0 || *cacheBenchtime <= 0 ||
		*queueLatency <= 0 || *queueMemJobs < 1 || *replicaBenchtime <= 0 || *sessionBenchtime <= 0 {
		fmt.Fprintln(os.Stderr, "compare: -runs, -keys, -trials, -benchtime, -pick-benchtime, -cache-benchtime, "+
			"-queue-latency, -queue-mem-jobs, -replica-benchtime and -session-benchtime must be positive")
		os.Exit(2)
	}
	c := &comparison{runs: *runs, keys: *nkeys, trials: *trials, all: impls.All(),
		benchtime: *benchtime, pickBenchtime: *pickBenchtime, cacheBenchtime: *cacheBenchtime, gomaxprocs: runtime.GOMAXPROCS(0),
		queueLatency: *queueLatency, queueMemJobs: *queueMemJobs, replicaBenchtime: *replicaBenchtime, sessionBenchtime: *sessionBenchtime}
	switch *only {
	case "all":
		c.doShard, c.doBalance, c.doCache, c.doQueue, c.doReplica, c.doSession = true, true, true, true, true, true
		c.doLocal, c.doGrowth = true, true
	case "shard":
		c.doShard = true
	case "balance":
		c.doBalance = true
	case "cache":
		c.doCache = true
	case "localtier":
		c.doLocal = true
	case "queue":
		c.doQueue = true
	case "replica":
		c.doReplica = true
	case "session":
		c.doSession = true
	case "growth":
		c.doGrowth = true
	default:
		fmt.Fprintf(os.Stderr, "compare: -only %q: want all, shard, balance, cache, localtier, queue, replica, session or growth\n", *only)
		os.Exit(2)
	}
	if *out != "" && *only != "all" {
		// The report is one file with one targets list; writing a part
		// of it would drop the other sections from the file.
		fmt.Fprintln(os.Stderr, "compare: -only writes a partial report to stdout only; drop -out, or -only")
		os.Exit(2)
	}
	// Read the proxybench block before measuring, so a malformed file
	// fails fast rather than after minutes of benchmarks.
	var keep string
	if *out != "" {
		var err error
		if keep, err = proxybenchBlock(*out); err != nil {
			fatal(err)
		}
	}

	start := time.Now()
	c.loadStart = loadAvg()
	if c.doShard {
		setBenchtime(c.benchtime)
		c.build()
		c.lookups()
		c.distribution()
		c.moves()
	}
	if c.doBalance {
		setBenchtime(c.pickBenchtime)
		if err := c.buildPicks(); err != nil {
			fatal(err)
		}
		c.picks()
	}
	if c.doCache {
		setBenchtime(c.cacheBenchtime)
		if err := c.buildCache(); err != nil {
			c.closeCache()
			fatal(err)
		}
		c.caches()
		c.closeCache()
	}
	if c.doLocal {
		c.localTier()
	}
	if c.doQueue {
		c.queues()
	}
	if c.doReplica {
		setBenchtime(c.replicaBenchtime)
		if err := c.buildReplica(); err != nil {
			c.closeReplica()
			fatal(err)
		}
		c.replicas()
		c.closeReplica()
	}
	if c.doSession {
		setBenchtime(c.sessionBenchtime)
		if err := c.buildSessions(); err != nil {
			c.closeSessions()
			fatal(err)
		}
		c.sessions()
		c.closeSessions()
	}
	if c.doGrowth {
		setBenchtime(c.pickBenchtime)
		c.growth()
	}
	c.loadEnd = loadAvg()

	var sb strings.Builder
	c.report(&sb, start)
	fmt.Print(sb.String())
	if *out != "" {
		text := sb.String()
		if keep != "" {
			text = strings.TrimRight(text, "\n") + "\n\n" + keep + "\n"
		}
		if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
			fatal(err)
		}
		msg := ""
		if keep != "" {
			msg = " (kept its proxybench block and the sections after it)"
		}
		logf("wrote %s%s in %s", *out, msg, time.Since(start).Round(time.Second))
	}
}

// setBenchtime sets the -test.benchtime that testing.Benchmark reads on
// every call.
func setBenchtime(d time.Duration) {
	if err := flag.CommandLine.Set("test.benchtime", d.String()); err != nil {
		fatal(err)
	}
}

// The markers of the block cmd/proxybench maintains in the report file.
const (
	proxybenchStart = "<!-- proxybench:start -->"
	proxybenchEnd   = "<!-- proxybench:end -->"
)

// proxybenchBlock returns the tail of path from proxybenchStart on: the
// block to proxybenchEnd, markers included, and the sections after it,
// byte for byte but for trailing newlines, or "" when the file or the
// block does not exist. Unbalanced markers are an error, as they are for
// proxybench: the file needs fixing by hand.
func proxybenchBlock(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	s := string(b)
	i, j := strings.Index(s, proxybenchStart), strings.Index(s, proxybenchEnd)
	switch {
	case i < 0 && j < 0:
		return "", nil
	case i < 0 || j < i:
		return "", fmt.Errorf("%s: unbalanced %s / %s markers; fix the file by hand", path, proxybenchStart, proxybenchEnd)
	}
	return strings.TrimRight(s[i:], "\n"), nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "compare:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// comparison holds the measurements.
type comparison struct {
	runs, keys, trials int
	all                []impls.Impl

	// doShard, doBalance, doCache, doQueue, doReplica and doSession say
	// which sections run (-only).
	doShard, doBalance, doCache, doQueue, doReplica, doSession bool
	doLocal                                                    bool // the local tier tables (cache.Memory against otter), in the cache section
	doGrowth                                                   bool // the growth curves, 10 to 10,000
	benchtime, pickBenchtime, cacheBenchtime                   time.Duration
	gomaxprocs                                                 int

	// loadStart and loadEnd are the 1-minute load averages around the
	// measurement: a load above the CPU count means other work competed.
	loadStart, loadEnd string

	// built[name][n] is the implementation over n shards (10, 11, 100).
	built map[string]map[int]*impls.Built
	// buildErr records implementations that could not be built.
	buildErr map[string]error

	// ns[name][n] holds the ns/op of each run; allocs the allocs/op.
	ns     map[string]map[int][]float64
	allocs map[string]map[int][]int64

	// dist[name][n] is the distribution of the keys over n shards.
	dist map[string]map[int]distribution
	// floor[n] is the ideal random assignment's max/mean over n shards.
	floor map[int]noiseFloor

	moved map[string]movement

	// pickGroups are the balancer pick measurements.
	pickGroups []*pickGroup

	// cacheEnv holds the cache benchmarks' clients while they run;
	// cacheRows are the cache measurements, in report order.
	cacheEnv  *impls.CacheEnv
	cacheRows []*cacheRow
	// cacheIL are the interleaved remote measurements, whose ratios the
	// remote ratio targets are checked on.
	cacheIL []*ilRow
	// localRows are the local tier measurements (cache.Memory against
	// otter), in report order.
	localRows []*localRow

	// queue holds the queue measurements; queueLatency and queueMemJobs
	// are their -queue-latency and -queue-mem-jobs.
	queue        *queueSection
	queueLatency time.Duration
	queueMemJobs int

	// replicaBackends are the replica routing measurements, nopsql
	// first; replicaBenchtime is -replica-benchtime.
	replicaBackends  []*replicaBackend
	replicaBenchtime time.Duration

	// session holds the session measurements; sessionBenchtime is
	// -session-benchtime.
	session          *sessionSection
	sessionBenchtime time.Duration

	// growthRows are the growth curves, in report order.
	growthRows []*growthRow
}

type distribution struct {
	maxMean, minMean float64
	// chi2 is Pearson's χ² of the shard counts against an even split,
	// divided by its N−1 degrees of freedom: about 1 ± √(2/(N−1)) for a
	// uniform random assignment. Unlike max/mean, which is one extreme
	// draw, it uses every shard's count, so it tells a biased hash from an
	// unlucky maximum.
	chi2 float64
	// For Bounded: the largest partition load and the bound it must meet.
	partMax, partBound int
	partOK             bool
}

type noiseFloor struct {
	median, lo, hi float64 // median and range over the trials
	formula        float64 // the Gaussian approximation, for comparison
}

type movement struct {
	fraction float64 // keys whose owner changed
	toOld    float64 // keys that moved between old shards, not to the new one
}

func (c *comparison) build() {
	c.built = map[string]map[int]*impls.Built{}
	c.buildErr = map[string]error{}
	for _, im := range c.all {
		c.built[im.Name] = map[int]*impls.Built{}
		for _, n := range []int{10, 11, 100} {
			b, err := im.New(impls.ShardNames(n))
			if err != nil {
				c.buildErr[im.Name] = fmt.Errorf("%d shards: %w", n, err)
				logf("%s: %v", im.Name, c.buildErr[im.Name])
				break
			}
			c.built[im.Name][n] = b
		}
	}
}

func (c *comparison) usable(im impls.Impl) bool { return c.buildErr[im.Name] == nil }

// lookups runs every benchmark c.runs times. The loop order is run, then
// implementation, then shard count: each implementation's samples are
// spread over the whole measurement, so a slow minute of a shared machine
// shifts one sample of each instead of every sample of one.
func (c *comparison) lookups() {
	keys := impls.NewKeys(impls.BenchKeys)
	c.ns = map[string]map[int][]float64{}
	c.allocs = map[string]map[int][]int64{}
	for _, im := range c.all {
		c.ns[im.Name] = map[int][]float64{}
		c.allocs[im.Name] = map[int][]int64{}
	}
	for r := range c.runs {
		logf("lookup benchmarks: run %d of %d", r+1, c.runs)
		for _, im := range c.all {
			if !c.usable(im) {
				continue
			}
			for _, n := range shardCounts {
				b := c.built[im.Name][n]
				res := testing.Benchmark(func(tb *testing.B) { b.Bench(tb, keys) })
				if res.N == 0 {
					fatal(fmt.Errorf("benchmark %s/%d failed", im.Name, n))
				}
				c.ns[im.Name][n] = append(c.ns[im.Name][n], float64(res.T.Nanoseconds())/float64(res.N))
				c.allocs[im.Name][n] = append(c.allocs[im.Name][n], res.AllocsPerOp())
			}
		}
	}
}

// distribution maps c.keys keys over 10 and 100 shards with every
// implementation, and simulates the ideal random assignment.
func (c *comparison) distribution() {
	keys := impls.NewKeys(c.keys)
	c.dist = map[string]map[int]distribution{}
	for _, im := range c.all {
		if !c.usable(im) {
			continue
		}
		logf("distribution: %s", im.Name)
		c.dist[im.Name] = map[int]distribution{}
		for _, n := range shardCounts {
			b := c.built[im.Name][n]
			counts := map[string]int{}
			for i := range c.keys {
				counts[b.Lookup(keys, i)]++
			}
			var d distribution
			d.maxMean, d.minMean, d.chi2 = spread(counts, n, c.keys)
			if bd, ok := b.Sharder.(*shard.Bounded); ok {
				// The bound is on partitions, not keys: every member
				// must own at most ceil(c·P·w/W) of them.
				loads, caps := bd.Loads(), bd.Capacities()
				d.partOK = true
				for i := range loads {
					d.partMax = max(d.partMax, loads[i])
					d.partBound = max(d.partBound, caps[i])
					d.partOK = d.partOK && loads[i] <= caps[i]
				}
			}
			c.dist[im.Name][n] = d
		}
	}
	logf("distribution: ideal random assignment, %d trials", c.trials)
	c.floor = map[int]noiseFloor{}
	for _, n := range shardCounts {
		c.floor[n] = simulateFloor(n, c.keys, c.trials)
	}
}

// spread returns max/mean, min/mean and χ²/df of the per-shard key
// counts; a shard that got no key counts as 0.
func spread(counts map[string]int, n, keys int) (maxMean, minMean, chi2 float64) {
	mean := float64(keys) / float64(n)
	hi, lo := 0, keys
	if len(counts) < n {
		lo = 0
		chi2 = float64(n-len(counts)) * mean // (0 − mean)²/mean per empty shard
	}
	for _, v := range counts {
		hi, lo = max(hi, v), min(lo, v)
		d := float64(v) - mean
		chi2 += d * d / mean
	}
	return float64(hi) / mean, float64(lo) / mean, chi2 / float64(n-1)
}

// simulateFloor throws keys uniformly at random onto n shards, trials
// times with fixed seeds, and returns the median max/mean: the balance a
// perfect hash would show on average with this many keys. Any hash lands
// around it; a target below it cannot be met by hashing alone.
func simulateFloor(n, keys, trials int) noiseFloor {
	maxes := make([]float64, trials)
	counts := make([]int, n)
	for t := range trials {
		rng := rand.New(rand.NewPCG(uint64(n), uint64(t)))
		clear(counts)
		for range keys {
			counts[rng.IntN(n)]++
		}
		maxes[t] = float64(slices.Max(counts)) / (float64(keys) / float64(n))
	}
	slices.Sort(maxes)
	// The expected maximum of n roughly Gaussian shares is about
	// mean + z·sd with z ≈ 1.54 for n = 10 and ≈ 2.51 for n = 100.
	z := map[int]float64{10: 1.54, 100: 2.51}[n]
	return noiseFloor{
		median:  median(maxes),
		lo:      maxes[0],
		hi:      maxes[trials-1],
		formula: 1 + z*math.Sqrt(float64(n-1)/float64(keys)),
	}
}

// within says where max/mean falls against the simulated trials.
func within(x float64, f noiseFloor) string {
	switch {
	case x < f.lo:
		return "below"
	case x > f.hi:
		return "above"
	}
	return "within"
}

// moves counts the keys whose owner changes from 10 to 11 shards.
func (c *comparison) moves() {
	keys := impls.NewKeys(c.keys)
	c.moved = map[string]movement{}
	for _, im := range c.all {
		if !c.usable(im) {
			continue
		}
		logf("moves: %s", im.Name)
		before, after := c.built[im.Name][10], c.built[im.Name][11]
		var moved, toOld int
		for i := range c.keys {
			a, b := before.Lookup(keys, i), after.Lookup(keys, i)
			if a != b {
				moved++
				if b != "shard-10" {
					toOld++
				}
			}
		}
		c.moved[im.Name] = movement{
			fraction: float64(moved) / float64(c.keys),
			toOld:    float64(toOld) / float64(c.keys),
		}
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianNs is the median ns/op of an implementation at n shards, NaN when
// it was not measured.
func (c *comparison) medianNs(name string, n int) float64 {
	xs := c.ns[name][n]
	if len(xs) == 0 {
		return math.NaN()
	}
	return median(xs)
}

// A check is one target and whether it was met.
type check struct {
	what string // e.g. "ours Maglev @100: ≤ 15 ns/op"
	got  string
	pass bool
}

// counterpart is the library each of ours is compared with head to head:
// same algorithm, so ours must be no slower.
var counterpart = map[string]string{
	impls.OursJump:       impls.GoJump,
	impls.OursRendezvous: impls.GoRendezvous,
}

// fasterThanConsistent are ours that must beat buraksezer/consistent's
// LocateKey at 100 shards.
var fasterThanConsistent = map[string]bool{
	impls.OursRing: true, impls.OursMaglev: true, impls.OursJump: true, impls.OursBounded: true,
}

// balanced are ours held to max/mean ≤ 1.02.
var balanced = map[string]bool{
	impls.OursJump: true, impls.OursMaglev: true, impls.OursRendezvous: true,
}

const (
	maglevNsTarget  = 15.0
	balanceTarget   = 1.02
	movesTarget     = 1.05
	allocsTarget    = 0
	counterpartMax  = 1.00
	consistentRatio = 1.00
)

// verdict is a table row's result: PASS when every target on the row is
// met, empty when the row has none.
func verdict(checks []check) string {
	if len(checks) == 0 {
		return ""
	}
	for _, ch := range checks {
		if !ch.pass {
			return "**MISS**"
		}
	}
	return "PASS"
}

func targets(checks []check) string {
	var s []string
	for _, ch := range checks {
		s = append(s, ch.what)
	}
	return strings.Join(s, "; ")
}

func (c *comparison) report(w io.Writer, start time.Time) {
	var all []check // every target, for the summary
	var body strings.Builder
	if c.doShard {
		all = append(all, c.reportShard(&body)...)
	}
	if c.doBalance {
		if body.Len() > 0 {
			body.WriteString("\n")
		}
		all = append(all, c.reportPicks(&body)...)
	}
	if c.doCache {
		if body.Len() > 0 {
			body.WriteString("\n")
		}
		all = append(all, c.reportCache(&body)...)
	}
	if c.doLocal && !c.doCache {
		c.reportLocalTier(&body)
	}
	if c.doQueue {
		if body.Len() > 0 {
			body.WriteString("\n")
		}
		all = append(all, c.reportQueue(&body)...)
	}
	if c.doReplica {
		if body.Len() > 0 {
			body.WriteString("\n")
		}
		all = append(all, c.reportReplica(&body)...)
	}
	if c.doSession {
		if body.Len() > 0 {
			body.WriteString("\n")
		}
		all = append(all, c.reportSessions(&body)...)
	}
	if c.doGrowth {
		if body.Len() > 0 {
			body.WriteString("\n")
		}
		all = append(all, c.reportGrowth(&body)...)
	}

	// Header and summary, then the tables.
	passed := 0
	for _, ch := range all {
		if ch.pass {
			passed++
		}
	}
	fmt.Fprintf(w, "# Benchmarks\n\n")
	fmt.Fprintf(w, "Generated by `bench/cmd/compare` (sharding, balancer picks, cache hits, job queues, replica routing and sessions; the proxy throughput section at the end by "+
		"`bench/cmd/proxybench`); do not edit by hand. See bench/README.md.\n\n")
	fmt.Fprintf(w, "- date: %s\n", start.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- go: %s, %s/%s, GOMAXPROCS %d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "- cpu: %s (%d logical CPUs)\n", cpuModel(), runtime.NumCPU())
	fmt.Fprintf(w, "- command: `cd bench && go run ./cmd/compare %s`\n", strings.Join(os.Args[1:], " "))
	var runsDesc []string
	if c.doShard {
		runsDesc = append(runsDesc, fmt.Sprintf("per lookup implementation and shard count, %s each", c.benchtime))
	}
	if c.doBalance {
		runsDesc = append(runsDesc, fmt.Sprintf("per picker, backend count and mode, %s each", c.pickBenchtime))
	}
	if c.doCache {
		runsDesc = append(runsDesc, fmt.Sprintf("per cache benchmark, %s each", c.cacheBenchtime))
	}
	if c.doQueue {
		runsDesc = append(runsDesc, "per queue measurement (fixed work each, see Queue)")
	}
	if c.doReplica {
		runsDesc = append(runsDesc, fmt.Sprintf("per replica routing benchmark, %s each", c.replicaBenchtime))
	}
	if c.doSession {
		runsDesc = append(runsDesc, fmt.Sprintf("per session benchmark, %s each", c.sessionBenchtime))
	}
	fmt.Fprintf(w, "- benchmark runs: %d %s, interleaved; medians reported. "+
		"The machine is shared and noisy: treat differences under ~5%% as noise.\n", c.runs, strings.Join(runsDesc, "; "))
	fmt.Fprintf(w, "- load average (1 min) at start / end: %s / %s\n", c.loadStart, c.loadEnd)
	fmt.Fprintf(w, "- wall time: %s\n\n", time.Since(start).Round(time.Second))
	fmt.Fprintf(w, "## Targets: %d of %d met\n\n", passed, len(all))
	for _, ch := range all {
		mark := "PASS"
		if !ch.pass {
			mark = "**MISS**"
		}
		fmt.Fprintf(w, "- %s %s — measured %s\n", mark, ch.what, ch.got)
	}
	fmt.Fprintf(w, "\n%s", body.String())
}

// reportShard writes the lookup, distribution, moves and configuration
// tables and returns their checks.
func (c *comparison) reportShard(body *strings.Builder) []check {
	var all []check

	// Lookup.
	fmt.Fprintf(body, "## Lookup\n\n")
	fmt.Fprintf(body, "One `Shard`/`LocateKey`/`GetNode`/`Lookup` call per op on 23-byte keys (%d distinct, cycled), "+
		"through one indirect call for every implementation. Median of %d runs; the range is min–max over the runs. "+
		"\"× consistent\" is the median ns/op over buraksezer/consistent's LocateKey (defaults) at the same shard count; "+
		"\"× same algorithm\" compares our Jump with go-jump and our Rendezvous with go-rendezvous.\n\n",
		impls.BenchKeys, c.runs)
	fmt.Fprintf(body, "| implementation | shards | ns/op (median) | range | allocs/op | × consistent | × same algorithm | target | result |\n")
	fmt.Fprintf(body, "|---|--:|--:|--:|--:|--:|--:|---|---|\n")
	for _, n := range shardCounts {
		base := c.medianNs(impls.Consistent, n)
		for _, im := range c.all {
			if !c.usable(im) {
				fmt.Fprintf(body, "| %s | %d | build failed: %v | | | | | | |\n", im.Name, n, c.buildErr[im.Name])
				continue
			}
			ns := c.medianNs(im.Name, n)
			xs := c.ns[im.Name][n]
			allocs := slices.Max(c.allocs[im.Name][n]) // worst run: one allocating run is a real allocation
			var checks []check
			if im.Ours {
				checks = append(checks, check{
					what: fmt.Sprintf("%d allocs", allocsTarget),
					got:  fmt.Sprintf("%d", allocs), pass: allocs == allocsTarget,
				})
			}
			if im.Name == impls.OursMaglev && n == 100 {
				checks = append(checks, check{
					what: fmt.Sprintf("≤ %.0f ns/op", maglevNsTarget),
					got:  fmt.Sprintf("%.1f ns/op", ns), pass: ns <= maglevNsTarget,
				})
			}
			ratio := ns / base
			if fasterThanConsistent[im.Name] && n == 100 {
				checks = append(checks, check{
					what: "faster than consistent (× < 1.00)",
					got:  fmt.Sprintf("× %.2f", ratio), pass: ratio < consistentRatio,
				})
			}
			same := "—"
			if other, ok := counterpart[im.Name]; ok {
				r := ns / c.medianNs(other, n)
				same = fmt.Sprintf("%.2f vs %s", r, strings.TrimPrefix(other, "dgryski/"))
				checks = append(checks, check{
					what: fmt.Sprintf("no slower than %s (× ≤ %.2f)", other, counterpartMax),
					got:  fmt.Sprintf("× %.3f", r), pass: r <= counterpartMax,
				})
			}
			fmt.Fprintf(body, "| %s | %d | %.1f | %.1f–%.1f | %d | %.2f | %s | %s | %s |\n",
				im.Name, n, ns, slices.Min(xs), slices.Max(xs), allocs, ratio, same, targets(checks), verdict(checks))
			for _, ch := range checks {
				ch.what = fmt.Sprintf("lookup, %s @%d shards: %s", im.Name, n, ch.what)
				all = append(all, ch)
			}
		}
	}

	// Distribution.
	fmt.Fprintf(body, "\n## Distribution\n\n")
	fmt.Fprintf(body, "%d keys over 10 and 100 shards; max/mean is the most loaded shard's keys over the average. "+
		"The first row of each group is the noise floor: an ideal random assignment (each key to a uniformly random shard, "+
		"math/rand/v2 PCG with fixed seeds), median of %d simulated trials, range in brackets, and the Gaussian estimate "+
		"1 + z·√((N−1)/K) (z = 1.54 at N = 10, 2.51 at N = 100). A hash cannot be expected to beat it with this many keys; "+
		"a target below it is a target on luck. For Bounded the partition columns check its guarantee: "+
		"no member owns more than ceil(1.25·P/N) of the P = 4096 partitions. "+
		"χ²/df is Pearson's statistic against an even split over its N−1 degrees of freedom: about 1 ± %.2f (N = 10) and "+
		"1 ± %.2f (N = 100) for a uniform random assignment, so a value near 1 with a high max/mean is an unlucky maximum, "+
		"not a biased hash.\n\n", c.keys, c.trials, math.Sqrt(2.0/9), math.Sqrt(2.0/99))
	for _, n := range shardCounts {
		if f := c.floor[n]; f.median > balanceTarget {
			// Solve 1 + z·√((N−1)/K) = target for K.
			z := (f.formula - 1) / math.Sqrt(float64(n-1)/float64(c.keys))
			need := float64(n-1) * math.Pow(z/(balanceTarget-1), 2)
			fmt.Fprintf(body, "**Note:** at %d shards the max/mean ≤ %.2f target is below the noise floor (%.4f) for %d keys: "+
				"even a perfect hash meets it only by luck. A median draw meets it from about %.1f million keys.\n\n",
				n, balanceTarget, f.median, c.keys, need/1e6)
		}
	}
	fmt.Fprintf(body, "| implementation | shards | max/mean | min/mean | χ²/df | partitions max / bound | target | result |\n")
	fmt.Fprintf(body, "|---|--:|--:|--:|--:|--:|---|---|\n")
	for _, n := range shardCounts {
		f := c.floor[n]
		fmt.Fprintf(body, "| *ideal random assignment* | %d | %.4f | | ≈ 1 | | noise floor [%.4f–%.4f], estimate %.4f | |\n",
			n, f.median, f.lo, f.hi, f.formula)
		for _, im := range c.all {
			if !c.usable(im) {
				continue
			}
			d := c.dist[im.Name][n]
			var checks []check
			if balanced[im.Name] {
				checks = append(checks, check{
					what: fmt.Sprintf("max/mean ≤ %.2f (noise floor %.4f)", balanceTarget, f.median),
					got: fmt.Sprintf("%.4f (%s the ideal random range %.4f–%.4f; χ²/df %.2f)",
						d.maxMean, within(d.maxMean, f), f.lo, f.hi, d.chi2),
					pass: d.maxMean <= balanceTarget,
				})
			}
			parts := ""
			if d.partBound > 0 {
				parts = fmt.Sprintf("%d / %d", d.partMax, d.partBound)
				checks = append(checks, check{
					what: "partitions within ceil(1.25·P/N)",
					got:  parts, pass: d.partOK,
				})
			}
			fmt.Fprintf(body, "| %s | %d | %.4f | %.4f | %.2f | %s | %s | %s |\n",
				im.Name, n, d.maxMean, d.minMean, d.chi2, parts, targets(checks), verdict(checks))
			for _, ch := range checks {
				ch.what = fmt.Sprintf("distribution, %s @%d shards: %s", im.Name, n, ch.what)
				all = append(all, ch)
			}
		}
	}

	// Moves.
	ideal := 1.0 / 11
	fmt.Fprintf(body, "\n## Moves: 10 → 11 shards\n\n")
	fmt.Fprintf(body, "Fraction of %d keys whose owner changes when shard-10 joins shard-00..shard-09, and that fraction "+
		"as a multiple of the ideal 1/11 = %.4f (only the newcomer's fair share moves). \"moved between old shards\" counts "+
		"keys that changed owner but did not go to the newcomer: movement a minimal scheme would not make. "+
		"For a perfect hash the sampling noise on the multiple is about ±%.3f (one standard deviation).\n\n",
		c.keys, ideal, math.Sqrt(ideal*(1-ideal)/float64(c.keys))/ideal)
	fmt.Fprintf(body, "| implementation | moved | × ideal | moved between old shards | target | result |\n")
	fmt.Fprintf(body, "|---|--:|--:|--:|---|---|\n")
	for _, im := range c.all {
		if !c.usable(im) {
			continue
		}
		m := c.moved[im.Name]
		x := m.fraction / ideal
		var checks []check
		if im.Ours {
			checks = append(checks, check{
				what: fmt.Sprintf("≤ %.2f × ideal", movesTarget),
				got:  fmt.Sprintf("× %.3f", x), pass: x <= movesTarget,
			})
		}
		fmt.Fprintf(body, "| %s | %.4f | %.3f | %.4f | %s | %s |\n",
			im.Name, m.fraction, x, m.toOld, targets(checks), verdict(checks))
		for _, ch := range checks {
			ch.what = fmt.Sprintf("moves, %s: %s", im.Name, ch.what)
			all = append(all, ch)
		}
	}

	// Configurations.
	fmt.Fprintf(body, "\n## Shard configurations\n\n| implementation | configuration |\n|---|---|\n")
	for _, im := range c.all {
		fmt.Fprintf(body, "| %s | %s |\n", im.Name, im.Config)
	}

	return all
}

// loadAvg returns the 1-minute load average from /proc/loadavg, where it
// exists.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// cpuModel reads the CPU model name from /proc/cpuinfo, where it exists.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
