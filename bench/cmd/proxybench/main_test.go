package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const wrkSample = `Running 10s test @ http://127.0.0.1:40000/
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.60ms    2.01ms  40.12ms   85.21%
    Req/Sec     7.12k   512.33     8.01k    70.00%
  Latency Distribution
     50%    3.20ms
     75%    4.10ms
     90%    5.80ms
     99%   11.25ms
  141766 requests in 10.01s, 17.17MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  14162.59
Transfer/sec:      1.72MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	if r.rps != 14162.59 || r.p50 != 3200*time.Microsecond || r.p99 != 11250*time.Microsecond || r.errors != 7 || r.requests != 141766 {
		t.Fatalf("parseWrk = %+v", r)
	}
	if _, err := parseWrk("Requests/sec: 1\n"); err == nil {
		t.Fatal("no error without a latency distribution")
	}
}

func TestReplaceSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	sec := func(s string) string { return markStart + "\n## Proxy throughput (wrk)\n" + s + "\n" + markEnd + "\n" }

	// Missing file: created.
	if err := replaceSection(path, sec("one")); err != nil {
		t.Fatal(err)
	}
	check := func(want string) {
		t.Helper()
		got, _ := os.ReadFile(path)
		if string(got) != want {
			t.Fatalf("file:\n%q\nwant:\n%q", got, want)
		}
	}
	check(sec("one"))

	// No block: appended after the existing content.
	os.WriteFile(path, []byte("# Benchmarks\n\ntext\n"), 0o644)
	replaceSection(path, sec("two"))
	check("# Benchmarks\n\ntext\n\n" + sec("two"))

	// A block in the middle: replaced, the rest untouched.
	os.WriteFile(path, []byte("head\n\n"+sec("old")+"\ntail\n"), 0o644)
	replaceSection(path, sec("new"))
	check("head\n\n" + sec("new") + "\ntail\n")

	// Unbalanced markers: refused, file untouched.
	os.WriteFile(path, []byte("x\n"+markStart+"\n"), 0o644)
	if err := replaceSection(path, sec("bad")); err == nil {
		t.Fatal("no error for an unbalanced block")
	}
	check("x\n" + markStart + "\n")
}

func TestSelectConfigs(t *testing.T) {
	all, err := selectConfigs("")
	if err != nil || len(all) != len(configs) {
		t.Fatalf("selectConfigs(\"\") = %d configs, %v", len(all), err)
	}
	two, err := selectConfigs("ours, bare-pool")
	if err != nil || len(two) != 2 || two[0].name != "bare-pool" || two[1].name != "ours" {
		t.Fatalf("selectConfigs = %v, %v; want bare-pool, ours in the usual order", two, err)
	}
	if _, err := selectConfigs("ours,nginx"); err == nil {
		t.Fatal("no error for an unknown configuration")
	}
}

// TestRotate: over as many runs as configurations, each comes first once
// and the order within a run stays cyclic.
func TestRotate(t *testing.T) {
	cs := configs[:3]
	for k, want := range [][]string{{"direct", "bare", "bare-pool"}, {"bare", "bare-pool", "direct"}, {"bare-pool", "direct", "bare"}, {"direct", "bare", "bare-pool"}} {
		var got []string
		for _, c := range rotate(cs, k) {
			got = append(got, c.name)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("rotate(%d) = %v, want %v", k, got, want)
		}
	}
	if cs[0].name != "direct" {
		t.Fatal("rotate changed its argument")
	}
}

// TestProcCPU: this process's CPU time from /proc grows with work done.
func TestProcCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc")
	}
	before := procCPU(os.Getpid())
	if before <= 0 {
		t.Fatalf("procCPU = %v", before)
	}
	deadline := time.Now().Add(100 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	if after := procCPU(os.Getpid()); after <= before {
		t.Fatalf("procCPU did not grow over 100 ms of spinning: %v then %v", before, after)
	}
	if procCPU(0) != 0 {
		t.Fatal("procCPU(0) is not 0")
	}
}
