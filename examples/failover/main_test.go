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
