package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/queue"
)

// BenchmarkMemoryChain is the cost of chaining on a Memory queue, per job:
// Ack alone (the queue filled beforehand, untimed), Ack then Enqueue of
// the next job in two calls (what a handler would do without a Chainer,
// and lose the next job to a crash between them), and AckThen of one next
// job in one step. Each op dequeues one job and settles it.
//
//	go test ./queue -run '^$' -bench MemoryChain -count 5
func BenchmarkMemoryChain(b *testing.B) {
	ctx := context.Background()
	queues := []string{"bench"}
	job := queue.Job{Queue: "bench", Type: "noop", Payload: []byte(`{"user":12345678}`), Retention: time.Millisecond}
	newQueue := func(b *testing.B, jobs int) *queue.Memory {
		m, err := queue.NewMemory(queue.MemoryConfig{})
		require.NoError(b, err)
		b.Cleanup(func() { _ = m.Close() })
		batch := make([]queue.Job, min(jobs, 1000))
		for i := range batch {
			batch[i] = job
		}
		for n := 0; n < jobs; n += len(batch) {
			_, err := m.EnqueueBatch(ctx, batch[:min(len(batch), jobs-n)])
			require.NoError(b, err)
		}
		return m
	}
	settle := map[string]func(m *queue.Memory, d *queue.Delivery) error{
		"Ack": func(_ *queue.Memory, d *queue.Delivery) error { return d.Ack(ctx, nil) },
		"AckEnqueue": func(m *queue.Memory, d *queue.Delivery) error {
			if err := d.Ack(ctx, nil); err != nil {
				return err
			}
			_, err := m.Enqueue(ctx, job)
			return err
		},
		"AckThen": func(_ *queue.Memory, d *queue.Delivery) error {
			_, err := d.AckThen(ctx, nil, job)
			return err
		},
	}
	for _, name := range []string{"Ack", "AckEnqueue", "AckThen"} {
		b.Run(name, func(b *testing.B) {
			jobs := 1 // each op makes the next job
			if name == "Ack" {
				jobs = b.N
			}
			m := newQueue(b, jobs)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				d, err := m.Dequeue(ctx, queues, time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				if err := settle[name](m, d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
