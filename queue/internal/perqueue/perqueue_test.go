package perqueue_test

import (
	"testing"

	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue/internal/perqueue"
)

// TestCounters checks what the backends rely on: nothing without a Meter,
// one series per queue with one, and no allocation once a queue's counter
// is bound.
func TestCounters(t *testing.T) {
	off := perqueue.New(nil, observe.QueueEnqueued)
	if off != nil || off.Get("a").Enabled() {
		t.Fatal("without a Meter: want nil Counters whose counters count nothing")
	}
	rec := observe.NewRecorder()
	c := perqueue.New(rec, observe.QueueEnqueued)
	c.Get("a").Inc()
	c.Get("a").Add(2)
	c.Get("b").Inc()
	if a, b := rec.Value("scaleout.queue.enqueued", "queue", "a"), rec.Value("scaleout.queue.enqueued", "queue", "b"); a != 3 || b != 1 {
		t.Errorf("a = %v, b = %v, want 3 and 1", a, b)
	}
	for name, cs := range map[string]*perqueue.Counters{"off": off, "on": c} {
		if allocs := testing.AllocsPerRun(1000, func() { cs.Get("a").Inc() }); allocs != 0 {
			t.Errorf("%s: %v allocations per Get and Inc, want 0", name, allocs)
		}
	}
}
