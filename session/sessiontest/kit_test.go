package sessiontest_test

import (
	"context"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/scaleout/scaleout/internal/kitcheck"
	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/sessiontest"
)

// The kit is a product: a store that breaks a clause must fail it. Each
// broken store below breaks one promise of the SessionStore, CASStore or
// UserIndex contract (or, for the Manager clauses, one the Manager relies
// on); TestKitCatchesBrokenStores runs each clause it breaks in a child
// process and requires that clause to fail.

// brokenEnv names the broken store the child process runs the kit on.
const brokenEnv = "SESSIONTEST_BROKEN_STORE"

type broken struct {
	session.CASStore
	session.UserIndex
	how string

	mu     sync.Mutex
	shared map[string][]byte // "data is shared": the caller's buffers
}

// id breaks IDs the way how says.
func (b *broken) id(id string) string {
	switch {
	case b.how == "ids collide" && len(id) > 8:
		return id[:8]
	case b.how == "long IDs are cut" && len(id) > session.MaxIDLength:
		return id[:session.MaxIDLength]
	}
	return id
}

func (b *broken) Load(ctx context.Context, id string) ([]byte, bool, error) {
	if b.how == "a canceled Load is a miss" && ctx.Err() != nil {
		return nil, false, nil
	}
	data, v, err := b.LoadVersion(ctx, id)
	found := v != 0
	switch b.how {
	case "a miss is an error":
		if err == nil && !found {
			return nil, false, context.DeadlineExceeded
		}
	case "an empty session is a miss":
		if len(data) == 0 {
			found = false
		}
	case "data is shared":
		b.mu.Lock()
		if d, ok := b.shared[id]; ok && found {
			data = d
		}
		b.mu.Unlock()
	}
	return data, found, err
}

func (b *broken) LoadVersion(ctx context.Context, id string) ([]byte, session.Version, error) {
	data, v, err := b.CASStore.LoadVersion(ctx, b.id(id))
	if b.how == "LoadVersion of a missing ID fails" && err == nil && v == 0 {
		return nil, 0, context.DeadlineExceeded
	}
	return data, v, err
}

func (b *broken) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	id = b.id(id)
	switch b.how {
	case "ignores expiry":
		exp = time.Now().Add(time.Hour)
	case "keeps sessions an hour too long":
		exp = exp.Add(time.Hour)
	case "Save keeps the first data":
		if _, v, err := b.CASStore.LoadVersion(ctx, id); err == nil && v != 0 {
			return nil
		}
	case "large values are truncated":
		if len(data) > 256<<10 {
			data = data[:256<<10]
		}
	case "data is shared":
		b.mu.Lock()
		if b.shared == nil {
			b.shared = map[string][]byte{}
		}
		b.shared[id] = data
		b.mu.Unlock()
	}
	return b.CASStore.Save(ctx, id, data, exp)
}

func (b *broken) SaveIf(ctx context.Context, id string, data []byte, exp time.Time, v session.Version) (session.Version, error) {
	id = b.id(id)
	switch b.how {
	case "no compare":
		cur := session.Version(0)
		if _, c, err := b.CASStore.LoadVersion(ctx, id); err == nil {
			cur = c
		}
		return b.CASStore.SaveIf(ctx, id, data, exp, cur)
	case "version 0 overwrites":
		if v == 0 {
			if _, c, err := b.CASStore.LoadVersion(ctx, id); err == nil {
				v = c
			}
		}
	case "SaveIf recreates a deleted session":
		if _, c, err := b.CASStore.LoadVersion(ctx, id); err == nil && c == 0 {
			v = 0
		}
	case "SaveIf is not atomic":
		_, cur, err := b.CASStore.LoadVersion(ctx, id)
		if err != nil {
			return 0, err
		}
		if cur != v {
			return 0, session.ErrConflict
		}
		runtime.Gosched()
		if err := b.CASStore.Save(ctx, id, data, exp); err != nil {
			return 0, err
		}
		_, nv, err := b.CASStore.LoadVersion(ctx, id)
		return nv, err
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
	return b.CASStore.Delete(ctx, b.id(id))
}

func (b *broken) UserSessions(ctx context.Context, user string) ([]string, error) {
	if b.how == "users share an index" {
		user = "everyone"
	}
	return b.UserIndex.UserSessions(ctx, user)
}

func (b *broken) AddUserSession(ctx context.Context, user, id string, exp time.Time) error {
	switch b.how {
	case "users share an index":
		user = "everyone"
	case "expired index entries are listed":
		exp = time.Now().Add(time.Hour)
	case "an empty user is indexed":
		if user == "" {
			user = "nobody"
		}
	}
	return b.UserIndex.AddUserSession(ctx, user, b.id(id), exp)
}

func (b *broken) DeleteUser(ctx context.Context, user string) error {
	if b.how == "DeleteUser does nothing" {
		return nil
	}
	return b.UserIndex.DeleteUser(ctx, user)
}

// brokenStores maps each broken behaviour to the clauses that must catch
// it.
var brokenStores = map[string][]string{
	"a miss is an error":                 {"LoadMissing"},
	"data is shared":                     {"RoundTrip"},
	"an empty session is a miss":         {"EmptyValue"},
	"Save keeps the first data":          {"Overwrite"},
	"delete does nothing":                {"Delete"},
	"ignores expiry":                     {"ExpiryInPastDeletes"},
	"keeps sessions an hour too long":    {"ExpiryHonoured"},
	"long IDs are cut":                   {"InvalidIDs", "CAS/SaveIfInvalidID", "UserIndex/InvalidID"},
	"ids collide":                        {"OddIDs"},
	"large values are truncated":         {"LargeValue"},
	"a canceled Load is a miss":          {"CanceledContext"},
	"LoadVersion of a missing ID fails":  {"CAS/LoadVersionMissing"},
	"version 0 overwrites":               {"CAS/SaveIfCreates"},
	"no compare":                         {"CAS/SaveIfStaleConflicts"},
	"SaveIf recreates a deleted session": {"CAS/SaveIfAfterDeleteConflicts"},
	"SaveIf is not atomic":               {"CAS/ConcurrentIncrements", "Manager/ConcurrentIncrements"},
	"unconditional delete":               {"CAS/SaveIfPastExpiryDeletes"},
	"DeleteUser does nothing":            {"UserIndex/ListAndDeleteUser"},
	"users share an index":               {"UserIndex/Isolation"},
	"expired index entries are listed":   {"UserIndex/ExpiredEntryNotListed"},
	"an empty user is indexed":           {"UserIndex/InvalidID"},
	// A logout through the Manager that the store acknowledges and
	// ignores: the Manager's race clause catches it too.
	"conditional delete keeps": {"Manager/LogoutWinsRaces"},
}

// TestBrokenStoreChild runs the kit on the broken store the parent names;
// it does nothing in a normal run.
func TestBrokenStoreChild(t *testing.T) {
	how := os.Getenv(brokenEnv)
	if how == "" {
		t.Skip("run by TestKitCatchesBrokenStores")
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
		t.Skip("in the child process")
	}
	for how, clauses := range brokenStores {
		for _, clause := range clauses {
			t.Run(how+"/"+clause, func(t *testing.T) {
				t.Parallel() // expiries wait in real time
				kitcheck.Catches(t, "TestBrokenStoreChild", clause, "a store where "+how, brokenEnv+"="+how)
			})
		}
	}
}
