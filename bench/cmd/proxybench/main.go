// Command proxybench measures HTTP reverse-proxy throughput and latency
// with wrk over three local backends, side by side in one run, and writes
// the results as a Markdown section of BENCHMARKS.md:
//
//	cd bench && go run ./cmd/proxybench [-duration 10s] [-runs 3] [-out ../BENCHMARKS.md]
//
// It compares five configurations, each driven by `wrk -t2 -c50 --latency`:
//
//   - direct: one backend alone, unproxied (the ceiling);
//   - bare: net/http/httputil.ReverseProxy with an atomic round-robin
//     Rewrite over the three backends and an http.Transport tuned exactly
//     as httpproxy's (256 idle connections per backend, same timeouts);
//   - bare-pool: bare plus a sync.Pool BufferPool (the ten lines any user
//     adds), the strongest reasonable configuration of httputil, and so
//     the reference of the headline ratios (issue 21);
//   - oxy: github.com/vulcand/oxy/v2's roundrobin.New(forward.New(false))
//     over the three backends, its ReverseProxy given the same Transport;
//   - ours: httpproxy.New(balance.NewRoundRobin(), httpproxy.Config{}).
//
// The backends (three net/http servers answering a fixed 64-byte body) run
// in a child process, and each proxy runs in a child process of its own,
// started fresh for each run, so no proxy shares a heap, a garbage
// collector or a connection pool with the backends or with another proxy.
// Runs are interleaved (direct, bare, bare-pool, oxy, ours, then the same
// rotated by one, ...) so that a noisy stretch of the machine hits every
// configuration alike and none always follows the same neighbour, and the
// medians of -runs are reported, with the median of the per-run ratios.
// -configs measures a subset (say bare-pool,ours for a quick A/B); the
// report then omits the ratios whose configurations were not measured.
// Besides wrk's req/s and latencies, each proxy child's CPU time per
// request over the measured run is read from /proc (Linux): on a shared
// machine it is the steadier measure of what a proxy costs. With
// PROXYBENCH_CPUPROFILE=DIR every proxy child writes its CPU profile to
// DIR/KIND-PID.pprof.
//
// The section goes to stdout, and with -out it replaces the block between
// <!-- proxybench:start --> and <!-- proxybench:end --> in that file, or is
// appended to it when the block is missing; the rest of the file is left as
// it is. Progress goes to stderr. wrk must be installed (Debian/Ubuntu:
// apt-get install wrk); the program does not install it.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vulcand/oxy/v2/forward"
	"github.com/vulcand/oxy/v2/roundrobin"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/httpproxy"
)

const (
	// wrk's load: the issue's targets are stated for -t2 -c50.
	wrkThreads = 2
	wrkConns   = 50

	// bodySize is the size of every backend response.
	bodySize = 64

	// roleEnv selects a child process's role: "backends", or "proxy:KIND".
	roleEnv = "PROXYBENCH_ROLE"
	// backendsEnv passes the backends' addresses to a proxy child.
	backendsEnv = "PROXYBENCH_BACKENDS"
	// profileEnv, when set to a directory, makes every proxy child write
	// its CPU profile there (KIND-PID.pprof), warm-up included.
	profileEnv = "PROXYBENCH_CPUPROFILE"

	markStart = "<!-- proxybench:start -->"
	markEnd   = "<!-- proxybench:end -->"
)

// A target: a ratio of ours to another configuration, of req/s (at least
// min) or of p99 (at most max).
type target struct {
	issue int
	vs    string // the configuration ours is divided by
	p99   bool   // p99 instead of req/s
	bound float64
}

// The targets: issue 21's against the strongest httputil (bare-pool) and
// oxy, and issue 3's, which must not regress.
var targets = []target{
	{21, "bare-pool", false, 1.05}, // req/s ≥ 1.05 × bare-pool
	{21, "bare-pool", true, 1.0},   // p99 ≤ 1.0 × bare-pool's
	{21, "oxy", false, 1.3},        // req/s ≥ 1.3 × oxy
	{3, "bare", false, 0.95},       // req/s ≥ 0.95 × bare
	{3, "bare", true, 1.1},         // p99 ≤ 1.1 × bare's
}

