package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/scaleout/scaleout/internal/testenv"
)

// TestRun runs the demo: it fails if round robin misses a clone, the
// sticky client moves, the cookie reveals an address, or a removed clone
// gets a request; and no goroutine of it outlives it.
func TestRun(t *testing.T) {
	defer testenv.CheckGoroutines(t)()
	var out bytes.Buffer
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	for _, want := range []string{"hello from clone 1", "hello from clone 2", "hello from clone 3", "cookie lb=", "shutting down"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
