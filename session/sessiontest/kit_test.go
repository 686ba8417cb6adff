package sessiontest_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/sessiontest"
)

// The kit is a product: a store that breaks a clause must fail it. Each
// broken store below breaks one promise of the SessionStore, CASStore or
// UserIndex contract (or, for the Manager clauses, one the Manager relies
// on); TestKitCatchesBrokenStores runs the kit on each in a child process
// and requires the clause it breaks to fail.

// brokenEnv names the broken store the child process runs the kit on.
const brokenEnv = "SESSIONTEST_BROKEN_STORE"

type broken struct {
	session.CASStore
	session.UserIndex
	how string
}

func (b *broken) Load(ctx context.Context, id string) ([]byte, bool, error) {
	data, v, err := b.LoadVersion(ctx, id)
	return data, v != 0, err
}

func (b *broken) LoadVersion(ctx context.Context, id string) ([]byte, session.Version, error) {
	if b.how == "ids collide" && len(id) > 8 {
		id = id[:8]
	}
	return b.CASStore.LoadVersion(ctx, id)
}

func (b *broken) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	switch b.how {
	case "ids collide":
		if len(id) > 8 {
			id = id[:8]
		}
	case "ignores expiry":
		exp = time.Now().Add(time.Hour)
	}
	return b.CASStore.Save(ctx, id, data, exp)
}

func (b *broken) SaveIf(ctx context.Context, id string, data []byte, exp time.Time, v session.Version) (session.Version, error) {
	switch b.how {
	case "no compare":
		cur := session.Version(0)
		if _, c, err := b.CASStore.LoadVersion(ctx, id); err == nil {
			cur = c
		}
		return b.CASStore.SaveIf(ctx, id, data, exp, cur)
	case "unconditional delete":
		if !exp.After(time.Now()) {
			return 0, b.CASStore.Delete(ctx, id)
		}
	case "conditional delete keeps":
		if !exp.After(time.Now()) {
			if _, cur, err := b.CASStore.LoadVersion(ctx, id); err == nil && cur != v {
				return 0, session.ErrConflict
			}
			return 0, nil
		}
	}
	return b.CASStore.SaveIf(ctx, id, data, exp, v)
}

func (b *broken) Delete(ctx context.Context, id string) error {
	if b.how == "delete does nothing" {
		return nil
	}
	return b.CASStore.Delete(ctx, id)
}

func (b *broken) UserSessions(ctx context.Context, user string) ([]string, error) {
	if b.how == "users share an index" {
		user = "everyone"
	}
	return b.UserIndex.UserSessions(ctx, user)
}

func (b *broken) AddUserSession(ctx context.Context, user, id string, exp time.Time) error {
	if b.how == "users share an index" {
		user = "everyone"
	}
	return b.UserIndex.AddUserSession(ctx, user, id, exp)
}

// brokenStores maps each broken behaviour to the clause that must catch it.
var brokenStores = map[string]string{
	"ids collide":          "OddIDs",
	"ignores expiry":       "ExpiryInPastDeletes",
	"no compare":           "CAS/SaveIfStaleConflicts",
	"unconditional delete": "CAS/SaveIfPastExpiryDeletes",
	"delete does nothing":  "Delete",
	"users share an index": "UserIndex/Isolation",
	// A logout through the Manager that the store acknowledges and
	// ignores: the Manager's race clause catches it too.
	"conditional delete keeps": "Manager/LogoutWinsRaces",
}

// TestBrokenStoreChild runs the kit on the broken store the parent names;
// it does nothing in a normal run.
func TestBrokenStoreChild(t *testing.T) {
	how := os.Getenv(brokenEnv)
	if how == "" {
		return
	}
	sessiontest.Run(t, func(t *testing.T) session.SessionStore {
		m, err := session.NewMemory(session.MemoryConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		return &broken{CASStore: m, UserIndex: m, how: how}
	})
}

func TestKitCatchesBrokenStores(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		return
	}
	failed := regexp.MustCompile(`--- FAIL: TestBrokenStoreChild/(\S+)`)
	for how, clause := range brokenStores {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStoreChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+how)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the kit passed a store whose %s: it cannot catch that", how)
			}
			var caught []string
			for _, m := range failed.FindAllStringSubmatch(string(out), -1) {
				caught = append(caught, m[1])
				if m[1] == clause {
					return
				}
			}
			t.Fatalf("a store whose %s failed %v, not the clause %s that promises otherwise:\n%s", how, caught, clause, tail(string(out)))
		})
	}
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-40):], "\n")
}
