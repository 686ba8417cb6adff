package main

// Real-time tests in this file: TestRun (the example on a real Redis; no
// duration asserted, a 10 s deadline against a hang) and
// TestRunWithoutRedis (a refused real connection: bounded by the example's
// 2 s ping deadline plus 3 s of slack for a loaded machine).

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scaleout/scaleout/internal/testenv"
)

// TestRun runs the example on the test Redis: both clones serve the
// session, the counter goes on across the shutdown of the clone that
// served last, only the survivor serves afterwards, the keys are deleted,
// and no goroutine outlives it.
func TestRun(t *testing.T) {
	addr := testenv.RedisAddr(t)
	defer testenv.CheckGoroutines(t)()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	res, err := run(ctx, &out, addr)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Want != 7 || res.Count != res.Want {
		t.Errorf("final count %d after %d increments, want 7 after 7", res.Count, res.Want)
	}
	if !slices.Equal(res.Clones, []string{"clone A", "clone B"}) {
		t.Errorf("clones seen = %q, want both", res.Clones)
	}
	if res.Killed == "" || len(res.Survive) != 1 || res.Survive[0] == res.Killed {
		t.Errorf("after shutting down %q the requests were served by %q, want only the other clone", res.Killed, res.Survive)
	}
	for _, want := range []string{"clone A:", "clone B:", "logged in as alice", "shut down", "count = 7", "deleted the example's"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestRunWithoutRedis: an unreachable Redis is a clear error, not a hang.
func TestRunWithoutRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := run(ctx, &bytes.Buffer{}, "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "needs Redis") {
		t.Fatalf("run with no Redis: err = %v, want one saying the example needs Redis", err)
	}
	// A refused connection fails at once; the bound is the example's own
	// 2 s ping deadline plus room for a loaded machine.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to report the missing Redis (its ping deadline is 2 s)", d)
	}
}