// config is one measured configuration.
type config struct {
	name  string // the proxy kind, or "direct"
	label string // for the report
}

var configs = []config{
	{"direct", "one backend alone, unproxied (ceiling)"},
	{"bare", "httputil.ReverseProxy, atomic round-robin Rewrite, tuned Transport"},
	{"bare-pool", "bare + a sync.Pool BufferPool (the reference: httputil at its strongest)"},
	{"oxy", "vulcand/oxy/v2 v2.0.2 roundrobin + forward, same Transport"},
	{"ours", "httpproxy.New(balance.NewRoundRobin(), httpproxy.Config{})"},
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		child(role)
		return
	}

	fs := flag.NewFlagSet("proxybench", flag.ExitOnError)
	duration := fs.Duration("duration", 10*time.Second, "duration of each measured wrk run")
	warmup := fs.Duration("warmup", time.Second, "duration of the unmeasured wrk run before each measured one (0: none)")
	runs := fs.Int("runs", 3, "measured runs of each configuration, interleaved; medians are reported")
	out := fs.String("out", "", "replace (or append) the proxybench section of this Markdown file")
	only := fs.String("configs", "", "comma-separated configurations to measure (default: all)")
	fs.Parse(os.Args[1:])
	if *runs < 1 || *duration < time.Second || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "proxybench: -runs must be positive, -duration at least 1s, -warmup not negative")
		os.Exit(2)
	}
	measured, err := selectConfigs(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		os.Exit(2)
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench: wrk is not installed (it is not in $PATH).\n"+
			"Install it first: on Debian/Ubuntu `apt-get install wrk` (package \"wrk\"), on macOS `brew install wrk`.")
		os.Exit(1)
	}
	wrkVersion := wrkVersionOf(wrk)

	start := time.Now()
	b := &bench{wrk: wrk, configs: measured, only: *only, duration: *duration, warmup: *warmup, runs: *runs, loadStart: loadAvg()}
	if err := b.run(); err != nil {
		fatal(err)
	}
	b.loadEnd = loadAvg()
	b.elapsed = time.Since(start)

	var sb strings.Builder
	b.report(&sb, wrkVersion)
	fmt.Print(sb.String())
	if *out != "" {
		if err := replaceSection(*out, sb.String()); err != nil {
			fatal(err)
		}
		logf("wrote the proxybench section of %s in %s", *out, time.Since(start).Round(time.Second))
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "proxybench:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// --- the measurement ---------------------------------------------------------

type bench struct {
	wrk              string
	configs          []config
	only             string // -configs, as given
	duration, warmup time.Duration
	runs             int
	loadStart        string
	loadEnd          string
	elapsed          time.Duration
	results          map[string][]wrkResult // by config name, one per run
	backendsAddrs    []string
}

func (b *bench) run() error {
	backends, err := startChild("backends", nil)
	if err != nil {
		return fmt.Errorf("starting the backends: %w", err)
	}
	defer backends.stop()
	b.backendsAddrs = strings.Split(backends.addr, ",")
	logf("backends: %s (pid %d)", backends.addr, backends.cmd.Process.Pid)

	b.results = map[string][]wrkResult{}
	for run := 1; run <= b.runs; run++ {
		for _, c := range rotate(b.configs, run-1) {
			r, err := b.measure(c)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w", c.name, run, err)
			}
			logf("run %d/%d %-9s %10.0f req/s  p50 %-8s p99 %-8s errors %d",
				run, b.runs, c.name, r.rps, fmtDur(r.p50), fmtDur(r.p99), r.errors)
			b.results[c.name] = append(b.results[c.name], r)
		}
	}
	return nil
}

// measure runs wrk once against the configuration: a fresh proxy child for
// the proxies, the first backend directly for "direct".
// selectConfigs returns the configurations named in the comma-separated
// list, in their usual order; all of them for "".
func selectConfigs(list string) ([]config, error) {
	if list == "" {
		return configs, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		want[strings.TrimSpace(n)] = true
	}
	var out []config
	for _, c := range configs {
		if want[c.name] {
			out = append(out, c)
			delete(want, c.name)
		}
	}
	if len(want) > 0 {
		return nil, fmt.Errorf("-configs: unknown configuration(s) %v", slices.Sorted(maps.Keys(want)))
	}
	return out, nil
}

