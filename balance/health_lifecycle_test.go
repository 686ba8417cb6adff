package balance

// Health's lifecycle: one Run at a time, Close ends Run and the timers
// and waits for them, Update and Run fail with ErrClosed afterwards while
// picks keep serving the last set. All on the fake clock of
// testing/synctest.

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHealthSecondRunIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var checks atomic.Int64
		check := func(context.Context, Backend) error { checks.Add(1); return nil }
		h, _ := newHealth(t, HealthConfig{Check: check, Interval: time.Second}, "a")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx) }()
		synctest.Wait()
		require.ErrorIs(t, h.Run(ctx), ErrAlreadyRunning, "a second Run while one runs")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, int64(2), checks.Load(), "one loop checks: at once and after an Interval")
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)

		// Once the first Run returned, Run may run again.
		ctx2, cancel2 := context.WithCancel(t.Context())
		go func() { done <- h.Run(ctx2) }()
		synctest.Wait()
		require.Equal(t, int64(3), checks.Load())
		cancel2()
		require.ErrorIs(t, <-done, context.Canceled)
	})
}

func TestHealthSecondRunWithoutCheckIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newHealth(t, HealthConfig{}, "a")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx) }()
		synctest.Wait()
		require.ErrorIs(t, h.Run(ctx), ErrAlreadyRunning)
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
}

// TestHealthCloseEndsRun: Close cancels the checks of a Run in progress
// and returns once they have returned; Run returns ErrClosed.
func TestHealthCloseEndsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inFlight atomic.Int64
		check := func(ctx context.Context, _ Backend) error {
			inFlight.Add(1)
			defer inFlight.Add(-1)
			<-ctx.Done() // a check that hangs until its timeout
			return ctx.Err()
		}
		h, _ := newHealth(t, HealthConfig{Check: check, Interval: time.Minute, Timeout: time.Minute}, "a", "b")
		done := make(chan error, 1)
		go func() { done <- h.Run(context.Background()) }()
		synctest.Wait()
		require.Equal(t, int64(2), inFlight.Load())

		require.NoError(t, h.Close())
		require.Zero(t, inFlight.Load(), "Close returned with checks still running")
		require.ErrorIs(t, <-done, ErrClosed)
		require.NoError(t, h.Close(), "Close is idempotent")
	})
}

func TestHealthAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, rec := newHealth(t, HealthConfig{}, "a", "b", "c")
		fail(t, h, "a", 5)
		require.Equal(t, []string{"b", "c"}, rec.addrs())
		require.NoError(t, h.Close())

		require.ErrorIs(t, h.Run(t.Context()), ErrClosed)
		require.ErrorIs(t, h.Update([]Backend{{Addr: "d"}}), ErrClosed)
		require.Equal(t, []string{"b", "c"}, rec.addrs(), "Update after Close left the set alone")

		// Picks serve the last eligible set, and their outcomes change
		// nothing: no ejection, and no trial when a's time would be up.
		fail(t, h, "b", 10)
		require.Equal(t, []string{"b", "c"}, rec.addrs())
		time.Sleep(time.Hour)
		synctest.Wait()
		require.Equal(t, []string{"b", "c"}, rec.addrs())
		requireNoTrial(t, h)
		require.Len(t, h.Eligible(), 2)
	})
}

// gatedRecorder is a recorder whose Update blocks while gate is set, to
// hold a timer's callback in flight.
type gatedRecorder struct {
	recorder
	gate    atomic.Pointer[chan struct{}]
	blocked atomic.Bool
}

func (r *gatedRecorder) Update(bs []Backend) error {
	if g := r.gate.Load(); g != nil {
		r.blocked.Store(true)
		<-*g
	}
	return r.recorder.Update(bs)
}

// TestHealthCloseWaitsForTimers: a timer callback in flight when Close is
// called has ended when Close returns. Real time: Close waits on a
// mutex, which a synctest bubble does not count as durably blocked.
func TestHealthCloseWaitsForTimers(t *testing.T) {
	rec := &gatedRecorder{}
	h, err := NewHealth(rec, HealthConfig{BaseEjection: time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, h.Update([]Backend{{Addr: "a"}, {Addr: "b"}, {Addr: "c"}}))
	gate := make(chan struct{})
	rec.gate.Store(&gate)
	fail(t, h, "a", 4)
	go fail(t, h, "a", 1) // ejects: its publish blocks at the gate, holding h.mu
	require.Eventually(t, rec.blocked.Load, 5*time.Second, time.Millisecond)
	// The ejection is now published to nobody; let it through and catch
	// the readmission callback at the gate instead.
	rec.blocked.Store(false)
	close(gate)
	gate2 := make(chan struct{})
	rec.gate.Store(&gate2)
	require.Eventually(t, rec.blocked.Load, 5*time.Second, time.Millisecond, "the readmission callback never ran")

	closed := make(chan struct{})
	go func() {
		_ = h.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a timer callback was running")
	case <-time.After(50 * time.Millisecond):
	}
	rec.gate.Store(nil)
	close(gate2)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s of the callback ending")
	}
}
