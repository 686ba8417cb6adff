package objects_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/objects"
)

// source is a fake database: a version per key, counted builds, and knobs
// to fail or block the next build.
type source struct {
	mu     sync.Mutex
	ver    map[string]int
	builds map[string]int
	fail   error
	gate   chan struct{} // the next build blocks on it, after reading
}

func newSource() *source {
	return &source{ver: map[string]int{}, builds: map[string]int{}}
}

func (s *source) set(key string, v int) {
	s.mu.Lock()
	s.ver[key] = v
	s.mu.Unlock()
}

func (s *source) failWith(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

// blockNext makes the next build wait for the returned channel's close.
func (s *source) blockNext() chan struct{} {
	g := make(chan struct{})
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
	return g
}

func (s *source) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.builds[key]
}

func (s *source) build(ctx context.Context, key string) (string, error) {
	s.mu.Lock()
	v, ok := s.ver[key]
	s.builds[key]++
	fail, gate := s.fail, s.gate
	s.gate = nil
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	switch {
	case fail != nil:
		return "", fail
	case !ok:
		return "", cache.ErrNotFound
	}
	return fmt.Sprintf("%s@v%d", key, v), nil
}

func newMemory(t testing.TB) *cache.Memory {
	t.Helper()
	m, err := cache.NewMemory(cache.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newObjects(t testing.TB, c cache.ObjectCache, src *source, cfg objects.Config[string]) *objects.Objects[string] {
	t.Helper()
	o, err := objects.New(c, src.build, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

func mustGet(t testing.TB, o *objects.Objects[string], key, want string) {
	t.Helper()
	got, err := o.Get(context.Background(), key)
	if err != nil || got != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, want)
	}
}

func TestMissBuildsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.set("k", 1)
		gate := src.blockNext()
		o := newObjects(t, newMemory(t), src, objects.Config[string]{})
		var wg sync.WaitGroup
		var bad atomic.Int32
		for range 50 {
			wg.Go(func() {
				if v, err := o.Get(t.Context(), "k"); err != nil || v != "k@v1" {
					bad.Add(1)
				}
			})
		}
		synctest.Wait() // every Get is waiting for the one build
		close(gate)
		wg.Wait()
		if bad.Load() != 0 {
			t.Errorf("%d Gets failed", bad.Load())
		}
		if n := src.count("k"); n != 1 {
			t.Errorf("builds = %d, want 1", n)
		}
		_ = o.Close()
	})
}

func TestInvalidateServesOldUntilRebuilt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.set("k", 1)
		o := newObjects(t, newMemory(t), src, objects.Config[string]{})
		mustGet(t, o, "k", "k@v1")

		src.set("k", 2)
		gate := src.blockNext()
		if err := o.Invalidate(t.Context(), "k"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the worker's rebuild is blocked in build
		for range 10 {
			mustGet(t, o, "k", "k@v1") // stale, served at once
		}
		close(gate)
		synctest.Wait()
		mustGet(t, o, "k", "k@v2")
		if n := src.count("k"); n != 2 {
			t.Errorf("builds = %d, want 2", n)
		}
		st := o.Stats()
		if st.Rebuilds != 1 || st.StaleServes == 0 {
			t.Errorf("stats = %+v, want 1 rebuild and stale serves", st)
		}
		_ = o.Close()
	})
}

func TestRebuildBeforeInvalidateCannotOverwrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.set("k", 1)
		o := newObjects(t, newMemory(t), src, objects.Config[string]{Workers: 2})
		mustGet(t, o, "k", "k@v1")

		// A slow rebuild reads v1, then blocks.
		gate := src.blockNext()
		slow := make(chan error, 1)
		go func() { slow <- o.Rebuild(context.Background(), "k") }()
		synctest.Wait()

		// The source changes; the rebuild submitted by Invalidate reads v2
		// and lands first.
		src.set("k", 2)
		if err := o.Invalidate(t.Context(), "k"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		mustGet(t, o, "k", "k@v2")

		// The slow rebuild finishes: its lease was voided, so v1 is not stored.
		close(gate)
		if err := <-slow; err != nil {
			t.Fatalf("slow Rebuild: %v", err)
		}
		synctest.Wait()
		mustGet(t, o, "k", "k@v2")
		time.Sleep(time.Minute) // still fresh: nothing rebuilds it
		mustGet(t, o, "k", "k@v2")
		if n := src.count("k"); n != 3 {
			t.Errorf("builds = %d, want 3", n)
		}
		_ = o.Close()
	})
}