// rotate returns cs rotated left by k, so that across runs each
// configuration follows each other one.
func rotate(cs []config, k int) []config {
	k %= len(cs)
	return append(slices.Clone(cs[k:]), cs[:k]...)
}

func (b *bench) measure(c config) (wrkResult, error) {
	target := b.backendsAddrs[0]
	pid := 0
	if c.name != "direct" {
		p, err := startChild("proxy:"+c.name, b.backendsAddrs)
		if err != nil {
			return wrkResult{}, err
		}
		defer p.stop()
		target, pid = p.addr, p.cmd.Process.Pid
	}
	u := "http://" + target + "/"
	if b.warmup > 0 {
		if _, err := runWrk(b.wrk, u, b.warmup); err != nil {
			return wrkResult{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	cpu0 := procCPU(pid)
	r, err := runWrk(b.wrk, u, b.duration)
	if cpu1 := procCPU(pid); err == nil && cpu0 > 0 && cpu1 > cpu0 && r.requests > 0 {
		r.cpuPerReq = (cpu1 - cpu0) / time.Duration(r.requests)
	}
	return r, err
}

// procCPU returns the CPU time (user and system) process pid has used,
// from /proc (Linux); 0 when it cannot be read. The proxy's CPU time per
// request is what its throughput comes down to when the CPUs are the
// limit, and unlike req/s and p99 it hardly moves with what the machine's
// other tenants do.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is the first, utime the 12th, stime the 13th.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// --- wrk ---------------------------------------------------------------------

type wrkResult struct {
	requests  int64         // completed in the measured run
	cpuPerReq time.Duration // the proxy process's CPU time per request; 0 if unknown
	rps       float64
	p50, p99  time.Duration
	errors    int64 // socket errors and non-2xx/3xx responses
}

var (
	reRPS     = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	reLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	reSocket  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reReqs    = regexp.MustCompile(`(?m)^\s+(\d+) requests in `)
)

func runWrk(wrk, url string, d time.Duration) (wrkResult, error) {
	secs := int(math.Round(d.Seconds()))
	cmd := exec.Command(wrk, fmt.Sprintf("-t%d", wrkThreads), fmt.Sprintf("-c%d", wrkConns),
		fmt.Sprintf("-d%ds", secs), "--timeout", "5s", "--latency", url)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w\n%s", err, outb)
	}
	return parseWrk(string(outb))
}

// parseWrk reads Requests/sec, the 50% and 99% lines of the latency
// distribution (--latency) and the error counts from wrk's output.
func parseWrk(s string) (wrkResult, error) {
	var r wrkResult
	m := reRPS.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk's output:\n%s", s)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := reReqs.FindStringSubmatch(s); m != nil {
		r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	}
	for _, m := range reLatency.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[m[3]]
		d := time.Duration(v * float64(unit))
		if m[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if r.p99 == 0 {
		return r, fmt.Errorf("no 99%% latency line in wrk's output (was --latency given?):\n%s", s)
	}
	if m := reSocket.FindStringSubmatch(s); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.ParseInt(v, 10, 64)
			r.errors += n
		}
	}
	if m := reNon2xx.FindStringSubmatch(s); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		r.errors += n
	}
	return r, nil
}

func wrkVersionOf(wrk string) string {
	// wrk -v prints its version and usage and exits non-zero.
	outb, _ := exec.Command(wrk, "-v").CombinedOutput()
	line, _, _ := strings.Cut(string(outb), "\n")
	line = strings.TrimSpace(line)
	if v, _, ok := strings.Cut(line, " ["); ok {
		line = v
	}
	if line == "" {
		return "wrk"
	}
	return line
}

// --- child processes -----------------------------------------------------------

// childProc is a re-executed copy of this binary in a role. It prints its
// listening address(es) as its first line of stdout and exits when its
// stdin closes, so it never outlives the parent.
type childProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addr  string
}

func startChild(role string, backends []string) (*childProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), roleEnv+"="+role, backendsEnv+"="+strings.Join(backends, ","))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &childProc{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("%s child: no address: %w", role, err)
	}
	c.addr = strings.TrimSpace(line)
	return c, nil
}

