package queue

import (
	"context"
	"testing"
	"time"

	"github.com/scaleout/scaleout/observe"
)

// metricsCycle returns one job's round through a Memory queue and a
// Worker, without the Worker's goroutines: Enqueue, Dequeue, and the
// Worker's run of the handler and Ack (process). With a Meter, both
// report to it.
func metricsCycle(tb testing.TB, m observe.Meter) func() {
	q, err := NewMemory(MemoryConfig{Meter: m})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = q.Close() })
	w, err := NewWorker(q, WorkerConfig{Queues: map[string]int{"q": 1}, Meter: m})
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.HandleFunc("t", func(context.Context, *Delivery) error { return nil }); err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	job := Job{Queue: "q", Type: "t", Retention: time.Millisecond}
	queues := []string{"q"}
	return func() {
		if _, err := q.Enqueue(ctx, job); err != nil {
			tb.Fatal(err)
		}
		d, err := q.Dequeue(ctx, queues, time.Minute)
		if err != nil {
			tb.Fatal(err)
		}
		if next := w.process(ctx, ctx, d); next != nil {
			tb.Fatal("process leased another job")
		}
	}
}

// TestMetricsAllocateNothing checks that the queue's metrics add no
// allocation to a job's round (Enqueue, Dequeue, the Worker's run and
// Ack), with a Meter or without: the allocations are the queue's and the
// Worker's own, the same number either way.
func TestMetricsAllocateNothing(t *testing.T) {
	off := testing.AllocsPerRun(1000, metricsCycle(t, nil))
	rec := observe.NewRecorder()
	on := testing.AllocsPerRun(1000, metricsCycle(t, rec))
	if on != off {
		t.Errorf("a job's round allocates %v times with a Recorder, %v without a Meter: want the same", on, off)
	}
	if got := rec.Value("scaleout.queue.succeeded", "queue", "q"); got < 1000 {
		t.Errorf("succeeded = %v after 1000 rounds: the Recorder was not fed", got)
	}
	t.Logf("%v allocations per round, with or without metrics", off)
}

// BenchmarkWorkerProcess is one job's round through a Memory queue and
// the Worker's process (see metricsCycle), without metrics and with a
// Recorder.
func BenchmarkWorkerProcess(b *testing.B) {
	for _, bc := range []struct {
		name string
		m    observe.Meter
	}{{"off", nil}, {"recorder", observe.NewRecorder()}} {
		b.Run(bc.name, func(b *testing.B) {
			cycle := metricsCycle(b, bc.m)
			b.ReportAllocs()
			for b.Loop() {
				cycle()
			}
		})
	}
}
