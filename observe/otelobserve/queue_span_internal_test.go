package otelobserve

import (
	"strconv"
	"testing"
)

// TestQueueSpans: each queue's span name and destination are its own,
// made once while there are at most maxQueueSpans queues, and still right
// (made per job) past that bound, which the remembered set never exceeds.
func TestQueueSpans(t *testing.T) {
	var s queueSpans
	for i := range maxQueueSpans + 6 {
		q := "q" + strconv.Itoa(i)
		qs := s.of(q)
		if qs.name != "process "+q || qs.destination.Value.AsString() != q {
			t.Fatalf("queue %s: name %q, destination %q", q, qs.name, qs.destination.Value.AsString())
		}
		if again := s.of(q); (again == qs) != (i < maxQueueSpans) {
			t.Errorf("queue %s (#%d): remembered %v, want %v", q, i, again == qs, i < maxQueueSpans)
		}
	}
	if n := len(*s.m.Load()); n != maxQueueSpans {
		t.Errorf("%d queues remembered, want %d", n, maxQueueSpans)
	}
}