func TestBuildErrorKeepsLastGood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.set("k", 1)
		o := newObjects(t, newMemory(t), src, objects.Config[string]{TTL: time.Minute, StaleFor: time.Hour})
		mustGet(t, o, "k", "k@v1")

		dbDown := errors.New("db down")
		src.failWith(dbDown)
		src.set("k", 2)
		if err := o.Invalidate(t.Context(), "k"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		mustGet(t, o, "k", "k@v1") // stale: its background reload fails too
		synctest.Wait()
		time.Sleep(2 * time.Second) // past the Loader's retry spacing of a failing source
		if err := o.Rebuild(t.Context(), "k"); !errors.Is(err, dbDown) {
			t.Fatalf("Rebuild = %v, want %v", err, dbDown)
		}
		synctest.Wait()
		// Past TTL, still failing: the last good object is still served.
		time.Sleep(10 * time.Minute)
		mustGet(t, o, "k", "k@v1")
		synctest.Wait()
		mustGet(t, o, "k", "k@v1")
		synctest.Wait()
		if st := o.Stats(); st.RebuildErrors < 2 || st.LoadErrors < 3 {
			t.Errorf("stats = %+v, want failed rebuilds and loads counted", st)
		}

		// The source is back: the next read of the stale object rebuilds it.
		src.failWith(nil)
		time.Sleep(2 * time.Second) // the last failure's retry spacing ends
		mustGet(t, o, "k", "k@v1")
		synctest.Wait()
		mustGet(t, o, "k", "k@v2")
		_ = o.Close()
	})
}

func TestRebuildNotFoundRemoves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.set("k", 1)
		o := newObjects(t, newMemory(t), src, objects.Config[string]{})
		mustGet(t, o, "k", "k@v1")
		src.mu.Lock()
		delete(src.ver, "k")
		src.mu.Unlock()
		if err := o.Invalidate(t.Context(), "k"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if _, err := o.Get(t.Context(), "k"); !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("Get after the object was deleted = %v, want ErrNotFound", err)
		}
		_ = o.Close()
	})
}

func TestRefreshAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.set("hot", 1)
		src.set("idle", 1)
		o := newObjects(t, newMemory(t), src, objects.Config[string]{
			TTL:          time.Hour,
			RefreshEvery: time.Minute,
			IdleAfter:    5 * time.Minute,
		})
		mustGet(t, o, "hot", "hot@v1")
		mustGet(t, o, "idle", "idle@v1")
		if st := o.Stats(); st.Tracked != 2 {
			t.Fatalf("tracked = %d, want 2", st.Tracked)
		}
		var idleAt7 int
		for i := 1; i <= 40; i++ { // 20 minutes
			time.Sleep(30 * time.Second)
			synctest.Wait()
			if i == 8 {
				src.set("hot", 2) // no Invalidate: refresh-ahead picks it up
			}
			if i == 14 {
				idleAt7 = src.count("idle")
			}
			if _, err := o.Get(t.Context(), "hot"); err != nil {
				t.Fatal(err)
			}
		}
		mustGet(t, o, "hot", "hot@v2")
		if n := src.count("hot"); n < 19 || n > 22 {
			t.Errorf("hot builds = %d, want about 21 (1 + one a minute)", n)
		}
		if n := src.count("idle"); n != idleAt7 || n < 5 || n > 7 {
			t.Errorf("idle builds = %d (%d at 7m), want about 6, none after 7m", n, idleAt7)
		}
		if st := o.Stats(); st.Tracked != 1 || st.RebuildErrors != 0 {
			t.Errorf("stats = %+v, want only the hot key tracked", st)
		}
		_ = o.Close()
	})
}

func TestRefreshAheadBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		o := newObjects(t, newMemory(t), src, objects.Config[string]{RefreshEvery: time.Hour, MaxTracked: 80})
		for i := range 200 {
			k := fmt.Sprint("k", i)
			src.set(k, 1)
			if _, err := o.Get(t.Context(), k); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		if n := o.Stats().Tracked; n > 80 || n < 70 {
			t.Errorf("tracked = %d, want at most 80", n)
		}
		_ = o.Close()
	})
}

func TestInvalidateUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.set("k", 1)
		o := newObjects(t, newMemory(t), src, objects.Config[string]{})
		mustGet(t, o, "k", "k@v1")
		for v := 2; v <= 5; v++ {
			src.set("k", v)
			gate := src.blockNext()
			if err := o.Invalidate(t.Context(), "k"); err != nil {
				t.Fatal(err)
			}
			synctest.Wait() // the rebuild holds the lease
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					if got, err := o.Get(t.Context(), "k"); err != nil || got != fmt.Sprintf("k@v%d", v-1) {
						t.Errorf("Get during the rebuild = %q, %v; want the last good object", got, err)
					}
				})
			}
			wg.Wait()
			close(gate)
			synctest.Wait()
			mustGet(t, o, "k", fmt.Sprintf("k@v%d", v))
			if n := src.count("k"); n != v {
				t.Fatalf("after invalidation %d: builds = %d, want one per invalidation", v-1, n)
			}
		}
		_ = o.Close()
	})
}

type plainCache struct{ cache.ObjectCache }

type nopRunner struct{}

func (nopRunner) Submit(context.Context, string) error { return nil }

func TestNewInvalidConfig(t *testing.T) {
	m := newMemory(t)
	build := newSource().build
	for name, tc := range map[string]struct {
		c     cache.ObjectCache
		build func(context.Context, string) (string, error)
		cfg   objects.Config[string]
	}{
		"nil build":         {m, nil, objects.Config[string]{}},
		"not a SwapCache":   {plainCache{m}, build, objects.Config[string]{}},
		"nil cache":         {nil, build, objects.Config[string]{}},
		"negative TTL":      {m, build, objects.Config[string]{TTL: -1}},
		"negative StaleFor": {m, build, objects.Config[string]{StaleFor: -1}},
		"negative refresh":  {m, build, objects.Config[string]{RefreshEvery: -time.Second}},
		"negative workers":  {m, build, objects.Config[string]{Workers: -1}},
		"runner and pool":   {m, build, objects.Config[string]{Runner: nopRunner{}, Workers: 2}},
		"loader config":     {m, build, objects.Config[string]{LeaseTTL: -1}},
	} {
		if _, err := objects.New(tc.c, tc.build, tc.cfg); !errors.Is(err, cache.ErrInvalidConfig) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
}

// A Runner of another kind (a job queue) gets the submissions; its worker
// calls Rebuild.
type recordingRunner struct {
	mu   sync.Mutex
	keys []string
}

func (r *recordingRunner) Submit(_ context.Context, key string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = append(r.keys, key)
	return nil
}

func TestCustomRunner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		src.set("a", 1)
		src.set("b", 1)
		r := &recordingRunner{}
		o := newObjects(t, newMemory(t), src, objects.Config[string]{Runner: r})
		mustGet(t, o, "a", "a@v1")
		src.set("a", 2)
		if err := o.Invalidate(t.Context(), "a", "b"); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(r.keys) != "[a b]" {
			t.Fatalf("submitted %v, want [a b]", r.keys)
		}
		for _, k := range r.keys { // the queue's worker
			if err := o.Rebuild(t.Context(), k); err != nil {
				t.Fatal(err)
			}
		}
		mustGet(t, o, "a", "a@v2")
		mustGet(t, o, "b", "b@v1")
		if n := src.count("b"); n != 1 {
			t.Errorf("b builds = %d, want 1 (built by Rebuild)", n)
		}
		_ = o.Close()
	})
}

func TestSubmitsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource()
		gate := src.blockNext()
		src.set("k0", 1)
		o := newObjects(t, newMemory(t), src, objects.Config[string]{Workers: 1, QueueLen: 2})
		if err := o.Invalidate(t.Context(), "k0"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		// The one worker is blocked on k0; two keys fill the queue.
		if err := o.Invalidate(t.Context(), "k1", "k2", "k3", "k4"); err != nil {
			t.Fatal(err)
		}
		if st := o.Stats(); st.SubmitsDropped != 2 {
			t.Errorf("SubmitsDropped = %d, want 2", st.SubmitsDropped)
		}
		close(gate)
		synctest.Wait()
		_ = o.Close()
		if err := o.Invalidate(t.Context(), "k0"); err != nil {
			t.Fatal(err)
		}
		if st := o.Stats(); st.SubmitsDropped != 3 {
			t.Errorf("SubmitsDropped after Close = %d, want 3", st.SubmitsDropped)
		}
	})
}

// After Close, Get and Rebuild answer ErrClosed without building, and a
// second Close returns at once.
func TestObjectsAfterClose(t *testing.T) {
	src := newSource()
	src.set("k", 1)
	o := newObjects(t, newMemory(t), src, objects.Config[string]{})
	if _, err := o.Get(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	builds := src.count("k")
	if _, err := o.Get(t.Context(), "k"); !errors.Is(err, objects.ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
	if err := o.Rebuild(t.Context(), "k"); !errors.Is(err, objects.ErrClosed) {
		t.Errorf("Rebuild after Close = %v, want ErrClosed", err)
	}
	if n := src.count("k") - builds; n != 0 {
		t.Errorf("%d builds after Close", n)
	}
	if st := o.Stats(); st.RebuildErrors != 0 {
		t.Errorf("RebuildErrors = %d: a closed Rebuild is not a failed build", st.RebuildErrors)
	}
}
