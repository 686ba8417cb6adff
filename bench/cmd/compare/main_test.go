package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scaleout/scaleout/bench/impls"
)

func TestProxybenchBlock(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	block := proxybenchStart + "\n## Proxy\n\n| a |\n" + proxybenchEnd
	for _, tc := range []struct {
		name, file, want string
		err              bool
	}{
		{name: "block", file: "# old\n\n" + block + "\n", want: block},
		{name: "sections after the block", file: "# old\n\n" + block + "\n\n## By hand\n\ntext\n\n", want: block + "\n\n## By hand\n\ntext"},
		{name: "none", file: "# old\n", want: ""},
		{name: "start only", file: proxybenchStart + "\n", err: true},
		{name: "end only", file: proxybenchEnd + "\n", err: true},
		{name: "reversed", file: proxybenchEnd + "\n" + proxybenchStart + "\n", err: true},
	} {
		got, err := proxybenchBlock(write(tc.name, tc.file))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q, error %v", tc.name, got, err, tc.want, tc.err)
		}
	}
	if got, err := proxybenchBlock(filepath.Join(dir, "missing")); got != "" || err != nil {
		t.Errorf("missing file: got %q, %v", got, err)
	}
}

// TestReportCacheUnmeasured: without servers, every remote row is marked
// not measured, its targets missed, and nothing panics on the empty rows.
func TestReportCacheUnmeasured(t *testing.T) {
	c := &comparison{runs: 1, gomaxprocs: 2}
	for _, cc := range impls.CacheCases() {
		r := &cacheRow{cc: cc}
		if cc.Env != "" {
			r.skip = "$" + cc.Env + " unset"
		} else {
			r.ns, r.allocs, r.bytes = []float64{100}, []int64{1}, []int64{1024}
			if cc.Parallel {
				r.ns = []float64{50}
			}
		}
		c.cacheRows = append(c.cacheRows, r)
	}
	for _, il := range impls.CacheInterleavedCases() {
		c.cacheIL = append(c.cacheIL, &ilRow{il: il, skip: "$" + il.Env + " unset"})
	}
	var sb strings.Builder
	checks := c.reportCache(&sb)
	out := sb.String()
	if !strings.Contains(out, "## Cache") || !strings.Contains(out, "not measured: $"+impls.RedisAddrEnv+" unset") {
		t.Fatalf("report lacks the section or the skip reason:\n%s", out)
	}
	passed, missed := tally(checks)
	// Memory's parallel target (2.00×) passes; the interleaved Loader
	// ratios (3 Redis, 1 Memcached) and the three local rows' ns and
	// allocs targets (6) are missed.
	if passed != 1 || missed != 10 {
		t.Errorf("%d passed, %d missed; want 1, 10:\n%+v", passed, missed, checks)
	}
	if !strings.Contains(out, "interleaved ratios") {
		t.Errorf("report lacks the interleaved ratios table:\n%s", out)
	}
}

