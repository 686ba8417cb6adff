package objects_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/objects"
)

func TestPoolDedupAndBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		runs := map[string]int{}
		gate := make(chan struct{})
		p, err := objects.NewPool(func(ctx context.Context, key string) {
			mu.Lock()
			runs[key]++
			mu.Unlock()
			<-gate
		}, objects.PoolConfig{Workers: 1, QueueLen: 2})
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		if err := p.Submit(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the worker runs a, blocked
		for _, k := range []string{"b", "b", "a"} {
			if err := p.Submit(ctx, k); err != nil {
				t.Fatalf("Submit(%s): %v", k, err)
			}
		}
		if n := p.Len(); n != 2 {
			t.Errorf("Len = %d, want 2 (b deduplicated, a queued again while running)", n)
		}
		if err := p.Submit(ctx, "c"); !errors.Is(err, objects.ErrBusy) {
			t.Errorf("Submit on a full queue = %v, want ErrBusy", err)
		}
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if err := p.Submit(canceled, "d"); !errors.Is(err, context.Canceled) {
			t.Errorf("Submit with an ended context = %v", err)
		}
		close(gate)
		synctest.Wait()
		if runs["a"] != 2 || runs["b"] != 1 || runs["c"] != 0 {
			t.Errorf("runs = %v, want a:2 b:1", runs)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if err := p.Submit(ctx, "a"); !errors.Is(err, objects.ErrClosed) {
			t.Errorf("Submit after Close = %v, want ErrClosed", err)
		}
		_ = p.Close() // idempotent
	})
}

// Close cancels running work, drops queued work and returns only when every
// worker has: synctest fails the test if any goroutine is left.
func TestPoolClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var ran []string
		p, err := objects.NewPool(func(ctx context.Context, key string) {
			mu.Lock()
			ran = append(ran, key)
			mu.Unlock()
			<-ctx.Done() // a build that only ends when cancelled
		}, objects.PoolConfig{Workers: 2, QueueLen: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"a", "b", "c", "d"} {
			if err := p.Submit(t.Context(), k); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		_ = p.Close()
		if len(ran) != 2 {
			t.Errorf("ran %v, want only the two started before Close", ran)
		}
	})
}

func TestNewPoolInvalid(t *testing.T) {
	run := func(context.Context, string) {}
	for _, tc := range []struct {
		cfg objects.PoolConfig
		run func(context.Context, string)
	}{
		{objects.PoolConfig{Workers: -1}, run},
		{objects.PoolConfig{QueueLen: -1}, run},
		{objects.PoolConfig{}, nil},
	} {
		if _, err := objects.NewPool(tc.run, tc.cfg); !errors.Is(err, cache.ErrInvalidConfig) {
			t.Errorf("NewPool(%+v, run nil: %v) = %v, want ErrInvalidConfig", tc.cfg, tc.run == nil, err)
		}
	}
}

// The zero PoolConfig is DefaultWorkers workers and a queue of
// DefaultQueueLen keys.
func TestNewPoolDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var mu sync.Mutex
		running := 0
		p, err := objects.NewPool(func(ctx context.Context, key string) {
			mu.Lock()
			running++
			mu.Unlock()
			<-gate
		}, objects.PoolConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		for i := range objects.DefaultWorkers {
			if err := p.Submit(t.Context(), fmt.Sprint("run", i)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if running != objects.DefaultWorkers {
			t.Errorf("%d rebuilds running, want DefaultWorkers = %d", running, objects.DefaultWorkers)
		}
		for i := range objects.DefaultQueueLen {
			if err := p.Submit(t.Context(), fmt.Sprint("queued", i)); err != nil {
				t.Fatalf("Submit %d of DefaultQueueLen = %d: %v", i, objects.DefaultQueueLen, err)
			}
		}
		if err := p.Submit(t.Context(), "one more"); !errors.Is(err, objects.ErrBusy) {
			t.Errorf("Submit past DefaultQueueLen = %v, want ErrBusy", err)
		}
		close(gate)
	})
}

// Two Closes at once: both return only after the running rebuild ended.
func TestPoolCloseTwiceWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		var ended atomic.Bool
		p, err := objects.NewPool(func(ctx context.Context, key string) {
			close(started)
			<-ctx.Done()
			<-release // keeps running a moment after its context ended
			ended.Store(true)
		}, objects.PoolConfig{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Submit(t.Context(), "k"); err != nil {
			t.Fatal(err)
		}
		<-started
		var returned atomic.Int32
		for range 2 {
			go func() {
				_ = p.Close()
				if !ended.Load() {
					t.Error("Close returned before the running rebuild ended")
				}
				returned.Add(1)
			}()
		}
		synctest.Wait()
		if n := returned.Load(); n != 0 {
			t.Fatalf("%d Closes returned while a rebuild was running", n)
		}
		close(release)
		synctest.Wait()
		if n := returned.Load(); n != 2 {
			t.Fatalf("%d of 2 Closes returned", n)
		}
	})
}