func (c *childProc) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// child runs this process in its role until its stdin closes.
func child(role string) {
	var addrs []string
	switch {
	case role == "backends":
		for range 3 {
			addrs = append(addrs, serve(backendHandler()))
		}
	case strings.HasPrefix(role, "proxy:"):
		// Proxies log a "context canceled" line for every request cut off
		// when wrk stops; wrk counts the errors that matter.
		log.SetOutput(io.Discard)
		h, err := newProxy(strings.TrimPrefix(role, "proxy:"), strings.Split(os.Getenv(backendsEnv), ","))
		if err != nil {
			fatal(err)
		}
		addrs = append(addrs, serve(h))
		if dir := os.Getenv(profileEnv); dir != "" {
			stop := startProfile(dir, strings.TrimPrefix(role, "proxy:"))
			defer stop()
		}
	default:
		fatal(fmt.Errorf("unknown %s %q", roleEnv, role))
	}
	fmt.Println(strings.Join(addrs, ","))
	io.Copy(io.Discard, os.Stdin) // until the parent closes it or exits
}

// startProfile writes a CPU profile of this proxy child to
// dir/KIND-PID.pprof until the returned function is called.
func startProfile(dir, kind string) func() {
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", kind, os.Getpid())))
	if err != nil {
		fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// serve starts an HTTP server for h on a free loopback port and returns its
// address. Every server, backend or proxy, is a default http.Server.
func serve(h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(os.Stderr, "proxybench child: ", 0)}
	go srv.Serve(ln)
	return ln.Addr().String()
}

// backendHandler answers every request with the same 64-byte body.
func backendHandler() http.Handler {
	body := []byte(strings.Repeat("x", bodySize-1) + "\n")
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		h["Content-Length"] = []string{length}
		w.Write(body)
	})
}

// newProxy builds the proxy kind over the backends.
func newProxy(kind string, backends []string) (http.Handler, error) {
	targets := make([]*url.URL, len(backends))
	for i, a := range backends {
		targets[i] = &url.URL{Scheme: "http", Host: a}
	}
	switch kind {
	case "bare", "bare-pool":
		// The baseline: ReverseProxy with nothing but an atomic round robin.
		// Like ours it keeps the inbound Host and sets X-Forwarded-*.
		var next atomic.Uint64
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				t := targets[(next.Add(1)-1)%uint64(len(targets))]
				pr.Out.URL.Scheme = t.Scheme
				pr.Out.URL.Host = t.Host
				pr.Out.Host = pr.In.Host
				pr.SetXForwarded()
			},
			Transport: tunedTransport(),
		}
		if kind == "bare-pool" {
			rp.BufferPool = newBufferPool()
		}
		return rp, nil
	case "oxy":
		// oxy's documented load balancer: roundrobin over forward.New. Its
		// ReverseProxy would use http.DefaultTransport (2 idle connections
		// per host); it gets ours instead, so only the proxy code differs.
		fwd := forward.New(false)
		fwd.Transport = tunedTransport()
		lb, err := roundrobin.New(fwd)
		if err != nil {
			return nil, err
		}
		for _, t := range targets {
			if err := lb.UpsertServer(t); err != nil {
				return nil, err
			}
		}
		return lb, nil
	case "ours":
		lb := balance.NewRoundRobin()
		bs := make([]balance.Backend, len(backends))
		for i, a := range backends {
			bs[i] = balance.Backend{Addr: a}
		}
		if err := lb.Update(bs); err != nil {
			return nil, err
		}
		return httpproxy.New(lb, httpproxy.Config{})
	}
	return nil, fmt.Errorf("unknown proxy kind %q", kind)
}

// tunedTransport is the http.Transport httpproxy.New builds with a zero
// Config (balance/httpproxy/proxy.go), field for field.
func tunedTransport() *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   httpproxy.DefaultDialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   httpproxy.DefaultIdleConnsPerBackend,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: httpproxy.DefaultResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
}

// --- the report ----------------------------------------------------------------

