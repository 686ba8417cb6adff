package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
)

// TestTable: figures logged by two tests (in go test -v's indentation, out of
// order) and benchmark runs make one row per test, queue first, and the
// durable ratio of the median runs.
func TestTable(t *testing.T) {
	rec := &lineRecorder{TB: t}
	testenv.LogFailoverFigures(rec, testenv.FailoverFigures{Primitive: "session", Topology: "sentinel", Setting: "durable", Switches: 20,
		Counts: map[string]int{testenv.CountAcknowledged: 900, testenv.CountRolledBack: 0}})
	testenv.LogFailoverFigures(rec, testenv.FailoverFigures{Primitive: "queue", Topology: "cluster", Setting: "default", Switches: 20,
		Counts:      map[string]int{testenv.CountAcknowledged: 447, testenv.CountJobsLost: 3},
		KillToFirst: []time.Duration{3300 * time.Millisecond, 5260 * time.Millisecond}})
	out := strings.Join([]string{
		"=== RUN   TestFailoverCluster/default",
		"    failover_test.go:215: " + rec.lines[0],
		"    durable_test.go:281: " + rec.lines[1],
		"BenchmarkEnqueueDurable/sentinel/default-2   \t    2000\t    250000 ns/op\t     300 B/op",
		"BenchmarkEnqueueDurable/sentinel/default-2   \t    2000\t    260000 ns/op\t     300 B/op",
		"BenchmarkEnqueueDurable/sentinel/default-2   \tredis: 2026/12/07 12:53:42 sentinel.go:1081: sentinel: selected addr=127.0.0.1:26393",
		"redis: 2026/12/07 12:53:42 sentinel.go:1248: sentinel: new master=\"scaleout\" addr=\"127.0.0.1:6391\"",
		"    2000\t    990000 ns/op\t     300 B/op",
		"BenchmarkEnqueueDurable/sentinel/durable-2   \t    2000\t    500000 ns/op\t     300 B/op",
		"BenchmarkEnqueueDurable/sentinel/durable-2   \t    2000\t    520000 ns/op\t     300 B/op",
		"BenchmarkEnqueueDurable/sentinel/durable-2   \t    2000\t    530000 ns/op\t     300 B/op",
		"PASS",
	}, "\n")
	figs, benches, err := parse(strings.NewReader(out))
	require.NoError(t, err)
	require.Len(t, figs, 2)
	require.Len(t, benches["BenchmarkEnqueueDurable/sentinel/default"], 3)
	var b strings.Builder
	write(&b, figs, benches)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 8, b.String())
	require.Equal(t, "| queue | cluster | default | 20 | 447 | – | 3 | – | – | – | – | – | 3.3–5.3 s (2 kills) |", lines[2])
	require.Equal(t, "| session | sentinel | durable | 20 | 900 | – | – | – | 0 | – | – | – | – |", lines[3])
	require.Equal(t, "| BenchmarkEnqueueDurable/sentinel | 260000 | 520000 | 2.00 | 3 |", lines[7])
}

func TestParseRejectsBrokenFigures(t *testing.T) {
	_, _, err := parse(strings.NewReader("    x_test.go:1: " + testenv.FiguresMarker + "{\"primitive\":"))
	require.Error(t, err)
}

// lineRecorder keeps what is logged instead of printing it.
type lineRecorder struct {
	testing.TB
	lines []string
}

func (r *lineRecorder) Helper()               {}
func (r *lineRecorder) Log(args ...any)       { r.lines = append(r.lines, args[0].(string)) }
func (r *lineRecorder) Fatalf(string, ...any) { r.TB.Fatal("unexpected Fatalf") }
