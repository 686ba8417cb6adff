package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/session"
)

// flakyStore fails loads while broken is set.
type flakyStore struct {
	*session.Memory
	broken bool
}

var errStoreDown = errors.New("store down")

func (f *flakyStore) Load(ctx context.Context, id string) ([]byte, bool, error) {
	if f.broken {
		return nil, false, errStoreDown
	}
	return f.Memory.Load(ctx, id)
}

func (f *flakyStore) LoadVersion(ctx context.Context, id string) ([]byte, session.Version, error) {
	if f.broken {
		return nil, 0, errStoreDown
	}
	return f.Memory.LoadVersion(ctx, id)
}

// TestMetrics runs a known workload through a Manager and checks the
// figures of observe's table for session: loads, commits, a conflict and
// its merge retry, renewals (a new ID and a touch), and store errors.
func TestMetrics(t *testing.T) {
	mem, err := session.NewMemory(session.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	rec := observe.NewRecorder()
	m, err := session.NewManager(mem, session.Config{Meter: rec, IdleTimeout: time.Hour, TouchInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A new session: one commit, no load (there was no token).
	ctx, err := m.Load(bg, "")
	must(err)
	must(session.Put(ctx, "n", 1))
	token, _, err := m.Commit(ctx)
	must(err)

	// Two requests load it and both write: the second loses its
	// compare-and-swap, merges and writes again.
	c1, err := m.Load(bg, token)
	must(err)
	c2, err := m.Load(bg, token)
	must(err)
	must(session.Put(c1, "a", 1))
	must(session.Put(c2, "b", 2))
	_, _, err = m.Commit(c1)
	must(err)
	_, _, err = m.Commit(c2)
	must(err)

	// A renewed ID: a commit and a renewal.
	c3, err := m.Load(bg, token)
	must(err)
	must(session.RenewID(c3))
	token, _, err = m.Commit(c3)
	must(err)

	// The store fails: a load error.
	flaky := &flakyStore{Memory: mem, broken: true}
	m2, err := session.NewManager(flaky, session.Config{Meter: rec})
	must(err)
	if _, err := m2.Load(bg, token); !errors.Is(err, errStoreDown) {
		t.Fatalf("Load on a broken store: %v", err)
	}

	for name, want := range map[string]float64{
		"scaleout.session.loads":         4, // c1, c2, c3, the broken one; none for a new session
		"scaleout.session.commits":       4, // the new session, c1, c2 (merged), c3
		"scaleout.session.conflicts":     1,
		"scaleout.session.merge_retries": 1,
		"scaleout.session.renewals":      1,
		"scaleout.session.store_errors":  1,
	} {
		if got := rec.Value(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := rec.Value("scaleout.session.store_errors", "op", "load"); got != 1 {
		t.Errorf("store errors of op load = %v, want 1", got)
	}

	// A touch renews the idle deadline: a renewal, no commit.
	m3, err := session.NewManager(mem, session.Config{Meter: rec, IdleTimeout: time.Hour, TouchInterval: time.Nanosecond})
	must(err)
	c4, err := m3.Load(bg, token)
	must(err)
	time.Sleep(time.Millisecond) // the expiry must move forward
	_, _, err = m3.Commit(c4)
	must(err)
	if got := rec.Value("scaleout.session.renewals"); got != 2 {
		t.Errorf("renewals after a touch = %v, want 2", got)
	}
	if got := rec.Value("scaleout.session.commits"); got != 4 {
		t.Errorf("commits after a touch = %v, want still 4", got)
	}
}