// TestInterleavedRatios: the remote ratio targets are the median over runs
// of each interleaved run's ratio, not ratios of the per-row medians; the
// table shows the median and the range.
func TestInterleavedRatios(t *testing.T) {
	c := &comparison{runs: 3, gomaxprocs: 2}
	for _, cc := range impls.CacheCases() {
		// Per-row medians that would make every Loader ratio miss by far
		// (and the memcached Loader look twice as fast as the raw client).
		r := &cacheRow{cc: cc, ns: []float64{100}, allocs: []int64{1}, bytes: []int64{1024}}
		switch cc.Name {
		case impls.CacheRedisLoader:
			r.ns = []float64{300}
		case impls.CacheRawMemcache:
			r.ns = []float64{200}
		}
		c.cacheRows = append(c.cacheRows, r)
	}
	runs := map[string][]map[string]float64{
		"redis": {
			{"loader/raw": 1.30, "loader/go-redis-cache": 0.97, "loader/eko-gocache": 0.95, "loader-ns/op": 40e3, "raw-goredis-ns/op": 39e3},
			{"loader/raw": 1.02, "loader/go-redis-cache": 0.99, "loader/eko-gocache": 0.96, "loader-ns/op": 41e3, "raw-goredis-ns/op": 40e3},
			{"loader/raw": 1.01, "loader/go-redis-cache": 1.20, "loader/eko-gocache": 1.04, "loader-ns/op": 42e3, "raw-goredis-ns/op": 41e3},
		},
		"memcached": {
			{"loader/raw": 1.05}, {"loader/raw": 1.12}, {"loader/raw": 1.15},
		},
	}
	for _, il := range impls.CacheInterleavedCases() {
		c.cacheIL = append(c.cacheIL, &ilRow{il: il, extra: runs[il.Bench]})
	}
	want := map[string]struct {
		got  string
		pass bool
	}{
		impls.CacheRedisLoader + "/" + impls.CacheRawGoRedis:      {"× 1.020 (runs 1.010–1.300)", true},
		impls.CacheRedisLoader + "/" + impls.CacheGoRedisCache:    {"× 0.990 (runs 0.970–1.200)", true},
		impls.CacheRedisLoader + "/" + impls.CacheEko:             {"× 0.960 (runs 0.950–1.040)", true},
		impls.CacheMemcachedLoader + "/" + impls.CacheRawMemcache: {"× 1.120 (runs 1.050–1.150)", false},
	}
	for _, tg := range remoteRatioTargets {
		ch := c.ilRatioCheck(tg)
		w := want[tg.num+"/"+tg.den]
		if ch.got != w.got || ch.pass != w.pass {
			t.Errorf("%s: got %q, pass %v; want %q, %v", ch.what, ch.got, ch.pass, w.got, w.pass)
		}
	}
	var sb strings.Builder
	c.reportCache(&sb)
	out := sb.String()
	for _, s := range []string{
		"| remote hit, Redis | " + impls.CacheRedisLoader + " × " + impls.CacheRawGoRedis + " | 1.020 | 1.010–1.300 | 41,000 / 40,000 |",
		"1.020 × " + impls.CacheRawGoRedis + " (interleaved)",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("report lacks %q:\n%s", s, out)
		}
	}
}

// TestReportQueueUnmeasured: without Redis, every Redis row is marked not
// measured and its target missed; queue.Memory's target is still held.
func TestReportQueueUnmeasured(t *testing.T) {
	q := newQueueSection()
	q.skip, q.memSkip = "$"+impls.RedisAddrEnv+" unset", "no private redis-server: not found"
	q.latency, q.memJobs = time.Second, 1000
	q.mem[impls.QueueMemRaw] = []float64{600_000, 700_000, 400_000}
	q.mem[impls.QueueMemWorker] = []float64{100_000}
	c := &comparison{runs: 3, gomaxprocs: 2, queue: q}
	var sb strings.Builder
	checks := c.reportQueue(&sb)
	out := sb.String()
	for _, s := range []string{"## Queue", "Redis rows not measured: $" + impls.RedisAddrEnv + " unset",
		"| " + impls.QueueMemRaw + " | 600,000 | 400,000–700,000 |", "not measured: no private redis-server"} {
		if !strings.Contains(out, s) {
			t.Errorf("report lacks %q:\n%s", s, out)
		}
	}
	passed, missed := tally(checks)
	// Both of ours: drain at 10 and 50, three enqueue ratios, p50 and
	// p99; bytes per job: missed; queue.Memory: met.
	if passed != 1 || missed != 15 {
		t.Errorf("%d passed, %d missed; want 1, 15:\n%+v", passed, missed, checks)
	}
}

