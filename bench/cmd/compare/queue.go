package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scaleout/scaleout/bench/impls"
)

// Queue targets, from the queue package's issue.
const (
	drainRatioTarget       = 2.0  // each of ours over the stronger asynq, jobs/s, at each concurrency
	enqSerialRatioTarget   = 1.0  // each of ours Enqueue over the stronger asynq Enqueue, serial
	enqParallelRatioTarget = 1.5  // the same from 16 goroutines
	enqBatchRatioTarget    = 10.0 // ours EnqueueBatch(100) over the stronger asynq serial Enqueue
	latencyP50Target       = time.Millisecond
	latencyP99Target       = 5 * time.Millisecond
	memoryJobsTarget       = 500_000.0 // jobs/s of queue.Memory, raw Dequeue/Ack loop
)

// queueSection holds the queue measurements.
type queueSection struct {
	skip    string // why the Redis rows were not measured; "" when they were
	memSkip string // why bytes per job was not measured
	latency time.Duration
	memJobs int

	// drain[impl][conc] holds jobs/s of each run.
	drain map[string]map[int][]float64
	// enq[mode] holds jobs/s of each run.
	enq map[string][]float64
	// lat[impl] pools the latency samples of every run; latRuns[impl]
	// holds each run's p50 and p99.
	lat     map[string][]time.Duration
	latRuns map[string][][2]time.Duration
	// mem[mode] holds jobs/s of each run of queue.Memory.
	mem map[string][]float64
	// bytes[impl] is bytes per backlog job in Redis.
	bytes map[string]float64
}

var queueDrainImpls = impls.QueueImpls
var queueLatImpls = impls.QueueImpls
var queueMemModes = []string{impls.QueueMemRaw, impls.QueueMemWorker}

func newQueueSection() *queueSection {
	q := &queueSection{
		drain: map[string]map[int][]float64{}, enq: map[string][]float64{},
		lat: map[string][]time.Duration{}, latRuns: map[string][][2]time.Duration{},
		mem: map[string][]float64{}, bytes: map[string]float64{},
	}
	for _, im := range queueDrainImpls {
		q.drain[im] = map[int][]float64{}
	}
	return q
}

// queues runs the queue measurements c.runs times, interleaved (run,
// then measurement, then implementation), then bytes per job once.
func (c *comparison) queues() {
	q := newQueueSection()
	q.latency, q.memJobs = c.queueLatency, c.queueMemJobs
	c.queue = q
	env, err := impls.NewQueueEnv()
	if err != nil {
		fatal(err)
	}
	if env == nil {
		q.skip = fmt.Sprintf("$%s unset", impls.RedisAddrEnv)
		logf("queue benchmarks: %s: Redis rows not measured", q.skip)
	}
	fail := func(err error) {
		if env != nil {
			_ = env.Close()
		}
		fatal(err)
	}
	for r := range c.runs {
		logf("queue benchmarks: run %d of %d", r+1, c.runs)
		if env != nil {
			for _, conc := range impls.QueueDrainConcurrency {
				for _, im := range queueDrainImpls {
					x, err := env.Drain(im, conc, impls.QueueDrainJobs)
					if err != nil {
						fail(fmt.Errorf("queue drain, %s, concurrency %d: %w", im, conc, err))
					}
					q.drain[im][conc] = append(q.drain[im][conc], x)
				}
			}
			res, err := env.EnqueueRun()
			if err != nil {
				fail(fmt.Errorf("queue enqueue: %w", err))
			}
			for _, mode := range impls.QueueEnqueueModes {
				q.enq[mode] = append(q.enq[mode], res[mode])
			}
			for _, im := range queueLatImpls {
				lat, err := env.Latency(im, c.queueLatency)
				if err != nil {
					fail(fmt.Errorf("queue latency, %s: %w", im, err))
				}
				q.lat[im] = append(q.lat[im], lat...)
				q.latRuns[im] = append(q.latRuns[im], [2]time.Duration{impls.Percentile(lat, 50), impls.Percentile(lat, 99)})
			}
		}
		for _, mode := range queueMemModes {
			x, err := impls.MemoryDrain(mode == impls.QueueMemWorker, impls.QueueMemoryJobs)
			if err != nil {
				fail(fmt.Errorf("queue.Memory drain, %s: %w", mode, err))
			}
			q.mem[mode] = append(q.mem[mode], x)
		}
	}
	if env != nil {
		if err := env.Close(); err != nil {
			logf("queue benchmarks: cleaning up: %v", err)
		}
	}
	for _, im := range queueLatImpls {
		slices.Sort(q.lat[im])
	}

	logf("queue benchmarks: bytes per job, %s jobs each, on a private redis-server", thousands(q.memJobs))
	pr, err := impls.StartPrivateRedis()
	if err != nil {
		q.memSkip = fmt.Sprintf("no private redis-server: %v", err)
		logf("queue benchmarks: %s", q.memSkip)
		return
	}
	defer pr.Close()
	for _, im := range []string{impls.QueueMemOurs, impls.QueueMemAsynq} {
		x, err := pr.MemoryPerJob(im, q.memJobs)
		if err != nil {
			pr.Close()
			fatal(fmt.Errorf("queue bytes per job, %s: %w", im, err))
		}
		q.bytes[im] = x
	}
}

