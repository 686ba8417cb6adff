package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/shard"
)

// The growth section measures how the cost of a pick, an update and a
// constructor grows with the number of backends or shards, from 10 to
// 10,000: a change that keeps the 10-backend figure but makes a pick scan
// every backend shows here, where the fixed-size tables above cannot see it.
var growthSizes = []int{10, 100, 1_000, 10_000}

const (
	// growthPickRatio bounds a pick's cost at 10,000 backends as a multiple
	// of its cost at 10: a pick is to be O(1) or O(log n) in the backends.
	growthPickRatio = 2.0
	// growthBuildRatio bounds the cost of an update or constructor at
	// 10,000 members over its cost at 1,000: n log n gives 13.3, so 20
	// leaves room for cache effects while refusing anything quadratic.
	growthBuildRatio = 20.0
)

// growthHashConfig is the consistent hashing of the growth curves at every
// size: the partitions must be at least the members, and the default 4,096
// is meant for up to about a thousand; a user with 10,000 backends chooses
// more, once, as the curves do.
var growthHashConfig = balance.ConsistentHashConfig{Partitions: 65536}

// growthRow is one curve: a measurement at each of growthSizes.
type growthRow struct {
	name   string
	what   string // what one op is, for the configuration table
	pick   bool   // a pick (ns/op, ratio to the 10 cost) or a build (ratio per decade)
	ns     map[int][]float64
	allocs map[int][]int64
	err    map[int]error // the size was refused
}

// growthCurve builds a growthRow's benchmark at one size; run measures it
// once and returns ns/op and allocs/op.
type growthCurve struct {
	row *growthRow
	run func(n int) (ns float64, allocs int64, err error)
}

func (c *comparison) growth() {
	curves := []growthCurve{
		pickCurve("LeastLoaded Pick+Done", "balance.NewLeastLoaded(LeastLoadedConfig{})", func() (balance.Pinner, error) {
			return balance.NewLeastLoaded(balance.LeastLoadedConfig{}), nil
		}),
		pickCurve("P2C Pick+Done", "balance.NewP2C(P2CConfig{})", func() (balance.Pinner, error) {
			return balance.NewP2C(balance.P2CConfig{})
		}),
		pickCurve("ConsistentHash Pick+Done", "balance.NewConsistentHash(ConsistentHashConfig{Partitions: 65536}), keys cycled over 4,096", func() (balance.Pinner, error) {
			return balance.NewConsistentHash(growthHashConfig)
		}),
		pickCurve("RoundRobin Pick+Done", "balance.NewRoundRobin(), the O(1) reference", func() (balance.Pinner, error) {
			return balance.NewRoundRobin(), nil
		}),
		consistentHashCurve(),
		buildCurve("shard.NewBounded", "NewBounded(n members, BoundedConfig{Partitions: 65536})", func(ms []shard.Member) error {
			_, err := shard.NewBounded(ms, shard.BoundedConfig{Partitions: growthHashConfig.Partitions})
			return err
		}),
		buildCurve("shard.NewRing", "NewRing(n members, RingConfig{})", func(ms []shard.Member) error {
			_, err := shard.NewRing(ms, shard.RingConfig{})
			return err
		}),
		planRingCurve(),
	}
	logf("growth: %d curves at %v, %d runs", len(curves), growthSizes, c.runs)
	for run := 0; run < c.runs; run++ {
		for _, cv := range curves {
			for _, n := range growthSizes {
				if cv.row.err[n] != nil {
					continue
				}
				ns, allocs, err := cv.run(n)
				if err != nil {
					cv.row.err[n] = err
					continue
				}
				cv.row.ns[n] = append(cv.row.ns[n], ns)
				cv.row.allocs[n] = append(cv.row.allocs[n], allocs)
			}
		}
	}
	for _, cv := range curves {
		c.growthRows = append(c.growthRows, cv.row)
	}
}

func newGrowthRow(name, what string, pick bool) *growthRow {
	return &growthRow{name: name, what: what, pick: pick,
		ns: map[int][]float64{}, allocs: map[int][]int64{}, err: map[int]error{}}
}

func growthBackends(n int) []balance.Backend {
	bs := make([]balance.Backend, n)
	for i := range bs {
		bs[i] = balance.Backend{Addr: fmt.Sprintf("10.%d.%d.%d:8080", i>>16&255, i>>8&255, i&255)}
	}
	return bs
}

func growthMembers(n int) []shard.Member {
	ms := make([]shard.Member, n)
	for i := range ms {
		ms[i] = shard.Member{Name: fmt.Sprintf("node-%d", i), Weight: 1}
	}
	return ms
}