// TestQueueRatios: the ratio targets are the median of the per-run
// ratios (not the ratio of the medians) to the stronger asynq
// configuration, the one with the higher median, whichever it is.
func TestQueueRatios(t *testing.T) {
	q := newQueueSection()
	q.latency, q.memJobs = time.Second, 1000
	for _, conc := range impls.QueueDrainConcurrency {
		q.drain[impls.QueueOursDefault][conc] = []float64{100, 300, 200}
		q.drain[impls.QueueOursTuned][conc] = []float64{90, 600, 300}
		q.drain[impls.QueueAsynqDefault][conc] = []float64{40, 200, 100}
		q.drain[impls.QueueAsynqTuned][conc] = []float64{50, 150, 120} // the stronger: median 120 against 100
	}
	mode := impls.QueueEnqMode
	q.enq[mode(impls.QueueOursDefault, impls.QueueEnqSerial)] = []float64{10, 10, 10}
	q.enq[mode(impls.QueueOursTuned, impls.QueueEnqSerial)] = []float64{10, 10, 10}
	q.enq[mode(impls.QueueAsynqDefault, impls.QueueEnqSerial)] = []float64{10, 20, 5}
	q.enq[mode(impls.QueueAsynqTuned, impls.QueueEnqSerial)] = []float64{5, 5, 10} // the weaker, though ahead in run 1
	q.enq[mode(impls.QueueOursDefault, impls.QueueEnqParallel)] = []float64{30, 30, 30}
	q.enq[mode(impls.QueueOursTuned, impls.QueueEnqParallel)] = []float64{30, 30, 30}
	q.enq[mode(impls.QueueAsynqDefault, impls.QueueEnqParallel)] = []float64{20, 20, 20}
	q.enq[mode(impls.QueueAsynqTuned, impls.QueueEnqParallel)] = []float64{10, 10, 10}
	q.enq[mode(impls.QueueOursDefault, impls.QueueEnqBatch)] = []float64{100, 100, 100}
	q.enq[mode(impls.QueueOursTuned, impls.QueueEnqBatch)] = []float64{100, 100, 100}
	for _, im := range queueLatImpls {
		q.lat[im] = []time.Duration{time.Millisecond / 2, time.Millisecond, 4 * time.Millisecond}
		q.latRuns[im] = [][2]time.Duration{{time.Millisecond, 4 * time.Millisecond}}
	}
	q.bytes[impls.QueueMemOurs], q.bytes[impls.QueueMemAsynq] = 200, 500
	c := &comparison{runs: 3, gomaxprocs: 2, queue: q}
	var sb strings.Builder
	got := map[string]check{}
	for _, ch := range c.reportQueue(&sb) {
		got[ch.what] = ch
	}
	want := map[string]struct {
		got  string
		pass bool
	}{
		"queue, drain @10: ours, defaults × stronger asynq ≥ 2.0×":                                                      {"2.00× (runs 1.67–2.00)", true},
		"queue, drain @50: ours, tuned × stronger asynq ≥ 2.0×":                                                         {"2.50× (runs 1.80–4.00)", true},
		"queue, enqueue, ours, defaults: Enqueue, serial × stronger asynq (Enqueue, serial) ≥ 1.0×":                     {"1.00× (runs 0.50–2.00)", true},
		"queue, enqueue, ours, tuned: Enqueue, 16 goroutines × stronger asynq (Enqueue, 16 goroutines) ≥ 1.5×":          {"1.50× (runs 1.50–1.50)", true},
		"queue, enqueue, ours, defaults: EnqueueBatch, 100 per call, serial × stronger asynq (Enqueue, serial) ≥ 10.0×": {"10.00× (runs 5.00–20.00)", true},
		"queue, ours, defaults: latency p50 ≤ 1.00 ms":                                                                  {"1.00 ms", true},
		"queue, ours, tuned: latency p99 ≤ 5.00 ms":                                                                     {"4.00 ms", true},
		"queue, Redis bytes per backlog job: ours ≤ asynq":                                                              {"200 vs 500 B/job (0.40×)", true},
		"queue, queue.Memory, raw Dequeue/Ack loop ≥ 500,000 jobs/s":                                                    {"nothing", false},
	}
	for what, w := range want {
		ch, ok := got[what]
		if !ok {
			t.Errorf("no check %q; have %v", what, got)
			continue
		}
		if ch.got != w.got || ch.pass != w.pass {
			t.Errorf("%s: got %q, pass %v; want %q, %v", what, ch.got, ch.pass, w.got, w.pass)
		}
	}
}

// tally counts the checks a report met and missed.
func tally(checks []check) (passed, missed int) {
	for _, ch := range checks {
		if ch.pass {
			passed++
		} else {
			missed++
		}
	}
	return passed, missed
}
