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
//     to what an ideal uniform random assignment gives (the noise floor),
//     the worst of five naming schemes (impls.NamingSchemes);
//
//   - movement: the fraction of -keys keys whose owner changes when a shard
//     joins 10, 50 and 100, as a multiple of the ideal 1/(n+1), the worst
//     of the same naming schemes;
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

	// built[name][n] is the implementation over n shards (10, 100), for
	// the lookup benchmarks.
	built map[string]map[int]*impls.Built
	// buildErr records implementations that could not be built.
	buildErr map[string]error

	// ns[name][n] holds the ns/op of each run; allocs the allocs/op.
	ns     map[string]map[int][]float64
	allocs map[string]map[int][]int64

	// dist[name][n] is the distribution of the keys over n shards, the
	// worst over the naming schemes.
	dist map[string]map[int]distribution
	// floor[n] is the ideal random assignment's max/mean over n shards.
	floor map[int]noiseFloor

	// moved[name][n] is the movement when a shard joins n, the worst over
	// the naming schemes.
	moved map[string]map[int]movement

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
	scheme           string // the naming scheme with the highest max/mean
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
	sd             float64 // standard deviation of the trials' max/mean
	formula        float64 // the Gaussian approximation, for comparison
}

// limit is the balance target: the median of an ideal random assignment
// plus three standard deviations of its maximum, which a perfect hash
// exceeds in about one draw in a thousand. A fixed number such as 1.02
// sits below the median itself at 100 shards and a million keys.
func (f noiseFloor) limit() float64 { return f.median + 3*f.sd }

type movement struct {
	scheme   string  // the naming scheme with the most keys moved
	fraction float64 // keys whose owner changed, that scheme
	toOld    float64 // keys that moved between old shards, the most over the schemes
	err      error   // a build failed
}

// moveCounts are the cluster sizes a shard joins in the moves table.
var moveCounts = []int{10, 50, 100}

