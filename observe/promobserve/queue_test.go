package promobserve_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/observe/promobserve"
	"github.com/scaleout/scaleout/queue"
)

// TestQueue runs a known workload through a Memory queue, a Worker and a
// DepthReporter reporting to one registry, and checks the series a
// Prometheus server would scrape under the names an admin page reads:
// counters by queue, the handler histogram with the queue's own buckets,
// and the depth by queue and state.
func TestQueue(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := promobserve.New(reg)
	q, err := queue.NewMemory(queue.MemoryConfig{Meter: m})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := t.Context()
	var ids []queue.JobID
	for _, typ := range []string{"ok", "ok", "fail"} {
		id, err := q.Enqueue(ctx, queue.Job{Queue: "mail", Type: typ, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := q.Enqueue(ctx, queue.Job{Queue: "mail", Type: "ok", RunAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	w, err := queue.NewWorker(q, queue.WorkerConfig{Queues: map[string]int{"mail": 1}, Meter: m, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	_ = w.HandleFunc("ok", func(context.Context, *queue.Delivery) error { return nil })
	_ = w.HandleFunc("fail", func(context.Context, *queue.Delivery) error { return errors.New("no") })
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	for _, id := range ids {
		if _, err := q.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	<-done
	r, err := queue.NewDepthReporter(q, queue.DepthReporterConfig{Meter: m})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rstop := context.WithCancel(ctx)
	rdone := make(chan error, 1)
	go func() { rdone <- r.Run(rctx) }()
	for deadline := time.Now().Add(10 * time.Second); gather(t, reg)["scaleout_queue_oldest_age_seconds"] == nil; {
		if time.Now().After(deadline) {
			t.Fatal("the DepthReporter did not poll within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	rstop()
	<-rdone
	if err := m.Err(); err != nil {
		t.Fatal(err)
	}

	fams := gather(t, reg)
	mail := map[string]string{"queue": "mail"}
	for name, want := range map[string]float64{
		"scaleout_queue_enqueued_total":      4,
		"scaleout_queue_started_total":       3,
		"scaleout_queue_succeeded_total":     2,
		"scaleout_queue_failed_total":        1,
		"scaleout_queue_retried_total":       0,
		"scaleout_queue_dead_lettered_total": 1,
		"scaleout_queue_lease_losses_total":  0,
	} {
		if got := series(t, fams[name], mail).GetCounter().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	hist := series(t, fams["scaleout_queue_handler_duration_seconds"], mail).GetHistogram()
	if hist.GetSampleCount() != 3 || len(hist.GetBucket()) != len(observe.QueueHandlerDuration.Buckets) {
		t.Errorf("handler duration: %d samples in %d buckets, want 3 in %d", hist.GetSampleCount(), len(hist.GetBucket()), len(observe.QueueHandlerDuration.Buckets))
	}
	for state, want := range map[string]float64{"ready": 0, "scheduled": 1, "active": 0, "dead": 1} {
		labels := map[string]string{"queue": "mail", "state": state}
		if got := series(t, fams["scaleout_queue_depth"], labels).GetGauge().GetValue(); got != want {
			t.Errorf("depth %s = %v, want %v", state, got, want)
		}
	}
	if got := series(t, fams["scaleout_queue_oldest_age_seconds"], mail).GetGauge().GetValue(); got != 0 {
		t.Errorf("oldest age = %v, want 0 (nothing ready)", got)
	}
}
