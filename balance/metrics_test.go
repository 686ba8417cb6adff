package balance_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/observe"
)

// TestHealthMetrics runs a known workload through Health over a round
// robin and checks every figure of observe's table for balance: picks, in
// flight, errors and latency per backend, an ejection and its health
// transitions, panic mode, and the log records of those events.
func TestHealthMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := observe.NewRecorder()
		var logs bytes.Buffer
		h, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{
			MaxFailures:    2,
			MaxErrorRatio:  -1,
			BaseEjection:   time.Second,
			PanicThreshold: 0.9, // one ejected backend of three is panic
			Meter:          rec,
			Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if err := h.Update([]balance.Backend{{Addr: "a"}, {Addr: "b"}, {Addr: "c"}}); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		fail := errors.New("503")
		// 9 picks, 3 per backend, each taking 10 ms; c fails twice, which
		// ejects it at its second failure.
		for i := range 9 {
			c, err := h.Pick(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
			if c.Backend().Addr == "c" && i < 6 {
				c.Done(fail)
			} else {
				c.Done(nil)
			}
		}
		held, err := h.Pick(ctx, "") // in flight while we look
		if err != nil {
			t.Fatal(err)
		}
		picks := rec.Value("scaleout.balance.picks")
		if picks != 10 {
			t.Errorf("picks = %v, want 10", picks)
		}
		if got := rec.Value("scaleout.balance.in_flight"); got != 1 {
			t.Errorf("in flight = %v, want 1 (one Choice not Done)", got)
		}
		if got := rec.Value("scaleout.balance.in_flight", "backend", held.Backend().Addr); got != 1 {
			t.Errorf("in flight of %s = %v, want 1", held.Backend().Addr, got)
		}
		held.Done(balance.ErrAborted)
		if got := rec.Value("scaleout.balance.in_flight"); got != 0 {
			t.Errorf("in flight after Done = %v, want 0", got)
		}
		if got := rec.Value("scaleout.balance.errors", "backend", "c"); got != 2 {
			t.Errorf("errors of c = %v, want 2", got)
		}
		if got := rec.Value("scaleout.balance.errors"); got != 2 {
			t.Errorf("errors = %v, want 2", got)
		}
		// The aborted request is not timed: 9 requests of 10 ms.
		if n, sum := rec.Count("scaleout.balance.duration"), rec.Value("scaleout.balance.duration"); n != 9 || sum < 0.0899 || sum > 0.0901 {
			t.Errorf("duration: %d observations summing %v s, want 9 summing 0.09 s", n, sum)
		}
		if got := rec.Value("scaleout.balance.ejections", "backend", "c"); got != 1 {
			t.Errorf("ejections of c = %v, want 1", got)
		}
		if got := rec.Value("scaleout.balance.health_transitions", "backend", "c", "state", "ejected"); got != 1 {
			t.Errorf("transitions of c to ejected = %v, want 1", got)
		}
		if got := rec.Value("scaleout.balance.healthy", "backend", "c"); got != 0 {
			t.Errorf("healthy of c = %v, want 0 while ejected", got)
		}
		if got := rec.Value("scaleout.balance.healthy", "backend", "a"); got != 1 {
			t.Errorf("healthy of a = %v, want 1", got)
		}
		if got := rec.Value("scaleout.balance.panic"); got != 1 {
			t.Errorf("panic = %v, want 1 with 2 of 3 healthy under a threshold of 0.9", got)
		}

		// After the ejection, the half-open trial succeeds: c is back up
		// and panic mode is over.
		time.Sleep(time.Second)
		synctest.Wait()
		for range 3 {
			c, err := h.Pick(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			c.Done(nil)
		}
		if got := rec.Value("scaleout.balance.health_transitions", "backend", "c", "state", "up"); got != 1 {
			t.Errorf("transitions of c to up = %v, want 1", got)
		}
		if got := rec.Value("scaleout.balance.healthy", "backend", "c"); got != 1 {
			t.Errorf("healthy of c = %v, want 1 after the trial", got)
		}
		if got := rec.Value("scaleout.balance.panic"); got != 0 {
			t.Errorf("panic = %v, want 0", got)
		}
		for _, want := range []string{
			`level=WARN msg="balance: backend health changed" backend=c state=ejected`,
			`level=WARN msg="balance: panic mode`,
			`level=INFO msg="balance: backend health changed" backend=c state=up`,
			`level=INFO msg="balance: panic mode over"`,
		} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs.String())
			}
		}

		// With nothing left, picks fail and are counted.
		if err := h.Update(nil); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Pick(ctx, ""); !errors.Is(err, balance.ErrNoBackend) {
			t.Fatalf("Pick on an empty set: %v", err)
		}
		if got := rec.Value("scaleout.balance.no_backend"); got != 1 {
			t.Errorf("no_backend = %v, want 1", got)
		}
	})
}

// TestHealthMetricsAllocs checks that a pick and its Done allocate nothing
// through Health, with metrics off and on.
func TestHealthMetricsAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    observe.Meter
	}{{"off", nil}, {"recorder", observe.NewRecorder()}} {
		h, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{Meter: tc.m})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Update([]balance.Backend{{Addr: "a"}, {Addr: "b"}}); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		allocs := testing.AllocsPerRun(1000, func() {
			c, _ := h.Pick(ctx, "")
			c.Done(nil)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per pick, want 0", tc.name, allocs)
		}
		h.Close()
	}
}
