package sessiontest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
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
// process and requires that clause to fail. TestKitBreaksEveryClause
// requires a broken store for every clause, and TestKitPassesUnbroken
// that the wrappers break nothing until told to.

// brokenEnv names the broken store the child process runs the kit on.
const brokenEnv = "SESSIONTEST_BROKEN_STORE"

type broken struct {
	session.CASStore
	session.UserIndex
	how string

	mu     sync.Mutex
	shared map[string][]byte // "data is shared": the caller's buffers
	saves  uint64            // Saves begun: "a Save overtaken by another is lost"
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
	case "a Save overtaken by another is lost":
		// A write-behind slot: a Save is sent a round trip after it is
		// made, and a Save made meanwhile replaces it, though both are
		// acknowledged. One caller at a time never notices.
		b.mu.Lock()
		b.saves++
		mine := b.saves
		b.mu.Unlock()
		time.Sleep(time.Millisecond)
		b.mu.Lock()
		overtaken := b.saves != mine
		b.mu.Unlock()
		if overtaken {
			return nil
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
	case "a Login's renewal record forwards":
		data = forwarding(data)
	case "a Login's renewal record is dropped":
		if isRenewal(data) {
			return v + 1, nil
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

// forwarding returns data, when it is the renewal record a Manager leaves
// under a session's old ID after Login or RenewID ('R' | renewed at (8) |
// flags (1) | new ID, see session/record.go), with the forward flag of
// Rotate's set. Nothing else the Manager or the kit saves has that shape.
// LoginSupersedesOldID tests the Manager's own logic: a store breaks it
// only by handing the Manager bytes it was never given, as this does, to
// feed it the session-fixation hole the clause exists to catch — an old
// ID that still leads to the logged-in session. If the layout changes,
// this stops breaking anything, and TestKitCatchesBrokenStores says so.
func forwarding(data []byte) []byte {
	if !isRenewal(data) || data[renewalFlags]&renewalForward != 0 {
		return data
	}
	data = bytes.Clone(data)
	data[renewalFlags] |= renewalForward
	return data
}

// The renewal record's layout (session/record.go).
const (
	renewalTag     = 'R'
	renewalIDLen   = 43
	renewalFlags   = 9 // the offset of its flags
	renewalForward = 1 // the flag of Rotate's records
)

// isRenewal reports whether data is a renewal record.
func isRenewal(data []byte) bool {
	return len(data) == renewalFlags+1+renewalIDLen && data[0] == renewalTag
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
	"a miss is an error":                {"LoadMissing"},
	"data is shared":                    {"RoundTrip"},
	"an empty session is a miss":        {"EmptyValue"},
	"Save keeps the first data":         {"Overwrite"},
	"delete does nothing":               {"Delete"},
	"ignores expiry":                    {"ExpiryInPastDeletes"},
	"keeps sessions an hour too long":   {"ExpiryHonoured"},
	"long IDs are cut":                  {"InvalidIDs", "CAS/SaveIfInvalidID", "UserIndex/InvalidID"},
	"ids collide":                       {"OddIDs"},
	"large values are truncated":        {"LargeValue"},
	"a canceled Load is a miss":         {"CanceledContext"},
	"LoadVersion of a missing ID fails": {"CAS/LoadVersionMissing"},
	"version 0 overwrites":              {"CAS/SaveIfCreates"},
	// Without the compare, a client's re-sent copy of a commit whose reply
	// was lost overwrites the commits that landed in between.
	"no compare":                          {"CAS/SaveIfStaleConflicts", "Manager/LostReplyAppliedOnce"},
	"SaveIf recreates a deleted session":  {"CAS/SaveIfAfterDeleteConflicts"},
	"SaveIf is not atomic":                {"CAS/ConcurrentIncrements", "Manager/ConcurrentIncrements"},
	"unconditional delete":                {"CAS/SaveIfPastExpiryDeletes"},
	"versions restart after a Delete":     {"CAS/VersionNotReusedAfterDelete"},
	"a plain Save keeps the version":      {"CAS/VersionsChange", "CAS/SaveIfStaleConflicts"},
	"a Save overtaken by another is lost": {"Concurrent"},
	"DeleteUser does nothing":             {"UserIndex/ListAndDeleteUser"},
	"users share an index":                {"UserIndex/Isolation"},
	"expired index entries are listed":    {"UserIndex/ExpiredEntryNotListed"},
	"an empty user is indexed":            {"UserIndex/InvalidID"},
	// A logout through the Manager that the store acknowledges and
	// ignores: the Manager's race clause catches it too.
	"conditional delete keeps": {"Manager/LogoutWinsRaces"},
	// Not a store's fault but the Manager's, fed to it through the store:
	// see forwarding.
	"a Login's renewal record forwards": {"Manager/LoginSupersedesOldID"},
	// Acknowledged and not stored: the old ID keeps the pre-login session.
	"a Login's renewal record is dropped": {"Manager/LoginSupersedesOldID"},
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
		if how == listClauses {
			return clauseLister(t, m)
		}
		var cas session.CASStore = m
		switch how {
		case "versions restart after a Delete":
			cas = &renumbered{CASStore: m, restartAfterDelete: true}
		case "a plain Save keeps the version":
			cas = &renumbered{CASStore: m, saveKeepsVersion: true}
		}
		return &broken{CASStore: cas, UserIndex: m, how: how}
	})
}

// TestKitPassesUnbroken runs the kit on the wrappers the broken stores are
// made of, breaking nothing, so that what fails a clause in
// TestKitCatchesBrokenStores is the breakage and not the wrapping.
func TestKitPassesUnbroken(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in the child process")
	}
	t.Parallel()
	sessiontest.Run(t, func(t *testing.T) session.SessionStore {
		m, err := session.NewMemory(session.MemoryConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		return &broken{CASStore: &renumbered{CASStore: m}, UserIndex: m}
	})
}

// listClauses makes the child name the kit's clauses instead of running
// them.
const listClauses = "list clauses"

// clauseMark starts the line the child prints for each test the kit asks
// a store for.
const clauseMark = "kit asked for a store: "

// clauseLister prints t's name, then skips t if it is a clause of a group
// (CAS/…) and otherwise returns m closed, so that a top-level clause fails
// at once; a group gets far enough with it to run its clauses.
func clauseLister(t *testing.T, m *session.Memory) session.SessionStore {
	name := strings.TrimPrefix(t.Name(), "TestBrokenStoreChild/")
	fmt.Printf("%s%s\n", clauseMark, name)
	if strings.Contains(name, "/") {
		t.SkipNow()
	}
	_ = m.Close()
	return m
}

// TestKitBreaksEveryClause requires a broken store for every clause of
// the kit: a clause added without one fails here. The clauses are the
// tests the kit asks a store for that have none of their own below them.
func TestKitBreaksEveryClause(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in the child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStoreChild$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), brokenEnv+"="+listClauses)
	out, _ := cmd.CombinedOutput() // the top-level clauses fail on a closed store
	var asked []string
	for line := range strings.Lines(string(out)) {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), clauseMark); ok {
			asked = append(asked, name)
		}
	}
	var clauses []string
	for _, name := range asked {
		group := slices.ContainsFunc(asked, func(other string) bool { return strings.HasPrefix(other, name+"/") })
		if !group {
			clauses = append(clauses, name)
		}
	}
	if len(clauses) < 20 {
		t.Fatalf("found only %d clauses of the kit (%v) in the child's output:\n%s", len(clauses), clauses, out)
	}
	covered := map[string]bool{}
	for _, cs := range brokenStores {
		for _, c := range cs {
			covered[c] = true
		}
	}
	for _, c := range clauses {
		if !covered[c] {
			t.Errorf("no broken store breaks the kit's clause %s", c)
		}
	}
	if !t.Failed() {
		t.Logf("%d clauses, each broken by a store in brokenStores", len(clauses))
	}
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
