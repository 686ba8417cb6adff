// Real-time tests in this file: TestTwoProcessesOnRedis (two Objects on a
// real Redis, an invalidation crossing it by pub/sub and a rebuild lease;
// no duration promise: it waits up to 5 s, room for a loaded machine, for
// each rebuild to land, and says what it waited for and for how long).
package objects_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scaleout/scaleout/cache/objects"
	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/internal/testenv"
)

// Two Objects on one Redis stand for two processes: an invalidation in
// either is seen by both, for one build each time.
func TestTwoProcessesOnRedis(t *testing.T) {
	prefix := testenv.Prefix(t)
	var procs [2]*objects.Objects[string]
	src := newSource()
	src.set("k", 1)
	for i := range procs {
		c, err := rediscache.New(testenv.RedisClient(t), rediscache.Config{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		procs[i] = newObjects(t, c, src, objects.Config[string]{TTL: time.Minute, StaleFor: time.Hour})
	}
	a, b := procs[0], procs[1]
	mustGet(t, a, "k", "k@v1")
	mustGet(t, b, "k", "k@v1")
	if n := src.count("k"); n != 1 {
		t.Fatalf("builds = %d, want 1", n)
	}
	for v := 2; v <= 5; v++ {
		writer, reader := procs[v%2], procs[(v+1)%2]
		src.set("k", v)
		if err := writer.Invalidate(context.Background(), "k"); err != nil {
			t.Fatal(err)
		}
		// Once the writer's worker holds the lease, no reader anywhere builds.
		waitFor(t, fmt.Sprintf("build %d after invalidation %d", v, v-1), func() bool { return src.count("k") == v })
		want := fmt.Sprintf("k@v%d", v)
		waitFor(t, fmt.Sprintf("the reader to see %s", want), func() bool {
			got, err := reader.Get(context.Background(), "k")
			if err != nil {
				t.Fatal(err)
			}
			return got == want
		})
		mustGet(t, writer, "k", want)
		if n := src.count("k"); n != v {
			t.Fatalf("after invalidation %d: builds = %d, want %d (one per invalidation)", v-1, n, v)
		}
	}
	// A rebuild counts itself once its Refresh returned, a moment after
	// the object it stored became visible: wait for the count, then
	// check it is exactly one per invalidation.
	waitFor(t, "the four rebuilds to be counted", func() bool {
		return a.Stats().Rebuilds+b.Stats().Rebuilds+a.Stats().RebuildErrors+b.Stats().RebuildErrors >= 4
	})
	st := a.Stats()
	st2 := b.Stats()
	if st.Rebuilds+st2.Rebuilds != 4 || st.RebuildErrors+st2.RebuildErrors != 0 {
		t.Errorf("rebuilds = %d+%d (errors %d+%d), want 4", st.Rebuilds, st2.Rebuilds, st.RebuildErrors, st2.RebuildErrors)
	}
}

// waitFor polls cond until it holds, and fails the test, naming what, if
// it does not within 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("waited %v for %s", took, what)
		}
		time.Sleep(time.Millisecond)
	}
}
