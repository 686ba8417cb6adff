package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/scaleout/scaleout/bench/impls"
	"github.com/scaleout/scaleout/shard"
)

// growthSizes are the member counts of the shard growth table.
var growthSizes = []int{10, 100, 1000, 10000}

// growthRow is one constructor or plan measured at every growth size.
type growthRow struct {
	name string
	ns   []float64 // per growthSizes; 0 when it failed
	err  error
}

// growthPartitions is Bounded's partition count at n members: the default
// up to 1,000, at least four per member above (65,536 at 10,000).
func growthPartitions(n int) int {
	p := shard.DefaultPartitions
	for p < 4*n {
		p *= 2
	}
	return p
}

// growth measures how the cost of building a Bounded and a Ring, and of
// planning the moves of one member joining a Ring, grows from 10 to 10,000
// members: a cost that grows faster than the members shows as a step
// ratio above 10. Each is one testing.Benchmark at -benchtime, so these are
// single samples: read the ratios, not the third digit.
func (c *comparison) growth() {
	names := impls.NamingSchemes()[1].Names // node-N
	bench := func(f func() error) (float64, error) {
		var err error
		res := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				if err = f(); err != nil {
					b.Fatal(err)
				}
			}
		})
		if res.N == 0 {
			return 0, err
		}
		return float64(res.T.Nanoseconds()) / float64(res.N), nil
	}
	rows := []*growthRow{
		{name: "shard.NewBounded (4096 partitions; 65,536 at 10,000 members)"},
		{name: "shard.NewRing (160 points per member)"},
		{name: "shard.PlanMoves(Ring of n, Ring of n+1)"},
	}
	for _, n := range growthSizes {
		logf("growth: %d members", n)
		all := shard.Members(names(n + 1)...)
		members := all[:n]
		from, err1 := shard.NewRing(members, shard.RingConfig{})
		to, err2 := shard.NewRing(all, shard.RingConfig{})
		fs := []func() error{
			func() error {
				_, err := shard.NewBounded(members, shard.BoundedConfig{Partitions: growthPartitions(n)})
				return err
			},
			func() error { _, err := shard.NewRing(members, shard.RingConfig{}); return err },
			func() error {
				if err1 != nil || err2 != nil {
					return fmt.Errorf("%v %v", err1, err2)
				}
				_, err := shard.PlanMoves(from, to)
				return err
			},
		}
		for i, f := range fs {
			ns, err := bench(f)
			rows[i].ns = append(rows[i].ns, ns)
			if err != nil && rows[i].err == nil {
				rows[i].err = fmt.Errorf("%d members: %w", n, err)
			}
		}
	}
	c.growthRows = rows
}

// reportGrowth writes the growth table.
func (c *comparison) reportGrowth(body *strings.Builder) {
	fmt.Fprintf(body, "\n## Growth: building and planning, 10 → 10,000 members\n\n")
	fmt.Fprintf(body, "Time of one call at each member count (members named node-N; one testing.Benchmark each), and in brackets "+
		"its ratio to the count ten times smaller: about 10 for a cost linear in the members, about 1 for one that tracks only "+
		"the change (PlanMoves adds one member whatever n is). Bounded's partitions grow with the members above 1,000, so its "+
		"last step is ×10 members and ×16 partitions.\n\n")
	fmt.Fprintf(body, "| operation |")
	for _, n := range growthSizes {
		fmt.Fprintf(body, " n = %d |", n)
	}
	fmt.Fprintf(body, "\n|---|")
	for range growthSizes {
		fmt.Fprintf(body, "--:|")
	}
	fmt.Fprintf(body, "\n")
	for _, r := range c.growthRows {
		fmt.Fprintf(body, "| %s |", r.name)
		for i, ns := range r.ns {
			switch {
			case ns == 0:
				fmt.Fprintf(body, " failed |")
			case i == 0 || r.ns[i-1] == 0:
				fmt.Fprintf(body, " %s |", fmtDuration(ns))
			default:
				fmt.Fprintf(body, " %s (×%.1f) |", fmtDuration(ns), ns/r.ns[i-1])
			}
		}
		fmt.Fprintf(body, "\n")
		if r.err != nil {
			fmt.Fprintf(body, "\n%s: %v\n\n", r.name, r.err)
		}
	}
}

// fmtDuration prints nanoseconds as µs or ms.
func fmtDuration(ns float64) string {
	if ns >= 1e6 {
		return fmt.Sprintf("%.1f ms", ns/1e6)
	}
	return fmt.Sprintf("%.0f µs", ns/1e3)
}