// stronger returns the runs of the stronger of asynq's two configurations:
// the one with the higher median over the runs (a on a tie). Per-run
// ratios are then taken against that one row; the higher of the two in
// each run would instead hold us to the best draw of two samples of the
// same thing wherever a mode does not use what tuning changes (serial
// Enqueue uses one connection and never polls).
func stronger(a, b []float64) []float64 {
	if len(b) > 0 && (len(a) == 0 || median(b) > median(a)) {
		return b
	}
	return a
}

// runRatios returns num[i]/den[i] for every run both measured.
func runRatios(num, den []float64) []float64 {
	var xs []float64
	for i := range min(len(num), len(den)) {
		xs = append(xs, num[i]/den[i])
	}
	return xs
}

// ratioCheck holds the median of the per-run ratios to ≥ target.
func ratioCheck(what string, xs []float64, target float64, skip string) check {
	ch := check{what: fmt.Sprintf("%s ≥ %.1f×", what, target)}
	if len(xs) == 0 {
		ch.got = "nothing (" + skip + ")"
		return ch
	}
	x := median(xs)
	ch.got, ch.pass = fmt.Sprintf("%.2f× (runs %.2f–%.2f)", x, slices.Min(xs), slices.Max(xs)), x >= target
	return ch
}

// medianRatio is the median of the per-run ratios num/den, formatted; ""
// when no run measured both.
func medianRatio(num, den []float64) string {
	if rs := runRatios(num, den); len(rs) > 0 {
		return fmt.Sprintf("%.2f", median(rs))
	}
	return ""
}

func fmtRate(xs []float64) string {
	if len(xs) == 0 {
		return "not measured"
	}
	return thousands(int(median(xs) + 0.5))
}

func fmtRange(xs []float64) string {
	if len(xs) == 0 {
		return ""
	}
	return thousands(int(slices.Min(xs)+0.5)) + "–" + thousands(int(slices.Max(xs)+0.5))
}