// pickCurve measures Pick+Done with load on: every backend holds one request
// in flight (taken with PickAddr and never Done), so a strategy that stops
// at the first idle backend cannot.
func pickCurve(name, what string, mk func() (balance.Pinner, error)) growthCurve {
	row := newGrowthRow(name, what, true)
	return growthCurve{row: row, run: func(n int) (float64, int64, error) {
		b, err := mk()
		if err != nil {
			return 0, 0, err
		}
		bs := growthBackends(n)
		if err := b.Update(bs); err != nil {
			return 0, 0, err
		}
		ctx := context.Background()
		held := make([]balance.Choice, 0, n)
		for _, be := range bs {
			ch, err := b.PickAddr(ctx, be.Addr)
			if err != nil {
				return 0, 0, err
			}
			held = append(held, ch)
		}
		keys := make([]string, 4096)
		for i := range keys {
			keys[i] = fmt.Sprintf("user-%d", i)
		}
		var failed error
		r := testing.Benchmark(func(tb *testing.B) {
			tb.ReportAllocs()
			for i := 0; tb.Loop(); i++ {
				ch, err := b.Pick(ctx, keys[i&4095])
				if err != nil {
					failed = err
					tb.FailNow()
				}
				ch.Done(nil)
			}
		})
		for i := range held {
			held[i].Done(nil)
		}
		if failed != nil {
			return 0, 0, failed
		}
		return float64(r.NsPerOp()), r.AllocsPerOp(), nil
	}}
}

