// Command failoverfigures reads the output of `go test -v` over the failover
// tests and the durable benchmarks of the Redis-backed primitives (make
// failover-figures) and prints their figures side by side as Markdown: one
// row per primitive, topology and setting, from the lines
// testenv.LogFailoverFigures wrote, and the cost of each durable setting as
// the ratio of median ns/op, durable ÷ default.
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scaleout/scaleout/internal/testenv"
)

func main() {
	figs, benches, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "failoverfigures:", err)
		os.Exit(1)
	}
	if len(figs) == 0 {
		fmt.Fprintln(os.Stderr, "failoverfigures: no figures in the input (run the tests with -v)")
		os.Exit(1)
	}
	write(os.Stdout, figs, benches)
}

// columns are the counts in the order of the table.
var columns = []string{
	testenv.CountAcknowledged, testenv.CountFailed, testenv.CountJobsLost, testenv.CountJobsTwice,
	testenv.CountRolledBack, testenv.CountLogoutUndone, testenv.CountTokenFaults, testenv.CountStaleKeys,
}

// primitives orders the rows.
var primitives = []string{"queue", "session", "elector", "cache"}

// parse reads figures lines and benchmark results (ns/op of every run, by
// benchmark name without its -GOMAXPROCS suffix).
func parse(r io.Reader) ([]testenv.FailoverFigures, map[string][]float64, error) {
	var figs []testenv.FailoverFigures
	benches := map[string][]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pending := "" // the benchmark whose result is still to come
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, testenv.FiguresMarker); i >= 0 {
			var f testenv.FailoverFigures
			if err := json.Unmarshal([]byte(line[i+len(testenv.FiguresMarker):]), &f); err != nil {
				return nil, nil, fmt.Errorf("figures line %q: %w", line, err)
			}
			figs = append(figs, f)
			continue
		}
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "Benchmark") {
			pending = benchName(f[0])
			f = f[1:]
		}
		// A benchmark's result may come lines after its name, when the
		// code under test logged in between (go-redis's sentinel client
		// logs each master it finds).
		if ns, ok := nsPerOp(f); ok && pending != "" {
			benches[pending] = append(benches[pending], ns)
			pending = ""
		}
	}
	return figs, benches, sc.Err()
}

// benchName strips the -GOMAXPROCS suffix off a benchmark's name.
func benchName(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

// nsPerOp parses a result's fields: "2000 252000 ns/op ...".
func nsPerOp(f []string) (float64, bool) {
	if len(f) < 3 || f[2] != "ns/op" {
		return 0, false
	}
	if _, err := strconv.Atoi(f[0]); err != nil {
		return 0, false
	}
	ns, err := strconv.ParseFloat(f[1], 64)
	return ns, err == nil
}

func write(w io.Writer, figs []testenv.FailoverFigures, benches map[string][]float64) {
	slices.SortStableFunc(figs, func(a, b testenv.FailoverFigures) int {
		return cmp.Or(cmp.Compare(rank(a.Primitive), rank(b.Primitive)), cmp.Compare(a.Topology, b.Topology), cmp.Compare(a.Setting, b.Setting))
	})
	fmt.Fprintf(w, "| primitive | topology | setting | switches | %s | kill to first acknowledged operation |\n", strings.Join(columns, " | "))
	fmt.Fprintf(w, "|---|---|---|--:|%s--:|\n", strings.Repeat("--:|", len(columns)))
	for _, f := range figs {
		cells := make([]string, len(columns))
		for i, c := range columns {
			cells[i] = "–"
			if n, ok := f.Counts[c]; ok {
				cells[i] = strconv.Itoa(n)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s |\n", f.Primitive, f.Topology, f.Setting, f.Switches, strings.Join(cells, " | "), span(f.KillToFirst))
	}
	names := make([]string, 0, len(benches))
	for name := range benches {
		if strings.HasSuffix(name, "/default") {
			names = append(names, strings.TrimSuffix(name, "/default"))
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| benchmark | default ns/op | durable ns/op | durable ÷ default | runs |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|")
	for _, name := range names {
		def, dur := benches[name+"/default"], benches[name+"/durable"]
		if len(dur) == 0 {
			continue
		}
		md, mu := median(def), median(dur)
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.2f | %d |\n", name, md, mu, mu/md, min(len(def), len(dur)))
	}
}

func rank(primitive string) int {
	if i := slices.Index(primitives, primitive); i >= 0 {
		return i
	}
	return len(primitives)
}

// span is the range of ds, rounded to 0.1 s, or "–" without a kill; a
// negative duration is a kill with no acknowledged operation after it.
func span(ds []time.Duration) string {
	var after []time.Duration
	for _, d := range ds {
		if d >= 0 {
			after = append(after, d)
		}
	}
	if len(after) == 0 {
		return "–"
	}
	s := fmt.Sprintf("%.1f–%.1f s (%d kills)", slices.Min(after).Seconds(), slices.Max(after).Seconds(), len(ds))
	if n := len(ds) - len(after); n > 0 {
		s += fmt.Sprintf(", %d with none after", n)
	}
	return s
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