func (c *comparison) build() {
	c.built = map[string]map[int]*impls.Built{}
	c.buildErr = map[string]error{}
	for _, im := range c.all {
		c.built[im.Name] = map[int]*impls.Built{}
		for _, n := range shardCounts {
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
// implementation, under every naming scheme, keeping the worst scheme, and
// simulates the ideal random assignment.
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
			worst := distribution{partOK: true}
			for _, sc := range impls.NamingSchemes() {
				b, err := im.New(sc.Names(n))
				if err != nil {
					fatal(fmt.Errorf("%s over %d %s shards: %w", im.Name, n, sc.Name, err))
				}
				counts := map[string]int{}
				for i := range c.keys {
					counts[b.Lookup(keys, i)]++
				}
				var d distribution
				d.maxMean, d.minMean, d.chi2 = spread(counts, n, c.keys)
				if d.maxMean > worst.maxMean {
					worst.scheme, worst.maxMean, worst.minMean, worst.chi2 = sc.Name, d.maxMean, d.minMean, d.chi2
				}
				if bd, ok := b.Sharder.(*shard.Bounded); ok {
					// The bound is on partitions, not keys: every member
					// must own at most ceil(c·P·w/W) of them.
					loads, caps := bd.Loads(), bd.Capacities()
					for i := range loads {
						worst.partMax = max(worst.partMax, loads[i])
						worst.partBound = max(worst.partBound, caps[i])
						worst.partOK = worst.partOK && loads[i] <= caps[i]
					}
				}
			}
			c.dist[im.Name][n] = worst
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
	mean, ss := 0.0, 0.0
	for _, m := range maxes {
		mean += m / float64(trials)
	}
	for _, m := range maxes {
		ss += (m - mean) * (m - mean)
	}
	// The expected maximum of n roughly Gaussian shares is about
	// mean + z·sd with z ≈ 1.54 for n = 10 and ≈ 2.51 for n = 100.
	z := map[int]float64{10: 1.54, 100: 2.51}[n]
	return noiseFloor{
		median:  median(maxes),
		lo:      maxes[0],
		hi:      maxes[trials-1],
		sd:      math.Sqrt(ss / float64(max(trials-1, 1))),
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

// moves counts the keys whose owner changes when a shard joins 10, 50 and
// 100, under every naming scheme, keeping the worst scheme.
func (c *comparison) moves() {
	keys := impls.NewKeys(c.keys)
	c.moved = map[string]map[int]movement{}
	for _, im := range c.all {
		if !c.usable(im) {
			continue
		}
		logf("moves: %s", im.Name)
		c.moved[im.Name] = map[int]movement{}
		for _, n := range moveCounts {
			var worst movement
			for _, sc := range impls.NamingSchemes() {
				names := sc.Names(n + 1)
				before, err := im.New(names[:n])
				if err == nil {
					var after *impls.Built
					if after, err = im.New(names); err == nil {
						m := countMoves(before, after, keys, c.keys, names[n])
						if m.fraction > worst.fraction {
							worst.scheme, worst.fraction = sc.Name, m.fraction
						}
						worst.toOld = max(worst.toOld, m.toOld)
					}
				}
				if err != nil {
					worst.err = fmt.Errorf("%s: %w", sc.Name, err)
					break
				}
			}
			c.moved[im.Name][n] = worst
		}
	}
}

// countMoves compares the owners of the first k keys before and after
// newcomer joined.
func countMoves(before, after *impls.Built, keys *impls.Keys, k int, newcomer string) movement {
	var moved, toOld int
	for i := range k {
		a, b := before.Lookup(keys, i), after.Lookup(keys, i)
		if a != b {
			moved++
			if b != newcomer {
				toOld++
			}
		}
	}
	return movement{fraction: float64(moved) / float64(k), toOld: float64(toOld) / float64(k)}
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

// medianRatio is the median over runs of a's ns/op over b's in the same
// run: the two ran seconds apart, so a slow stretch of the shared machine
// hits both, where a ratio of medians taken over the whole measurement
// compares different stretches.
func (c *comparison) medianRatio(a, b string, n int) float64 {
	xs, ys := c.ns[a][n], c.ns[b][n]
	if len(xs) == 0 || len(xs) != len(ys) {
		return math.NaN()
	}
	rs := make([]float64, len(xs))
	for i := range xs {
		rs[i] = xs[i] / ys[i]
	}
	return median(rs)
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

// balanced are ours held to the noise floor's limit on max/mean.
var balanced = map[string]bool{
	impls.OursJump: true, impls.OursMaglev: true, impls.OursRendezvous: true,
}

// movesEverywhere are ours held to the moves target at every shard count,
// not only 10 → 11: Bounded with enough partitions per member for it.
var movesEverywhere = map[string]bool{impls.OursBounded64K: true}

const (
	maglevNsTarget  = 12.0
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
		"through one indirect call for every implementation: each lookup is a func(string) string, ours the method value of the concrete type "+
		"(`j.Shard` on a *shard.Jump, no interface dispatch behind it), the others a closure around the library's call, hashing included "+
		"(go-jump: `jump.Hash(xxhash.Sum64String(key), n)`). Median of %d runs; the range is min–max over the runs. "+
		"\"× consistent\" is the median ns/op over buraksezer/consistent's LocateKey (defaults) at the same shard count; "+
		"\"× same algorithm\" compares our Jump with go-jump and our Rendezvous with go-rendezvous: the median over runs of the "+
		"ratio within each run, where the two ran moments apart.\n\n",
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
				r := c.medianRatio(im.Name, other, n)
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
	schemes := impls.NamingSchemes()
	var schemeNames []string
	for _, sc := range schemes {
		schemeNames = append(schemeNames, "`"+sc.Name+"`")
	}
	fmt.Fprintf(body, "\n## Distribution\n\n")
	fmt.Fprintf(body, "%d keys over 10 and 100 shards named in each of %d schemes (%s); each row is the scheme with the highest max/mean "+
		"(the most loaded shard's keys over the average), named in the row. "+
		"The first row of each group is the noise floor: an ideal random assignment (each key to a uniformly random shard, "+
		"math/rand/v2 PCG with fixed seeds), median of %d simulated trials, range in brackets, and the Gaussian estimate "+
		"1 + z·√((N−1)/K) (z = 1.54 at N = 10, 2.51 at N = 100). A hash cannot be expected to beat it with this many keys, "+
		"so the balance target is relative to it: max/mean at most the median plus three standard deviations of the simulated "+
		"maxima, which a perfect hash exceeds about once in a thousand draws (a fixed 1.02 sat below the median itself at "+
		"100 shards and a million keys: a target on luck). For Bounded the partition columns check its guarantee over every scheme: "+
		"no member owns more than ceil(1.25·P/N) of the P partitions. "+
		"χ²/df is Pearson's statistic against an even split over its N−1 degrees of freedom: about 1 ± %.2f (N = 10) and "+
		"1 ± %.2f (N = 100) for a uniform random assignment, so a value near 1 with a high max/mean is an unlucky maximum, "+
		"not a biased hash.\n\n", c.keys, len(schemes), strings.Join(schemeNames, ", "), c.trials, math.Sqrt(2.0/9), math.Sqrt(2.0/99))
	fmt.Fprintf(body, "| implementation | shards | worst scheme | max/mean | min/mean | χ²/df | partitions max / bound | target | result |\n")
	fmt.Fprintf(body, "|---|--:|---|--:|--:|--:|--:|---|---|\n")
	for _, n := range shardCounts {
		f := c.floor[n]
		fmt.Fprintf(body, "| *ideal random assignment* | %d | | %.4f | | ≈ 1 | | noise floor [%.4f–%.4f], sd %.4f, estimate %.4f; limit %.4f | |\n",
			n, f.median, f.lo, f.hi, f.sd, f.formula, f.limit())
		for _, im := range c.all {
			if !c.usable(im) {
				continue
			}
			d := c.dist[im.Name][n]
			var checks []check
			if balanced[im.Name] {
				checks = append(checks, check{
					what: fmt.Sprintf("max/mean ≤ noise floor + 3 sd = %.4f", f.limit()),
					got: fmt.Sprintf("%.4f with %s names (%s the ideal random range %.4f–%.4f; χ²/df %.2f)",
						d.maxMean, d.scheme, within(d.maxMean, f), f.lo, f.hi, d.chi2),
					pass: d.maxMean <= f.limit(),
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
			fmt.Fprintf(body, "| %s | %d | %s | %.4f | %.4f | %.2f | %s | %s | %s |\n",
				im.Name, n, d.scheme, d.maxMean, d.minMean, d.chi2, parts, targets(checks), verdict(checks))
			for _, ch := range checks {
				ch.what = fmt.Sprintf("distribution, %s @%d shards: %s", im.Name, n, ch.what)
				all = append(all, ch)
			}
		}
	}

	// Moves.
	fmt.Fprintf(body, "\n## Moves: one shard joins 10, 50 and 100\n\n")
	fmt.Fprintf(body, "Fraction of %d keys whose owner changes when one shard joins n (the last name of the scheme's n+1), "+
		"as a multiple of the ideal 1/(n+1) (only the newcomer's fair share moves), for each of the %d naming schemes above; "+
		"each cell is the worst scheme, named in it. \"moved between old shards\" is the most, over schemes and counts, of the keys "+
		"that changed owner but did not go to the newcomer: movement a minimal scheme would not make. "+
		"For a perfect hash the sampling noise of the keys on the multiple is about ±%.3f, ±%.3f and ±%.3f (one standard deviation); "+
		"strategies that move whole partitions or ring arcs add the noise of the newcomer's count of them, about "+
		"√(P/(n+1)) of P partitions: ±5%% at 10 → 11 with 4096 partitions, ±16%% at 100 → 101, so Bounded holds the target "+
		"for every count only with more partitions per member (the P=65536 row). Held to ≤ %.2f × ideal: each of ours "+
		"at 10 → 11, and Bounded with 65,536 partitions at every count.\n\n",
		c.keys, len(schemes), keyNoise(10, c.keys), keyNoise(50, c.keys), keyNoise(100, c.keys), movesTarget)
	fmt.Fprintf(body, "| implementation |")
	for _, n := range moveCounts {
		fmt.Fprintf(body, " %d → %d × ideal (worst scheme) |", n, n+1)
	}
	fmt.Fprintf(body, " moved between old shards | target | result |\n|---|")
	for range moveCounts {
		fmt.Fprintf(body, "--:|")
	}
	fmt.Fprintf(body, "--:|---|---|\n")
	for _, im := range c.all {
		if !c.usable(im) {
			continue
		}
		var checks []check
		var cells []string
		toOld := 0.0
		for _, n := range moveCounts {
			m := c.moved[im.Name][n]
			if m.err != nil {
				cells = append(cells, "build failed: "+m.err.Error())
				continue
			}
			x := m.fraction * float64(n+1)
			toOld = max(toOld, m.toOld)
			cells = append(cells, fmt.Sprintf("%.3f (%s)", x, m.scheme))
			if im.Ours && (n == moveCounts[0] || movesEverywhere[im.Name]) {
				checks = append(checks, check{
					what: fmt.Sprintf("%d → %d ≤ %.2f × ideal, every scheme", n, n+1, movesTarget),
					got:  fmt.Sprintf("× %.3f (%s)", x, m.scheme), pass: x <= movesTarget,
				})
			}
		}
		fmt.Fprintf(body, "| %s | %s | %.4f | %s | %s |\n",
			im.Name, strings.Join(cells, " | "), toOld, targets(checks), verdict(checks))
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

// keyNoise is one standard deviation of the moved fraction's multiple of
// the ideal 1/(n+1) when k keys are sampled.
func keyNoise(n, k int) float64 {
	q := 1 / float64(n+1)
	return math.Sqrt(q*(1-q)/float64(k)) / q
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
