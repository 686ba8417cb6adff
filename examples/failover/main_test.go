package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestRun runs the demo with short intervals: the service must answer
// before and after the kill, all clones must serve, the gap must stay
// under a second, and no goroutine of it may outlive it.
func TestRun(t *testing.T) {
	before := runtime.NumGoroutine()
	var out bytes.Buffer
	res, err := run(&out, options{interval: 50 * time.Millisecond, killAfter: 500 * time.Millisecond, after: 700 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if res.okBefore == 0 || res.okAfter == 0 {
		t.Errorf("answers before the kill %d, after %d: want both > 0", res.okBefore, res.okAfter)
	}
	if res.gap <= 0 || res.gap >= time.Second {
		t.Errorf("service gap %v, want under 1s", res.gap)
	}
	for _, want := range []string{"hello from clone 1", "hello from clone 2", "hello from clone 3",
		"lb1: active", "killing lb1", "lb2: active", "service gap:", "shutting down"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines left, %d before\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestRunActiveActive runs the active-active demo with short intervals:
// both balancers must serve before the kill; once lb1 has noticed lb2 down
// (OnPeerDown) only lb1 may answer, and no request may fail; only a few
// requests may fail between the kill and that notice (at most the
// requests of MissedBeats heartbeat intervals); once lb2 is back and lb1
// has noticed (OnPeerUp), both must serve again; and no goroutine of it
// may outlive it.
func TestRunActiveActive(t *testing.T) {
	before := runtime.NumGoroutine()
	var out bytes.Buffer
	o := options{mode: "active-active", interval: 50 * time.Millisecond, missed: 3,
		killAfter: 500 * time.Millisecond, backAfter: 500 * time.Millisecond, after: 500 * time.Millisecond}
	res, err := runActiveActive(&out, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	const lb1, lb2 = 0, 1
	if s := res.served[phaseBefore]; s[lb1] == 0 || s[lb2] == 0 {
		t.Errorf("before the kill: lb1 answered %d, lb2 %d; want both > 0", s[lb1], s[lb2])
	}
	if n := res.failed[phaseBefore]; n != 0 {
		t.Errorf("before the kill: %d failed requests, want 0", n)
	}
	// The client sends a request every 10 ms, half of them to lb2.
	if n, bound := res.failed[phaseKilled], int(time.Duration(o.missed)*o.interval/(10*time.Millisecond)); n > bound {
		t.Errorf("between the kill and the peer-down notice: %d failed requests, want at most %d", n, bound)
	}
	if res.detect <= 0 || res.detect > time.Duration(o.missed+2)*o.interval {
		t.Errorf("peer-down notice %v after the kill, want within %v", res.detect, time.Duration(o.missed+2)*o.interval)
	}
	if s := res.served[phaseDown]; s[lb1] == 0 || s[lb2] != 0 {
		t.Errorf("lb2 down: lb1 answered %d, lb2 %d; want only lb1", s[lb1], s[lb2])
	}
	// lb1 may hear from lb2 at once after its restart: no request need
	// fall between.
	if s := res.served[phaseBack]; s[lb2] != 0 {
		t.Errorf("lb2 restarted, before the peer-up notice: lb2 answered %d, want 0", s[lb2])
	}
	for _, p := range []int{phaseDown, phaseBack, phaseUp} {
		if n := res.failed[p]; n != 0 {
			t.Errorf("%s: %d failed requests, want 0", phaseNames[p], n)
		}
	}
	if s := res.served[phaseUp]; s[lb1] == 0 || s[lb2] == 0 {
		t.Errorf("after the return: lb1 answered %d, lb2 %d; want both > 0", s[lb1], s[lb2])
	}
	if res.rejoin <= 0 {
		t.Errorf("no peer-up notice after the restart")
	}
	for _, want := range []string{"hello from clone 1", "hello from clone 2", "hello from clone 3",
		"killing lb2", "lb1: peer lb2 down", "front balancer now lb1\n", "restarting lb2",
		"lb1: peer lb2 up", "front balancer now lb1, lb2\n", "failed requests:", "shutting down"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines left, %d before\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
