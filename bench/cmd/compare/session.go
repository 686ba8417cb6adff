package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/scaleout/scaleout/bench/impls"
)

// Session targets, from the session issue: one request through the
// middleware on Redis, against scs configured alike (IdleTimeout 30m,
// Lifetime 24h).
const (
	sessionIncrementTimeTarget   = 1.0 // ours ÷ scs, time
	sessionIncrementAllocsTarget = 0.5 // ours ÷ scs, allocs
	sessionReadTimeTarget        = 0.6 // ours ÷ scs, time
)

// sessionSection holds the session measurements.
type sessionSection struct {
	env  *impls.SessionEnv
	skip string // why the Redis rows were not measured
	libs map[string]*impls.SessionLib
	// ns, allocs and writes per workload and library, one entry per run.
	ns     map[string]map[string][]float64
	allocs map[string]map[string][]int64
	writes map[string]map[string][]float64
	// il[workload][lib] is the interleaved mean ns/op of each run.
	il map[string]map[string][]float64
}

// sessionILLibs are the Redis libraries measured interleaved.
var sessionILLibs = []string{impls.SessionOursRedis, impls.SessionSCSRedis, impls.SessionSCSRedisDefault}

func (c *comparison) buildSessions() error {
	env, err := impls.NewSessionEnv()
	if err != nil {
		return err
	}
	s := &sessionSection{env: env, libs: map[string]*impls.SessionLib{},
		ns: map[string]map[string][]float64{}, allocs: map[string]map[string][]int64{},
		writes: map[string]map[string][]float64{}, il: map[string]map[string][]float64{}}
	c.session = s
	for _, name := range impls.SessionLibs {
		lib, err := env.Build(name)
		if errors.Is(err, impls.ErrSessionRedisUnset) {
			s.skip = err.Error()
			continue
		}
		if err != nil {
			return err
		}
		s.libs[name] = lib
	}
	for _, w := range impls.SessionWorkloads {
		s.ns[w.Name], s.allocs[w.Name] = map[string][]float64{}, map[string][]int64{}
		s.writes[w.Name], s.il[w.Name] = map[string][]float64{}, map[string][]float64{}
	}
	return nil
}

func (c *comparison) closeSessions() {
	if c.session == nil {
		return
	}
	for _, lib := range c.session.libs {
		lib.Close()
	}
	if err := c.session.env.Close(); err != nil {
		logf("session benchmarks: cleaning up: %v", err)
	}
}

// sessions runs every session benchmark c.runs times, interleaved: run,
// then workload (its interleaved Redis measurement, then each library
// alone).
func (c *comparison) sessions() {
	s := c.session
	bench := func(what string, body func(*testing.B)) testing.BenchmarkResult {
		res := testing.Benchmark(body)
		if res.N == 0 {
			c.closeSessions()
			fatal(fmt.Errorf("session benchmark %s failed", what))
		}
		return res
	}
	for r := range c.runs {
		logf("session benchmarks: run %d of %d", r+1, c.runs)
		for _, w := range impls.SessionWorkloads {
			if s.skip == "" {
				var libs []*impls.SessionLib
				for _, name := range sessionILLibs {
					libs = append(libs, s.libs[name])
				}
				res := bench(w.Name+" interleaved", impls.SessionInterleaved(libs, w))
				for _, name := range sessionILLibs {
					s.il[w.Name][name] = append(s.il[w.Name][name], res.Extra[name+"-ns/op"])
				}
			}
			for _, name := range impls.SessionLibs {
				lib, ok := s.libs[name]
				if !ok {
					continue
				}
				res := bench(w.Name+" "+name, lib.Body(w))
				s.ns[w.Name][name] = append(s.ns[w.Name][name], float64(res.T.Nanoseconds())/float64(res.N))
				s.allocs[w.Name][name] = append(s.allocs[w.Name][name], res.AllocsPerOp())
				s.writes[w.Name][name] = append(s.writes[w.Name][name], res.Extra["writes/op"])
			}
		}
	}
}