func (b *bench) report(w io.Writer, wrkVersion string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("%s\n## Proxy throughput (wrk)\n\n", markStart)
	flags := ""
	if b.only != "" {
		flags = " -configs " + b.only
	}
	p("`cd bench && go run ./cmd/proxybench -duration %s -runs %d%s` (%s, %s/%s, %d CPUs; %s).\n",
		b.duration, b.runs, flags, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), wrkVersion)
	p("Each configuration: `wrk -t%d -c%d -d%s --latency` after a %s warm-up, %d run(s) interleaved across\n",
		wrkThreads, wrkConns, b.duration, b.warmup, b.runs)
	p("configurations; medians, with the min–max range. Three backends answer a fixed %d-byte body from a\n", bodySize)
	p("child process; each proxy runs alone in a fresh child process of its own. wrk, the proxy and the\n")
	p("backends all share this machine's %d CPUs (the reference machine is a shared, noisy 2-core VM), so\n", runtime.NumCPU())
	p("absolute numbers are low and move between runs; compare within one run. 1-minute load average\n")
	p("before: %s, after: %s. Took %s.\n\n", b.loadStart, b.loadEnd, b.elapsed.Round(time.Second))

	if busy(b.loadStart) || busy(b.loadEnd) {
		p("**Warning: the load average exceeded the %d CPUs: other work competed with this run, so its\n", runtime.NumCPU())
		p("numbers (and, less so, its ratios) are unreliable. Rerun on a quiet machine.**\n\n")
	}
	p("| configuration | req/s | p50 | p99 | proxy CPU per request | errors |\n|---|---:|---:|---:|---:|---:|\n")
	med := map[string]wrkResult{}
	for _, c := range b.configs {
		rs := b.results[c.name]
		rps := collect(rs, func(r wrkResult) float64 { return r.rps })
		p50 := collect(rs, func(r wrkResult) float64 { return float64(r.p50) })
		p99 := collect(rs, func(r wrkResult) float64 { return float64(r.p99) })
		var errs int64
		for _, r := range rs {
			errs += r.errors
		}
		cpu := collect(rs, func(r wrkResult) float64 { return float64(r.cpuPerReq) })
		med[c.name] = wrkResult{rps: median(rps), p50: time.Duration(median(p50)), p99: time.Duration(median(p99)), cpuPerReq: time.Duration(median(cpu))}
		cpuText := "–"
		if slices.Min(cpu) > 0 {
			cpuText = fmt.Sprintf("%.1fµs (%.1f–%.1f)", median(cpu)/1e3, slices.Min(cpu)/1e3, slices.Max(cpu)/1e3)
		}
		p("| **%s**: %s | %s (%s–%s) | %s | %s (%s–%s) | %s | %d |\n", c.name, c.label,
			fmtRPS(median(rps)), fmtRPS(slices.Min(rps)), fmtRPS(slices.Max(rps)),
			fmtDur(time.Duration(median(p50))),
			fmtDur(time.Duration(median(p99))), fmtDur(time.Duration(slices.Min(p99))), fmtDur(time.Duration(slices.Max(p99))),
			cpuText, errs)
	}

	// A ratio is judged by the median of its per-run ratios (each run's
	// ours and reference measured back to back, so they saw the same
	// machine), shown beside the ratio of the medians.
	ours, haveOurs := b.results["ours"]
	header := false
	for _, t := range targets {
		ref, ok := b.results[t.vs]
		if !haveOurs || !ok {
			continue
		}
		if !header {
			p("\nTargets, from the runs above (the verdict is on the median of the per-run ratios):\n\n")
			p("| issue | ratio | median of per-run | of the medians | target | per run | |\n|---|---|---:|---:|---:|---|---|\n")
			header = true
		}
		f, what, op := rpsOf, "req/s", "≥"
		if t.p99 {
			f, what, op = p99Of, "p99", "≤"
		}
		var per []float64
		var runs []string
		for i := range ours {
			per = append(per, f(ours[i])/f(ref[i]))
			runs = append(runs, fmt.Sprintf("%.3f", per[i]))
		}
		v := median(per)
		ok = v >= t.bound
		if t.p99 {
			ok = v <= t.bound
		}
		verdict := "PASS"
		if !ok {
			verdict = "MISS"
		}
		p("| %d | %s ours ÷ %s | %.3f | %.3f | %s %.2f | %s | **%s** |\n", t.issue, what, t.vs, v,
			f(med["ours"])/f(med[t.vs]), op, t.bound, strings.Join(runs, ", "), verdict)
	}
	if ref, ok := b.results["bare-pool"]; haveOurs && ok && med["ours"].cpuPerReq > 0 && med["bare-pool"].cpuPerReq > 0 {
		var per []float64
		var runs []string
		for i := range ours {
			per = append(per, float64(ours[i].cpuPerReq)/float64(ref[i].cpuPerReq))
			runs = append(runs, fmt.Sprintf("%.3f", per[i]))
		}
		p("\nThe proxy process's CPU time per request (from /proc, over each measured run), ours ÷ bare-pool:\n")
		p("%.3f, the median of the per-run ratios %s (no target: where the CPUs are the limit, req/s goes\n", median(per), strings.Join(runs, ", "))
		p("as its inverse, and it moves far less than req/s and p99 with the machine's other load).\n")
	}
	if d, ok := med["direct"]; ok {
		var parts []string
		for _, c := range b.configs {
			if c.name != "direct" {
				parts = append(parts, fmt.Sprintf("%s %.0f%%", c.name, 100*med[c.name].rps/d.rps))
			}
		}
		p("\nShare of the unproxied single backend's req/s (the floor a proxy adds to): %s.\n", strings.Join(parts, ", "))
	}
	p("\nNotes: bare, bare-pool and oxy get the exact http.Transport httpproxy builds (256 idle connections per\n")
	p("backend, 2 s dial timeout, 30 s response-header timeout, no compression); oxy's forward.New alone would\n")
	p("use http.DefaultTransport, whose 2 idle connections per host churn connections under 50 clients. bare is\n")
	p("ReverseProxy as it comes (no BufferPool, so it allocates a 32 KiB copy buffer per request); bare-pool\n")
	p("adds only a sync.Pool BufferPool, about ten lines any user adds, and is the reference; ours adds to\n")
	p("that outcome reporting (Choice.Done when the body is streamed), the retry wrapper, private paths and\n")
	p("X-Forwarded-* handling. Proxies' logs are discarded (every proxy logs the requests wrk cuts off when\n")
	p("it stops); the errors column is wrk's socket errors plus non-2xx/3xx responses over all runs. A ratio\n")
	p("within ~5%% of its target is inside this machine's run-to-run noise.\n")
	p("%s\n", markEnd)
}

