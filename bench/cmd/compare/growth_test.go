package main

import (
	"errors"
	"strings"
	"testing"
)

func growthRowOf(pick bool, ns ...float64) *growthRow {
	r := newGrowthRow("op", "", pick)
	for i, n := range growthSizes {
		r.ns[n] = []float64{ns[i]}
	}
	return r
}

func TestGrowthChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		row  *growthRow
		pass bool
		got  string
	}{
		{"flat pick", growthRowOf(true, 50, 55, 60, 99), true, "1.98×"},
		{"pick that scans", growthRowOf(true, 50, 200, 2000, 20000), false, "400.00×"},
		{"n log n build", growthRowOf(false, 1, 13, 170, 2200), true, "worst 13.1×"},
		// Only the step from 10 to 100 is quadratic: the worst step counts.
		{"quadratic between small sizes", growthRowOf(false, 1, 100, 1100, 13000), false, "worst 100.0×"},
	} {
		chs := tc.row.checks()
		if len(chs) != 1 || chs[0].pass != tc.pass || !strings.Contains(chs[0].got, tc.got) {
			t.Errorf("%s: got %+v, want pass %v and %q", tc.name, chs, tc.pass, tc.got)
		}
	}
	refused := growthRowOf(false, 1, 10, 100, 0)
	refused.err[10_000] = errors.New("too many members")
	if chs := refused.checks(); len(chs) != 1 || chs[0].pass || !strings.Contains(chs[0].got, "refused: too many members") {
		t.Errorf("refused at 10,000: got %+v, want a miss that says why", chs)
	}
}