// ratioAtMost holds the median of the per-run ratios to ≤ target.
func ratioAtMost(what string, xs []float64, target float64, skip string) check {
	ch := check{what: fmt.Sprintf("%s ≤ %.1f×", what, target)}
	if len(xs) == 0 {
		ch.got = "nothing (" + skip + ")"
		return ch
	}
	x := median(xs)
	ch.got, ch.pass = fmt.Sprintf("%.2f× (runs %.2f–%.2f)", x, slices.Min(xs), slices.Max(xs)), x <= target
	return ch
}

func medianInt(xs []int64) float64 {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return median(f)
}

// reportSessions writes the session section and returns its checks.
func (c *comparison) reportSessions(body *strings.Builder) []check {
	s := c.session
	var all []check
	skipNote := ""
	if s.skip != "" {
		skipNote = fmt.Sprintf(" **Redis rows not measured: %s.**", s.skip)
	}
	fmt.Fprintf(body, "## Sessions\n\n")
	fmt.Fprintf(body, "One HTTP request per op (httptest, the session cookie set before the timer) through scaleout's "+
		"session.Manager (session/redisstore; session.Memory) and alexedwards/scs v2 (goredisstore; memstore) on the same "+
		"Redis ($%s, loopback). `scs-redis` runs with IdleTimeout 30m and Lifetime 24h, as ours does (with an idle timeout "+
		"scs commits on every request); `scs-redis-default` at its defaults (no idle timeout: it writes only when values "+
		"changed). Workloads: increment (read n, store n+1), read (read n), and one increment in 10 requests. Median of %d "+
		"runs, range min–max. The time ratios come from an interleaved measurement (one request of each Redis library per "+
		"iteration, each timed alone), the median of its runs' ratios; allocs/op are from the runs of each library alone. "+
		"`floor` is the request harness with no session library.%s\n\n", impls.RedisAddrEnv, c.runs, skipNote)
	fmt.Fprintf(body, "| workload | library | ns/op (median) | range | allocs/op | writes/op | ours × (interleaved) | target | result |\n")
	fmt.Fprintf(body, "|---|---|--:|--:|--:|--:|--:|---|---|\n")
	for _, w := range impls.SessionWorkloads {
		ours := s.il[w.Name][impls.SessionOursRedis]
		for _, name := range impls.SessionLibs {
			xs := s.ns[w.Name][name]
			if len(xs) == 0 {
				fmt.Fprintf(body, "| %s | %s | not measured | | | | | | |\n", w.Name, name)
				continue
			}
			var checks []check
			ratio := ""
			if name == impls.SessionSCSRedis || name == impls.SessionSCSRedisDefault {
				if rs := runRatios(ours, s.il[w.Name][name]); len(rs) > 0 {
					ratio = fmt.Sprintf("%.2f", median(rs))
				}
			}
			if name == impls.SessionOursRedis {
				scsIL := s.il[w.Name][impls.SessionSCSRedis]
				switch w {
				case impls.SessionIncrement:
					checks = append(checks,
						ratioAtMost("session increment on Redis: ours × scs (idle timeout) time", runRatios(ours, scsIL), sessionIncrementTimeTarget, s.skip),
						ratioAtMost("session increment on Redis: ours × scs allocs",
							[]float64{medianInt(s.allocs[w.Name][name]) / medianInt(s.allocs[w.Name][impls.SessionSCSRedis])},
							sessionIncrementAllocsTarget, s.skip))
				case impls.SessionRead:
					checks = append(checks,
						ratioAtMost("session read on Redis: ours × scs (idle timeout) time", runRatios(ours, scsIL), sessionReadTimeTarget, s.skip))
				}
			}
			fmt.Fprintf(body, "| %s | %s | %s | %s–%s | %.0f | %.2f | %s | %s | %s |\n", w.Name, name,
				thousands(int(median(xs)+0.5)), thousands(int(slices.Min(xs)+0.5)), thousands(int(slices.Max(xs)+0.5)),
				medianInt(s.allocs[w.Name][name]), median(s.writes[w.Name][name]), ratio, targets(checks), verdict(checks))
			all = append(all, checks...)
		}
	}
	return all
}