func rpsOf(r wrkResult) float64 { return r.rps }
func p99Of(r wrkResult) float64 { return float64(r.p99) }

func collect(rs []wrkResult, f func(wrkResult) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
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

func fmtRPS(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
}

// busy reports whether a load average read by loadAvg exceeds the CPU count.
func busy(load string) bool {
	v, err := strconv.ParseFloat(load, 64)
	return err == nil && v > float64(runtime.NumCPU())
}

// loadAvg returns the 1-minute load average, or "n/a".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "n/a"
	}
	return f[0]
}

// replaceSection replaces the block between markStart and markEnd in the
// file with section (which carries the markers), or appends section when
// the file has no such block; a missing file is created.
func replaceSection(path, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s := string(old)
	var out string
	i := strings.Index(s, markStart)
	j := strings.Index(s, markEnd)
	switch {
	case i >= 0 && j > i:
		rest := s[j+len(markEnd):]
		rest = strings.TrimPrefix(rest, "\n")
		out = s[:i] + section + rest
	case i >= 0 || j >= 0:
		return fmt.Errorf("%s: unbalanced %s / %s markers; fix the file by hand", path, markStart, markEnd)
	case s == "":
		out = section
	default:
		out = strings.TrimRight(s, "\n") + "\n\n" + section
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// bufferPool recycles ReverseProxy's 32 KiB copy buffers, the way
// httpproxy does; it is what bare-pool adds to bare.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	bp := &bufferPool{}
	bp.p.New = func() any { b := make([]byte, 32<<10); return &b }
	return bp
}

func (bp *bufferPool) Get() []byte  { return *bp.p.Get().(*[]byte) }
func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }
