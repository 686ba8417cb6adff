package objects_test

import (
	"context"
	"errors"
	"sync"
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
		p, err := objects.NewPool(1, 2, func(ctx context.Context, key string) {
			mu.Lock()
			runs[key]++
			mu.Unlock()
			<-gate
		})
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
		p, err := objects.NewPool(2, 10, func(ctx context.Context, key string) {
			mu.Lock()
			ran = append(ran, key)
			mu.Unlock()
			<-ctx.Done() // a build that only ends when cancelled
		})
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
		w, q int
		run  func(context.Context, string)
	}{{0, 1, run}, {1, 0, run}, {-1, 1, run}, {1, 1, nil}} {
		if _, err := objects.NewPool(tc.w, tc.q, tc.run); !errors.Is(err, cache.ErrInvalidConfig) {
			t.Errorf("NewPool(%d, %d) = %v, want ErrInvalidConfig", tc.w, tc.q, err)
		}
	}
}
