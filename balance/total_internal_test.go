package balance

import (
	"context"
	"fmt"
	"testing"
)

// TestRunningTotalAcrossThreshold: ConsistentHash keeps its running total
// only on sets of runningTotalMin backends or more, and a request counts in
// it only if it was picked from such a set, so Updates across the threshold
// in either direction, with requests in flight, leave the total exact: it
// never counts a request twice, never goes negative, and is zero once every
// request is Done.
func TestRunningTotalAcrossThreshold(t *testing.T) {
	backends := func(n int) []Backend {
		bs := make([]Backend, n)
		for i := range bs {
			bs[i] = Backend{Addr: fmt.Sprintf("10.0.0.%d:80", i)}
		}
		return bs
	}
	h, err := NewConsistentHash(ConsistentHashConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pick := func(n int) []Choice {
		var cs []Choice
		for i := range n {
			c, err := h.Pick(ctx, fmt.Sprint("key-", i))
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
		return cs
	}
	done := func(cs []Choice) {
		for i := range cs {
			cs[i].Done(nil)
		}
	}
	want := func(step string, n int64) {
		t.Helper()
		if got := h.reg.totals.load(); got != n {
			t.Fatalf("%s: running total %d, want %d", step, got, n)
		}
	}

	small, large := runningTotalMin/8, runningTotalMin*2
	if err := h.Update(backends(small)); err != nil {
		t.Fatal(err)
	}
	a := pick(5)
	want("picks from a small set", 0)
	if err := h.Update(backends(large)); err != nil {
		t.Fatal(err)
	}
	b := pick(7)
	want("picks from a large set", 7)
	done(a)
	want("the small set's requests Done", 7)
	c := pick(3)
	want("more picks from the large set", 10)
	if err := h.Update(backends(small)); err != nil {
		t.Fatal(err)
	}
	d := pick(4)
	want("picks from a small set again", 10)
	done(b)
	want("the large set's requests Done after it shrank", 3)
	done(c)
	done(d)
	want("every request Done", 0)
}