// timeBuild times op, called after prepare (untimed), as the median of
// three calls, with its allocations counted from the runtime's malloc count:
// the big sizes take milliseconds, so testing.Benchmark's ramp-up would
// spend a run's budget on one size.
func timeBuild(prepare func() error, op func() error) (float64, int64, error) {
	var ns []float64
	var allocs int64
	for range 3 {
		if err := prepare(); err != nil {
			return 0, 0, err
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		t := time.Now()
		err := op()
		d := time.Since(t)
		runtime.ReadMemStats(&after)
		if err != nil {
			return 0, 0, err
		}
		ns = append(ns, float64(d.Nanoseconds()))
		allocs = max(allocs, int64(after.Mallocs-before.Mallocs))
	}
	return median(ns), allocs, nil
}

func nothing() error { return nil }

func buildCurve(name, what string, build func([]shard.Member) error) growthCurve {
	row := newGrowthRow(name, what, false)
	return growthCurve{row: row, run: func(n int) (float64, int64, error) {
		ms := growthMembers(n)
		return timeBuild(nothing, func() error { return build(ms) })
	}}
}

// consistentHashCurve measures an Update that adds the n-th backend to a
// ConsistentHash holding the other n−1, as a scale-out does.
func consistentHashCurve() growthCurve {
	row := newGrowthRow("ConsistentHash.Update", "Update(n backends) on a NewConsistentHash(ConsistentHashConfig{Partitions: 65536}) holding n−1 of them", false)
	return growthCurve{row: row, run: func(n int) (float64, int64, error) {
		bs := growthBackends(n)
		var h *balance.ConsistentHash
		prepare := func() (err error) {
			if h, err = balance.NewConsistentHash(growthHashConfig); err != nil {
				return err
			}
			if n == 1 {
				return nil
			}
			return h.Update(bs[:n-1])
		}
		return timeBuild(prepare, func() error { return h.Update(bs) })
	}}
}

// planRingCurve measures PlanMoves between a Ring of n members and one of
// n+1: the moves stay about the newcomer's share however big the ring.
func planRingCurve() growthCurve {
	row := newGrowthRow("shard.PlanMoves, Ring n → n+1", "PlanMoves(NewRing(n members), NewRing(n+1 members)), RingConfig{}", false)
	return growthCurve{row: row, run: func(n int) (float64, int64, error) {
		ms := growthMembers(n + 1)
		from, err := shard.NewRing(ms[:n], shard.RingConfig{})
		if err != nil {
			return 0, 0, err
		}
		to, err := shard.NewRing(ms, shard.RingConfig{})
		if err != nil {
			return 0, 0, err
		}
		return timeBuild(nothing, func() error {
			_, err := shard.PlanMoves(from, to)
			return err
		})
	}}
}

func (c *comparison) reportGrowth(body *strings.Builder) []check {
	var checks []check
	body.WriteString("## Growth: 10 → 10,000 backends and shards\n\n")
	fmt.Fprintf(body, "How the cost of one op grows with the number of backends (picks) or members (updates and constructors), "+
		"at %s. Picks run with load on: every backend holds one request in flight, taken with `PickAddr` before the timer and never "+
		"Done, so a strategy that stops at an idle backend cannot. Median of %d runs, interleaved across curves and sizes; "+
		"builds are the median of 3 calls per run. A pick's \"×\" is its cost over its own cost at 10 backends (target ≤ %.0f× at 10,000: "+
		"O(1) or O(log n)); a build's is its cost over its cost at the size ten times smaller (n log n gives 11–13×; target ≤ %.0f× "+
		"at every step, and 10,000 members accepted). "+
		"Over thousands of backends the counters of a backend drawn at random are mostly out of the CPU's caches, so a random "+
		"draw (P2C reads two backends) pays cache misses a table of 10 never does, though its work is the same; LeastLoaded takes "+
		"tied backends in turn, in the order their counters were allocated, which the prefetcher follows.\n\n",
		joinSizes(), c.runs, growthPickRatio, growthBuildRatio)
	body.WriteString("| op |")
	for _, n := range growthSizes {
		fmt.Fprintf(body, " %s | × |", thousands(n))
	}
	body.WriteString(" allocs/op at 10,000 | target | result |\n|---|")
	for range growthSizes {
		body.WriteString("--:|--:|")
	}
	body.WriteString("--:|---|---|\n")
	for _, r := range c.growthRows {
		fmt.Fprintf(body, "| %s |", r.name)
		for i, n := range growthSizes {
			if r.err[n] != nil {
				body.WriteString(" refused | — |")
				continue
			}
			m := median(r.ns[n])
			ratio := "1"
			if i > 0 {
				base := median(r.ns[growthSizes[0]])
				if !r.pick {
					base = median(r.ns[growthSizes[i-1]])
				}
				ratio = "—"
				if base > 0 && r.err[growthSizes[0]] == nil {
					ratio = fmt.Sprintf("%.1f", m/base)
				}
			}
			fmt.Fprintf(body, " %s | %s |", fmtDuration(m), ratio)
		}
		last := growthSizes[len(growthSizes)-1]
		var allocs string
		if a := r.allocs[last]; len(a) > 0 {
			allocs = fmt.Sprint(slices.Max(a))
		} else {
			allocs = "—"
		}
		rowChecks := r.checks()
		checks = append(checks, rowChecks...)
		fmt.Fprintf(body, " %s | %s | %s |\n", allocs, targets(rowChecks), verdict(rowChecks))
	}
	body.WriteString("\n| op | configuration |\n|---|---|\n")
	for _, r := range c.growthRows {
		fmt.Fprintf(body, "| %s | %s |\n", r.name, r.what)
	}
	body.WriteString("\n")
	return checks
}

func (r *growthRow) checks() []check {
	last := growthSizes[len(growthSizes)-1]
	if err := r.err[last]; err != nil {
		return []check{{what: fmt.Sprintf("growth, %s: %s accepted", r.name, thousands(last)),
			got: fmt.Sprintf("refused: %v", err)}}
	}
	if r.pick {
		base, top := median(r.ns[growthSizes[0]]), median(r.ns[last])
		ratio := top / base
		return []check{{what: fmt.Sprintf("growth, %s @%s backends ≤ %.0f× its cost @%d", r.name, thousands(last), growthPickRatio, growthSizes[0]),
			got: fmt.Sprintf("%.2f× (%s against %s)", ratio, fmtDuration(top), fmtDuration(base)), pass: ratio <= growthPickRatio}}
	}
	// The worst decade: a superlinear stretch between small sizes matters
	// as much as one between the largest.
	worst, at := 0.0, 0
	for i := 1; i < len(growthSizes); i++ {
		lo, hi := growthSizes[i-1], growthSizes[i]
		if r.err[lo] != nil {
			continue
		}
		if ratio := median(r.ns[hi]) / median(r.ns[lo]); ratio > worst {
			worst, at = ratio, i
		}
	}
	if at == 0 {
		return []check{{what: fmt.Sprintf("growth, %s: %s accepted", r.name, thousands(last)), got: "accepted", pass: true}}
	}
	lo, hi := growthSizes[at-1], growthSizes[at]
	return []check{{what: fmt.Sprintf("growth, %s: %s accepted, cost ≤ %.0f× per tenfold size", r.name, thousands(last), growthBuildRatio),
		got: fmt.Sprintf("worst %.1f× (%s at %s against %s at %s)", worst, fmtDuration(median(r.ns[hi])), thousands(hi),
			fmtDuration(median(r.ns[lo])), thousands(lo)), pass: worst <= growthBuildRatio}}
}

func joinSizes() string {
	s := make([]string, len(growthSizes))
	for i, n := range growthSizes {
		s[i] = thousands(n)
	}
	return strings.Join(s, ", ")
}

// fmtDuration prints ns with a unit that keeps three significant figures.
func fmtDuration(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	default:
		return fmt.Sprintf("%.3g ns", ns)
	}
}
