package bench

import (
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/scaleout/scaleout/bench/impls"
)

// Queue benchmarks: scaleout's queue package (queue.Worker on
// queue/redisqueue; queue.Memory) side by side with hibiken/asynq v0.26.0
// on the same Redis (bodies in impls/queue.go, shared with cmd/compare,
// which repeats them, interleaved, and reports medians, ratios and
// targets). Each iteration is one whole measurement of a fixed amount of
// work, so run them once each and read the custom metrics, not ns/op:
//
//	cd bench && eval "$(../scripts/services.sh env)"
//	go test -run '^$' -bench 'Queue' -benchtime 1x -count 3 .
//
// <impl> is one of four configurations: ours-default, asynq-default
// (each side as a user builds it with the least code), ours-tuned and
// asynq-tuned (both with PoolSize 64, asynq with a 10 ms
// TaskCheckInterval); see impls.QueueConfigs.
//
// BenchmarkQueueDrain/<impl>/c<N>: 20,000 no-op jobs pre-enqueued, then
// workers at concurrency N drain them; jobs/s.
// BenchmarkQueueEnqueue: serial and 16 goroutines in every configuration,
// and our EnqueueBatch of 100, block-interleaved
// (impls.QueueEnv.EnqueueRun); metrics <impl>-<serial|16|batch100>-jobs/s.
// BenchmarkQueueLatency/<impl>: enqueue-to-handler-start latency with a
// producer at 200 jobs/s for -queue-latency; p50-ms, p99-ms.
// BenchmarkQueueMemory/{worker,raw}: queue.Memory drained by a Worker
// at concurrency 10, or by a raw Dequeue/Ack loop; jobs/s.
// BenchmarkQueueRedisBytesPerJob/<impl>: used_memory delta per backlog
// job on a private redis-server (needs redis-server in $PATH), for
// -queue-mem-jobs jobs; B/job.
//
// The Redis benchmarks skip without SCALEOUT_REDIS_ADDR. They delete
// their own keys and every "asynq:*" key before and after.

var (
	queueMemJobs = flag.Int("queue-mem-jobs", impls.QueueMemPerJobN, "backlog jobs of BenchmarkQueueRedisBytesPerJob (e.g. 1000000)")
	queueLatency = flag.Duration("queue-latency", 2*time.Second, "producer duration of BenchmarkQueueLatency")
)

func queueEnv(b *testing.B) *impls.QueueEnv {
	b.Helper()
	env, err := impls.NewQueueEnv()
	if err != nil {
		b.Fatal(err)
	}
	if env == nil {
		b.Skipf(`%s unset: run eval "$(../scripts/services.sh env)" first`, impls.RedisAddrEnv)
	}
	b.Cleanup(func() {
		if err := env.Close(); err != nil {
			b.Errorf("cleaning up: %v", err)
		}
	})
	return env
}

var queueBenchNames = map[string]string{
	impls.QueueOursDefault:  "ours-default",
	impls.QueueAsynqDefault: "asynq-default",
	impls.QueueOursTuned:    "ours-tuned",
	impls.QueueAsynqTuned:   "asynq-tuned",
	impls.QueueEnqSerial:    "serial",
	impls.QueueEnqParallel:  "16",
	impls.QueueEnqBatch:     "batch100",
}

// queueEnqBenchName names an enqueue mode's metric: <impl>-<kind>.
func queueEnqBenchName(impl, kind string) string {
	return queueBenchNames[impl] + "-" + queueBenchNames[kind]
}

func BenchmarkQueueDrain(b *testing.B) {
	env := queueEnv(b)
	for _, impl := range impls.QueueImpls {
		for _, conc := range impls.QueueDrainConcurrency {
			b.Run(fmt.Sprintf("%s/c%d", queueBenchNames[impl], conc), func(b *testing.B) {
				var sum float64
				for range b.N {
					jps, err := env.Drain(impl, conc, impls.QueueDrainJobs)
					if err != nil {
						b.Fatal(err)
					}
					sum += jps
				}
				b.ReportMetric(sum/float64(b.N), "jobs/s")
			})
		}
	}
}

func BenchmarkQueueEnqueue(b *testing.B) {
	env := queueEnv(b)
	sums := map[string]float64{}
	for range b.N {
		res, err := env.EnqueueRun()
		if err != nil {
			b.Fatal(err)
		}
		for mode, x := range res {
			sums[mode] += x
		}
	}
	for _, kind := range []string{impls.QueueEnqSerial, impls.QueueEnqParallel, impls.QueueEnqBatch} {
		for _, impl := range impls.QueueImpls {
			if x, ok := sums[impls.QueueEnqMode(impl, kind)]; ok {
				b.ReportMetric(x/float64(b.N), queueEnqBenchName(impl, kind)+"-jobs/s")
			}
		}
	}
}

func BenchmarkQueueLatency(b *testing.B) {
	env := queueEnv(b)
	for _, impl := range impls.QueueImpls {
		b.Run(queueBenchNames[impl], func(b *testing.B) {
			var all []time.Duration
			for range b.N {
				lat, err := env.Latency(impl, *queueLatency)
				if err != nil {
					b.Fatal(err)
				}
				all = append(all, lat...)
			}
			slices.Sort(all)
			b.ReportMetric(float64(impls.Percentile(all, 50))/1e6, "p50-ms")
			b.ReportMetric(float64(impls.Percentile(all, 99))/1e6, "p99-ms")
		})
	}
}

func BenchmarkQueueMemory(b *testing.B) {
	for _, worker := range []bool{true, false} {
		name := "raw"
		if worker {
			name = "worker"
		}
		b.Run(name, func(b *testing.B) {
			var sum float64
			for range b.N {
				jps, err := impls.MemoryDrain(worker, impls.QueueMemoryJobs)
				if err != nil {
					b.Fatal(err)
				}
				sum += jps
			}
			b.ReportMetric(sum/float64(b.N), "jobs/s")
		})
	}
}

func BenchmarkQueueRedisBytesPerJob(b *testing.B) {
	r, err := impls.StartPrivateRedis()
	if err != nil {
		b.Skipf("no private redis-server: %v", err)
	}
	b.Cleanup(r.Close)
	for _, impl := range []string{impls.QueueMemOurs, impls.QueueMemAsynq} {
		b.Run(map[string]string{impls.QueueMemOurs: "ours", impls.QueueMemAsynq: "asynq"}[impl], func(b *testing.B) {
			var sum float64
			for range b.N {
				x, err := r.MemoryPerJob(impl, *queueMemJobs)
				if err != nil {
					b.Fatal(err)
				}
				sum += x
			}
			b.ReportMetric(sum/float64(b.N), "B/job")
		})
	}
}