func fmtMs(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// reportQueue writes the queue section and returns its checks.
func (c *comparison) reportQueue(body *strings.Builder) []check {
	q := c.queue
	var all []check
	add := func(checks ...check) {
		for _, ch := range checks {
			ch.what = "queue, " + ch.what
			all = append(all, ch)
		}
	}
	skipNote := ""
	if q.skip != "" {
		skipNote = fmt.Sprintf(" **Redis rows not measured: %s.**", q.skip)
	}
	fmt.Fprintf(body, "## Queue\n\n")
	fmt.Fprintf(body, "scaleout's queue (queue.Worker on queue/redisqueue; queue.Memory) against hibiken/asynq v0.26.0, "+
		"on the same Redis ($%s, loopback) in the same process run. Each figure is a whole measurement of a fixed amount "+
		"of work, repeated %d times, interleaved (each run measures every implementation in turn); medians reported, "+
		"range min–max over the runs. Ratios are taken within a run (ours and asynq measured back to back) and the median "+
		"of the runs' ratios is what the targets are held to. Every measurement uses a queue of its own, deleted after it; "+
		"asynq's keys (\"asynq:*\", DB 0: it has no key prefix) are deleted with SCAN+DEL before and after. "+
		"Payloads are %d bytes.%s\n\n", impls.RedisAddrEnv, c.runs, impls.QueuePayloadSize, skipNote)

	// Drain.
	fmt.Fprintf(body, "### Processing throughput\n\n")
	fmt.Fprintf(body, "%s no-op jobs enqueued before the timer (ours: EnqueueBatch; asynq: Enqueue from 16 goroutines), then "+
		"the workers start and the clock runs until the handler has been called for the last job; jobs/s. Each side runs "+
		"at its defaults and tuned alike (configurations below); every run measures all four. The target holds each of "+
		"our rows to the stronger asynq row (the one with the higher median), by the median of the per-run ratios; the "+
		"× columns give the median of the runs' ratios to each asynq row.\n\n", thousands(impls.QueueDrainJobs))
	fmt.Fprintf(body, "| implementation | concurrency | jobs/s (median) | range | × asynq defaults | × asynq tuned | target | result |\n")
	fmt.Fprintf(body, "|---|--:|--:|--:|--:|--:|---|---|\n")
	for _, conc := range impls.QueueDrainConcurrency {
		best := stronger(q.drain[impls.QueueAsynqDefault][conc], q.drain[impls.QueueAsynqTuned][conc])
		for _, im := range queueDrainImpls {
			xs := q.drain[im][conc]
			var checks []check
			vsDef, vsTuned := "", ""
			if impls.QueueIsOurs(im) {
				checks = append(checks, ratioCheck(fmt.Sprintf("drain @%d: %s × stronger asynq", conc, im),
					runRatios(xs, best), drainRatioTarget, q.skip))
				vsDef = medianRatio(xs, q.drain[impls.QueueAsynqDefault][conc])
				vsTuned = medianRatio(xs, q.drain[impls.QueueAsynqTuned][conc])
			}
			fmt.Fprintf(body, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", im, conc, fmtRate(xs), fmtRange(xs), vsDef, vsTuned,
				targets(checks), verdict(checks))
			add(checks...)
		}
	}

	// Enqueue.
	fmt.Fprintf(body, "\n### Enqueue\n\n")
	fmt.Fprintf(body, "Jobs/s enqueued, each mode into a queue of its own and through a producer of its configuration: one by one "+
		"from one goroutine (%s jobs), from %d goroutines (%s jobs in all), and with our EnqueueBatch of %d jobs per call "+
		"from one goroutine (%s jobs). asynq has no batch enqueue: our batch is held to a multiple of its serial Enqueue. "+
		"One untimed call first for each (ours loads its script, asynq registers the queue). The modes are "+
		"block-interleaved: each mode's jobs are split into %d blocks and the blocks run mode after mode, the starting mode "+
		"rotating every round, so every mode samples the same stretches of the machine; a mode's jobs/s is its jobs over "+
		"the sum of its blocks' times. Targets hold each of our modes to the stronger of asynq's two configurations in the "+
		"same mode (serial for the batch), the one with the higher median, by the median of the per-run ratios.\n\n",
		thousands(impls.QueueEnqueueSerial), impls.QueueEnqueueWorkers, thousands(impls.QueueEnqueueParJobs),
		impls.QueueBatchSize, thousands(impls.QueueBatchJobs), impls.QueueEnqueueBlocks)
	enqTargets := map[string]float64{
		impls.QueueEnqSerial: enqSerialRatioTarget, impls.QueueEnqParallel: enqParallelRatioTarget, impls.QueueEnqBatch: enqBatchRatioTarget,
	}
	fmt.Fprintf(body, "| mode | jobs/s (median) | range | × stronger asynq (median of runs) | target | result |\n|---|--:|--:|--:|---|---|\n")
	for _, kind := range []string{impls.QueueEnqSerial, impls.QueueEnqParallel, impls.QueueEnqBatch} {
		ref := kind
		if kind == impls.QueueEnqBatch {
			ref = impls.QueueEnqSerial
		}
		best := stronger(q.enq[impls.QueueEnqMode(impls.QueueAsynqDefault, ref)], q.enq[impls.QueueEnqMode(impls.QueueAsynqTuned, ref)])
		for _, im := range impls.QueueImpls {
			mode := impls.QueueEnqMode(im, kind)
			if !slices.Contains(impls.QueueEnqueueModes, mode) {
				continue
			}
			var checks []check
			ratio := ""
			if impls.QueueIsOurs(im) {
				ch := ratioCheck(fmt.Sprintf("enqueue, %s × stronger asynq (%s)", mode, ref), runRatios(q.enq[mode], best), enqTargets[kind], q.skip)
				checks = append(checks, ch)
				ratio, _, _ = strings.Cut(ch.got, " (")
			}
			xs := q.enq[mode]
			fmt.Fprintf(body, "| %s | %s | %s | %s | %s | %s |\n", mode, fmtRate(xs), fmtRange(xs), ratio, targets(checks), verdict(checks))
			add(checks...)
		}
	}
	fmt.Fprintf(body, "\n%s\n", enqueueCoalescingNote)

	// Latency.
	fmt.Fprintf(body, "\n### Enqueue-to-handler latency\n\n")
	fmt.Fprintf(body, "Workers at concurrency %d idle on an empty queue; a producer enqueues %d jobs/s on a steady schedule "+
		"for %s per run, each payload carrying the time read just before its Enqueue call; the handler records its start "+
		"time minus that (so the enqueue round trip is included). Percentiles over the samples of all %d runs pooled; "+
		"the range is of the runs' own percentiles.\n\n",
		impls.QueueLatencyConc, impls.QueueLatencyRate, q.latency, c.runs)
	fmt.Fprintf(body, "| implementation | samples | p50 | p50 range | p99 | p99 range | target | result |\n")
	fmt.Fprintf(body, "|---|--:|--:|--:|--:|--:|---|---|\n")
	for _, im := range queueLatImpls {
		lat := q.lat[im]
		var checks []check
		if impls.QueueIsOurs(im) {
			p50 := check{what: im + ": latency p50 ≤ " + fmtMs(latencyP50Target)}
			p99 := check{what: im + ": latency p99 ≤ " + fmtMs(latencyP99Target)}
			if len(lat) == 0 {
				p50.got, p99.got = "nothing ("+q.skip+")", "nothing ("+q.skip+")"
			} else {
				a, b := impls.Percentile(lat, 50), impls.Percentile(lat, 99)
				p50.got, p50.pass = fmtMs(a), a <= latencyP50Target
				p99.got, p99.pass = fmtMs(b), b <= latencyP99Target
			}
			checks = append(checks, p50, p99)
		}
		if len(lat) == 0 {
			fmt.Fprintf(body, "| %s | not measured: %s | | | | | %s | %s |\n", im, q.skip, targets(checks), verdict(checks))
		} else {
			var p50s, p99s []float64
			for _, r := range q.latRuns[im] {
				p50s, p99s = append(p50s, float64(r[0])), append(p99s, float64(r[1]))
			}
			fmt.Fprintf(body, "| %s | %d | %s | %.2f–%.2f | %s | %.2f–%.2f | %s | %s |\n", im, len(lat),
				fmtMs(impls.Percentile(lat, 50)), slices.Min(p50s)/1e6, slices.Max(p50s)/1e6,
				fmtMs(impls.Percentile(lat, 99)), slices.Min(p99s)/1e6, slices.Max(p99s)/1e6, targets(checks), verdict(checks))
		}
		add(checks...)
	}

	// In-memory.
	fmt.Fprintf(body, "\n### queue.Memory processing\n\n")
	fmt.Fprintf(body, "%s no-op jobs enqueued before the timer (EnqueueBatch of 1,000) into a fresh queue.Memory, then drained "+
		"either by one goroutine calling Dequeue and Ack in a loop (the target's row) or by a queue.Worker at concurrency 10 "+
		"(no target; it adds per-job goroutine hand-off, a heartbeat timer and a per-job context); jobs/s. "+
		"GOMAXPROCS %d.\n\n", thousands(impls.QueueMemoryJobs), c.gomaxprocs)
	fmt.Fprintf(body, "| mode | jobs/s (median) | range | target | result |\n|---|--:|--:|---|---|\n")
	for _, mode := range queueMemModes {
		xs := q.mem[mode]
		var checks []check
		if mode == impls.QueueMemRaw {
			ch := check{what: fmt.Sprintf("queue.Memory, raw Dequeue/Ack loop ≥ %s jobs/s", thousands(int(memoryJobsTarget)))}
			if len(xs) == 0 {
				ch.got = "nothing"
			} else {
				ch.got, ch.pass = fmtRate(xs)+" jobs/s", median(xs) >= memoryJobsTarget
			}
			checks = append(checks, ch)
		}
		fmt.Fprintf(body, "| %s | %s | %s | %s | %s |\n", mode, fmtRate(xs), fmtRange(xs), targets(checks), verdict(checks))
		add(checks...)
	}
	fmt.Fprintf(body, "\n%s\n", jobHeapNote)

	// Bytes per job.
	fmt.Fprintf(body, "\n### Redis memory per backlog job\n\n")
	fmt.Fprintf(body, "A backlog of %s jobs with %d-byte payloads written into a private redis-server this tool starts on a free "+
		"loopback port (no persistence, FLUSHALL before each implementation; one job enqueued before the baseline so "+
		"per-queue keys and loaded scripts are not counted), nothing consuming them; bytes per job is the INFO memory "+
		"used_memory delta over the job count. Ours enqueues with EnqueueBatch, asynq with Enqueue from 16 goroutines; "+
		"both with default job options (asynq's task hash holds a protobuf message, ours a hash of fields). "+
		"Measured once (it does not vary between runs).\n\n", thousands(q.memJobs), impls.QueuePayloadSize)
	fmt.Fprintf(body, "| implementation | bytes per job | target | result |\n|---|--:|---|---|\n")
	memCh := check{what: "Redis bytes per backlog job: ours ≤ asynq"}
	ob, ook := q.bytes[impls.QueueMemOurs]
	ab, aok := q.bytes[impls.QueueMemAsynq]
	if ook && aok {
		memCh.got, memCh.pass = fmt.Sprintf("%.0f vs %.0f B/job (%.2f×)", ob, ab, ob/ab), ob <= ab
	} else {
		memCh.got = "nothing (" + q.memSkip + ")"
	}
	for _, im := range []string{impls.QueueMemOurs, impls.QueueMemAsynq} {
		var checks []check
		if im == impls.QueueMemOurs {
			checks = append(checks, memCh)
		}
		if x, ok := q.bytes[im]; ok {
			fmt.Fprintf(body, "| %s | %.1f | %s | %s |\n", im, x, targets(checks), verdict(checks))
		} else {
			fmt.Fprintf(body, "| %s | not measured: %s | %s | %s |\n", im, q.memSkip, targets(checks), verdict(checks))
		}
	}
	add(memCh)

	fmt.Fprintf(body, "\n| configuration | what it is |\n|---|---|\n")
	for _, im := range impls.QueueImpls {
		fmt.Fprintf(body, "| %s | %s |\n", im, impls.QueueConfigs[im])
	}
	fmt.Fprintf(body, "| jobs | %s |\n", impls.QueueJobsConfig)
	return all
}

// enqueueCoalescingNote and jobHeapNote record two decisions of issue 18
// about hand-written parts of the queues, with the figures they rest on
// (measured apart from this tool, by the commands they give).
const (
	enqueueCoalescingNote = "**Enqueue coalescing** (redisqueue): while 2 enqueue script calls of a queue are in flight, " +
		"further Enqueues of it wait and go together in the next call. `BenchmarkEnqueueCoalescing` measures it on and off " +
		"(every Enqueue its own call) in alternating blocks of 320 jobs on the real Redis " +
		"(`cd queue/redisqueue && go test -run '^$' -bench EnqueueCoalescing -benchtime 12800x -count 3 .`). From 16 goroutines " +
		"it pays: on/off 1.72× the jobs/s (runs 1.66–2.13×; 7,562 against 4,095 jobs/s in the median run, load average 27 " +
		"on 2 cores, 2026-12-07), so it is kept. From one goroutine it never engages (a lone caller sends at once, on the " +
		"same code path either way); the runs' 0.79–0.94 there is that load's noise."
	jobHeapNote = "**queue.Memory's heaps** (scheduled jobs, leases) are container/heap since issue 18. The hand-written heap " +
		"they replaced was faster per push and remove by 6 to 15% (3 to 25 ns at 10 and 1,000 jobs; `cd queue && go test " +
		"-run '^$' -bench JobHeap -count 3 .`, the two in alternating blocks), which is below the noise of a Dequeue and Ack " +
		"(`BenchmarkMemoryDequeueAck`, 10 jobs in flight: medians 10.1 and 10.3 µs over 10 alternating runs of each build " +
		"at load average 20, about 1.6 µs on a quiet machine): not measurable on the hot path, so the standard library's heap it is."
)
