package redisqueue_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

var benchPayload = []byte(`{"user":12345678}`)

func forTopologies(b *testing.B, fn func(b *testing.B, q *redisqueue.Queue)) {
	for _, topo := range testenv.RedisTopologies {
		b.Run(topo.Name, func(b *testing.B) {
			fn(b, newQueue(b, topo.Client(b), redisqueue.Config{}))
		})
	}
}

func BenchmarkEnqueue(b *testing.B) {
	forTopologies(b, func(b *testing.B, q *redisqueue.Queue) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := q.Enqueue(ctx, queue.Job{Queue: "bench", Type: "email:send", Payload: benchPayload}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEnqueueParallel enqueues from 16 goroutines.
func BenchmarkEnqueueParallel(b *testing.B) {
	forTopologies(b, func(b *testing.B, q *redisqueue.Queue) {
		ctx := context.Background()
		b.ReportAllocs()
		b.SetParallelism((16 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := q.Enqueue(ctx, queue.Job{Queue: "bench", Type: "email:send", Payload: benchPayload}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkEnqueueBatch enqueues batches of 100; ns/op is per job.
func BenchmarkEnqueueBatch(b *testing.B) {
	forTopologies(b, func(b *testing.B, q *redisqueue.Queue) {
		ctx := context.Background()
		const size = 100
		batch := make([]queue.Job, size)
		for i := range batch {
			batch[i] = queue.Job{Queue: "bench" + strconv.Itoa(i%4), Type: "email:send", Payload: benchPayload}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i += size {
			if _, err := q.EnqueueBatch(ctx, batch[:min(size, b.N-i)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkProcess dequeues and acks b.N no-op jobs (enqueued beforehand,
// untimed) with 10 and 50 concurrent loops; ns/op is per job.
func BenchmarkProcess(b *testing.B) {
	for _, conc := range []int{10, 50} {
		b.Run("conc="+strconv.Itoa(conc), func(b *testing.B) {
			forTopologies(b, func(b *testing.B, q *redisqueue.Queue) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				batch := make([]queue.Job, 0, 500)
				for i := 0; i < b.N; i += 500 {
					batch = batch[:0]
					for k := 0; k < 500 && i+k < b.N; k++ {
						batch = append(batch, queue.Job{Queue: "proc", Type: "noop", Payload: benchPayload})
					}
					_, err := q.EnqueueBatch(ctx, batch)
					require.NoError(b, err)
				}
				var left atomic.Int64
				left.Store(int64(b.N))
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				for w := 0; w < conc; w++ {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							d, err := q.Dequeue(ctx, []string{"proc"}, time.Minute)
							if err != nil {
								b.Error(err)
								return
							}
							if err := d.Ack(ctx, nil); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		})
	}
}

// BenchmarkEnqueueDurable measures one Enqueue by default and waiting for one
// replica, on the Sentinel group and the Cluster: the durable ÷ default ratio of
// ns/op is the cost of WaitReplicas 1.
//
//	go test ./queue/redisqueue -run '^$' -bench EnqueueDurable -benchtime 2000x -count 5
func BenchmarkEnqueueDurable(b *testing.B) {
	for _, topo := range []testenv.RedisTopology{testenv.SentinelTopology, testenv.RedisTopologies[1]} {
		for _, mode := range []struct {
			name string
			cfg  redisqueue.Config
		}{{"default", redisqueue.Config{}}, {"durable", redisqueue.Config{WaitReplicas: 1}}} {
			b.Run(topo.Name+"/"+mode.name, func(b *testing.B) {
				q := newQueue(b, topo.Client(b), mode.cfg)
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := q.Enqueue(ctx, queue.Job{Queue: "bench", Type: "email:send", Payload: benchPayload}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkChain is the cost of chaining, per job, from one goroutine:
// Dequeue and Ack (the jobs enqueued beforehand, untimed), Dequeue, Ack
// and Enqueue of the next job (three round trips, and the next job lost
// to a crash between the last two), and Dequeue and AckThen of one next
// job (two round trips, one script for the step).
//
//	go test ./queue/redisqueue -run '^$' -bench Chain -benchtime 2000x -count 5
func BenchmarkChain(b *testing.B) {
	ctx := context.Background()
	job := queue.Job{Queue: "chain", Type: "noop", Payload: benchPayload, Retention: time.Second}
	settle := map[string]func(q *redisqueue.Queue, d *queue.Delivery) error{
		"Ack": func(_ *redisqueue.Queue, d *queue.Delivery) error { return d.Ack(ctx, nil) },
		"AckEnqueue": func(q *redisqueue.Queue, d *queue.Delivery) error {
			if err := d.Ack(ctx, nil); err != nil {
				return err
			}
			_, err := q.Enqueue(ctx, job)
			return err
		},
		"AckThen": func(_ *redisqueue.Queue, d *queue.Delivery) error {
			_, err := d.AckThen(ctx, nil, job)
			return err
		},
	}
	for _, name := range []string{"Ack", "AckEnqueue", "AckThen"} {
		b.Run(name, func(b *testing.B) {
			forTopologies(b, func(b *testing.B, q *redisqueue.Queue) {
				jobs := 1 // each op makes the next job
				if name == "Ack" {
					jobs = b.N
				}
				batch := make([]queue.Job, 0, 500)
				for i := 0; i < jobs; i += 500 {
					batch = batch[:0]
					for k := 0; k < 500 && i+k < jobs; k++ {
						batch = append(batch, job)
					}
					_, err := q.EnqueueBatch(ctx, batch)
					require.NoError(b, err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					d, err := q.Dequeue(ctx, []string{"chain"}, time.Minute)
					if err != nil {
						b.Fatal(err)
					}
					if err := settle[name](q, d); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
