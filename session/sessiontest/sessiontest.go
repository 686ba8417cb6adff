// Package sessiontest is the conformance kit for session.SessionStore: the
// tests every store runs (the in-memory store, session/redisstore on a
// single Redis and on a Redis Cluster, session/memcachedstore), and that
// authors of other stores can run on their own.
//
// Run checks the SessionStore contract, and, when the store also
// implements them, the session.CASStore and session.UserIndex contracts:
//
//   - Load of a missing ID finds nothing and returns no error.
//   - Save/Load round-trips any bytes (all 256 byte values, empty and nil
//     data), copies data (callers may reuse buffers), overwrites, and
//     Delete removes (deleting a missing ID is not an error).
//   - An expiry in the past deletes; an expiry two seconds ahead is
//     honoured: the session is gone at most three seconds after it, and
//     not more than 1.25s before it (stores may have 1-second granularity).
//   - Invalid IDs (empty, longer than session.MaxIDLength) fail with
//     session.ErrInvalidID; odd but valid IDs (spaces, control bytes,
//     '{', '%', unicode, invalid UTF-8, 200 bytes) work and do not collide.
//   - A 512 KiB value round-trips or fails with session.ErrTooLarge, never
//     silently truncated.
//   - Concurrent use of distinct IDs is safe (run the kit with -race).
//   - A canceled context fails with context.Canceled or is ignored; it
//     never turns an existing session into a silent "not found".
//   - CASStore: LoadVersion of a missing ID returns version 0; SaveIf
//     with version 0 creates only; a stale version fails with
//     session.ErrConflict and stores nothing; a version loaded before a
//     Delete never matches again (a logout is never undone), not even
//     after the ID is saved anew; every save makes a new version; 100
//     goroutines doing load-modify-SaveIf retry loops lose no increment.
//   - CASStore: SaveIf with an expiry in the past deletes only over the
//     current version (a logout that a stale writer cannot undo).
//   - UserIndex: a user's sessions are listed, DeleteUser deletes them and
//     the index, users do not see each other's sessions, an index entry
//     whose expiry has passed is not listed, and AddUserSession refuses an
//     invalid ID or an empty user with session.ErrInvalidID.
//   - Manager (with a CASStore; see RunManager): session.Manager over the
//     store, through two Managers as two clones: a logout raced by writes
//     and renewals is never undone (RaceTrials trials, zero survivors); a
//     commit whose reply is lost — reported as an error, or re-sent by the
//     client with up to 7 other commits in between — is applied exactly
//     once, on a plain commit, a renewal and a new session, and one whose
//     outcome cannot be known is reported failed, never applied twice; a
//     pre-login ID never reaches the logged-in session, its data or its
//     ID; concurrent increments through two clones all count.
//
// The kit takes a few seconds, most of it waiting for one expiry and
// running the logout races. Each
// subtest calls newStore for a fresh store; newStore should register its
// cleanup (closing the store, deleting keys) with t.Cleanup. Stores that
// share one server may be given the same backing keyspace: the kit uses
// random IDs and user names.
//
// Usage, in a store's tests:
//
//	func TestConformance(t *testing.T) {
//		sessiontest.Run(t, func(t *testing.T) session.SessionStore {
//			s := mystore.New(client, mystore.Config{Prefix: "test:" + t.Name()})
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
package sessiontest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/session"
)

// Run runs the conformance tests as subtests of t. newStore returns a
// fresh store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) session.SessionStore) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s session.SessionStore)
	}{
		{"LoadMissing", testLoadMissing},
		{"RoundTrip", testRoundTrip},
		{"EmptyValue", testEmptyValue},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"ExpiryInPastDeletes", testExpiryInPast},
		{"ExpiryHonoured", testExpiryHonoured},
		{"InvalidIDs", testInvalidIDs},
		{"OddIDs", testOddIDs},
		{"LargeValue", testLargeValue},
		{"Concurrent", testConcurrent},
		{"CanceledContext", testCanceledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}

	casTests := []struct {
		name string
		fn   func(t *testing.T, s session.CASStore)
	}{
		{"LoadVersionMissing", testCASLoadMissing},
		{"SaveIfCreates", testCASCreate},
		{"SaveIfStaleConflicts", testCASStale},
		{"SaveIfAfterDeleteConflicts", testCASAfterDelete},
		{"VersionNotReusedAfterDelete", testCASNoReuse},
		{"VersionsChange", testCASVersionsChange},
		{"SaveIfInvalidID", testCASInvalidID},
		{"ConcurrentIncrements", testCASCounter},
		{"SaveIfPastExpiryDeletes", testCASPastExpiry},
	}
	t.Run("CAS", func(t *testing.T) {
		if _, ok := newStore(t).(session.CASStore); !ok {
			t.Skip("store does not implement session.CASStore")
		}
		for _, tc := range casTests {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t).(session.CASStore)) })
		}
	})

	t.Run("Manager", func(t *testing.T) { RunManager(t, newStore) })

	userTests := []struct {
		name string
		fn   func(t *testing.T, s session.SessionStore, ui session.UserIndex)
	}{
		{"ListAndDeleteUser", testUserListDelete},
		{"Isolation", testUserIsolation},
		{"ExpiredEntryNotListed", testUserExpired},
		{"InvalidID", testUserInvalidID},
	}
	t.Run("UserIndex", func(t *testing.T) {
		if _, ok := newStore(t).(session.UserIndex); !ok {
			t.Skip("store does not implement session.UserIndex")
		}
		for _, tc := range userTests {
			t.Run(tc.name, func(t *testing.T) {
				s := newStore(t)
				tc.fn(t, s, s.(session.UserIndex))
			})
		}
	})
}

// newID returns a random valid ID in the shape the Manager issues
// (43 bytes), with a readable tag.
func newID(t *testing.T, tag string) string {
	t.Helper()
	var b [16]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return "st-" + tag + "-" + hex.EncodeToString(b[:])
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func later() time.Time { return time.Now().Add(time.Hour) }

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func requireLoad(t *testing.T, s session.SessionStore, id string, want []byte) {
	t.Helper()
	got, found, err := s.Load(ctxFor(t), id)
	require.NoError(t, err)
	require.True(t, found, "session %q not found", id)
	require.Equal(t, len(want), len(got), "session %q: data length", id)
	require.True(t, bytes.Equal(want, got), "session %q: data differs", id)
}

func requireMissing(t *testing.T, s session.SessionStore, id string) {
	t.Helper()
	got, found, err := s.Load(ctxFor(t), id)
	require.NoError(t, err)
	require.False(t, found, "session %q should be missing", id)
	require.Empty(t, got)
}

func testLoadMissing(t *testing.T, s session.SessionStore) {
	requireMissing(t, s, newID(t, "missing"))
}

func testRoundTrip(t *testing.T, s session.SessionStore) {
	ctx := ctxFor(t)
	id := newID(t, "rt")
	buf := allBytes()
	require.NoError(t, s.Save(ctx, id, buf, later()))
	// The store must not keep the caller's buffer.
	for i := range buf {
		buf[i] = 0xAA
	}
	requireLoad(t, s, id, allBytes())

	// Nor hand out a buffer a caller's change would corrupt.
	got, found, err := s.Load(ctx, id)
	require.NoError(t, err)
	require.True(t, found)
	for i := range got {
		got[i] = 0x55
	}
	requireLoad(t, s, id, allBytes())
}

func testEmptyValue(t *testing.T, s session.SessionStore) {
	ctx := ctxFor(t)
	for _, data := range [][]byte{{}, nil} {
		id := newID(t, "empty")
		require.NoError(t, s.Save(ctx, id, data, later()))
		got, found, err := s.Load(ctx, id)
		require.NoError(t, err)
		require.True(t, found, "an empty session is still a session")
		require.Empty(t, got)
	}
}

func testOverwrite(t *testing.T, s session.SessionStore) {
	ctx := ctxFor(t)
	id := newID(t, "ow")
	require.NoError(t, s.Save(ctx, id, []byte("first, longer value"), later()))
	require.NoError(t, s.Save(ctx, id, []byte("second"), later()))
	requireLoad(t, s, id, []byte("second"))
	require.NoError(t, s.Save(ctx, id, []byte{}, later()))
	requireLoad(t, s, id, []byte{})
}

func testDelete(t *testing.T, s session.SessionStore) {
	ctx := ctxFor(t)
	id, other := newID(t, "del"), newID(t, "keep")
	require.NoError(t, s.Save(ctx, id, []byte("x"), later()))
	require.NoError(t, s.Save(ctx, other, []byte("y"), later()))
	require.NoError(t, s.Delete(ctx, id))
	requireMissing(t, s, id)
	requireLoad(t, s, other, []byte("y"))
	require.NoError(t, s.Delete(ctx, id), "deleting twice")
	require.NoError(t, s.Delete(ctx, newID(t, "never")), "deleting a missing session")
	// A deleted ID can be saved again.
	require.NoError(t, s.Save(ctx, id, []byte("z"), later()))
	requireLoad(t, s, id, []byte("z"))
}

func testExpiryInPast(t *testing.T, s session.SessionStore) {
	ctx := ctxFor(t)
	id := newID(t, "past")
	require.NoError(t, s.Save(ctx, id, []byte("x"), later()))
	require.NoError(t, s.Save(ctx, id, []byte("y"), time.Now().Add(-time.Hour)))
	requireMissing(t, s, id)

	id2 := newID(t, "past2")
	require.NoError(t, s.Save(ctx, id2, []byte("y"), time.Now().Add(-time.Second)))
	requireMissing(t, s, id2)
}

// expirySlack is how early a store may drop a session: stores with
// 1-second granularity (memcached) can expire an item up to a second
// before its expiry; a little more covers scheduling.
const expirySlack = 1250 * time.Millisecond

func testExpiryHonoured(t *testing.T, s session.SessionStore) {
	ctx := ctxFor(t)
	id, long := newID(t, "exp"), newID(t, "long")
	require.NoError(t, s.Save(ctx, long, []byte("stays"), later()))
	expiry := time.Now().Add(2 * time.Second)
	require.NoError(t, s.Save(ctx, id, []byte("goes"), expiry))
	requireLoad(t, s, id, []byte("goes"))
	// Poll until it is gone: not much before its expiry, and not long
	// after (stores may count in whole seconds and round up).
	deadline := expiry.Add(3 * time.Second)
	for {
		asked := time.Now()
		_, found, err := s.Load(ctx, id)
		require.NoError(t, err)
		if !found {
			require.False(t, asked.Before(expiry.Add(-expirySlack)),
				"session gone %v before its expiry", expiry.Sub(asked))
			break
		}
		require.True(t, time.Now().Before(deadline), "session still there 3s after its expiry")
		time.Sleep(100 * time.Millisecond)
	}
	requireLoad(t, s, long, []byte("stays"))
}

func invalidIDs() map[string]string {
	return map[string]string{
		"empty":   "",
		"tooLong": strings.Repeat("a", session.MaxIDLength+1),
		"huge":    strings.Repeat("b", 64<<10),
	}
}

func testInvalidIDs(t *testing.T, s session.SessionStore) {
	ctx := ctxFor(t)
	for name, id := range invalidIDs() {
		t.Run(name, func(t *testing.T) {
			_, found, err := s.Load(ctx, id)
			require.ErrorIs(t, err, session.ErrInvalidID, "Load")
			require.False(t, found)
			require.ErrorIs(t, s.Save(ctx, id, []byte("x"), later()), session.ErrInvalidID, "Save")
			require.ErrorIs(t, s.Delete(ctx, id), session.ErrInvalidID, "Delete")
		})
	}
}

// oddIDs returns valid IDs that stores must keep apart; several would
// collide under a naive key encoding.
func oddIDs(t *testing.T) []string {
	p := newID(t, "odd") // unique prefix, so runs sharing a server don't meet
	ids := []string{
		p + " a b",
		p + "%20a%20b",
		p + "_a_b",
		p + "+a+b",
		p + "\ta\nb\r\x00\x01\x7f",
		p + "{tag}",
		p + "{",
		p + "}",
		p + ":",
		p + "/",
		p + "\\",
		p + "ünïcødé-日本語-🙂",
		p + "\xff\xfe",
		p + "A",
		p + "a",
	}
	n := session.MaxIDLength - len(p)
	ids = append(ids,
		p+strings.Repeat("x", n),              // exactly MaxIDLength bytes
		p+strings.Repeat("x", n-1)+"y",        // same length, last byte differs
		p+strings.Repeat("é", n/2)+"xx"[:n%2], // multi-byte, MaxIDLength bytes
	)
	for _, id := range ids {
		require.LessOrEqual(t, len(id), session.MaxIDLength)
	}
	return ids
}

func testOddIDs(t *testing.T, s session.SessionStore) {
	ctx := ctxFor(t)
	ids := oddIDs(t)
	for i, id := range ids {
		require.NoError(t, s.Save(ctx, id, []byte("v"+strconv.Itoa(i)), later()), "Save %q", id)
	}
	for i, id := range ids {
		requireLoad(t, s, id, []byte("v"+strconv.Itoa(i)))
	}
	// Deleting one leaves the others.
	require.NoError(t, s.Delete(ctx, ids[0]))
	requireMissing(t, s, ids[0])
	for i, id := range ids[1:] {
		requireLoad(t, s, id, []byte("v"+strconv.Itoa(i+1)))
	}
	for _, id := range ids {
		require.NoError(t, s.Delete(ctx, id), "Delete %q", id)
		requireMissing(t, s, id)
	}
}

func testLargeValue(t *testing.T, s session.SessionStore) {
	ctx := ctxFor(t)
	id := newID(t, "large")
	data := make([]byte, 512<<10)
	_, err := rand.Read(data)
	require.NoError(t, err)
	err = s.Save(ctx, id, data, later())
	if err != nil {
		require.ErrorIs(t, err, session.ErrTooLarge, "a value the store cannot hold must fail with ErrTooLarge")
		t.Logf("store refuses %d bytes: %v", len(data), err)
		// Nothing partial must have been stored.
		_, found, lerr := s.Load(ctx, id)
		require.NoError(t, lerr)
		require.False(t, found, "a refused save must store nothing")
		return
	}
	requireLoad(t, s, id, data)
	require.NoError(t, s.Delete(ctx, id))
}

func testConcurrent(t *testing.T, s session.SessionStore) {
	ctx := ctxFor(t)
	const workers, perWorker = 32, 20
	prefix := newID(t, "conc")
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			errs <- concurrentWorker(ctx, s, fmt.Sprintf("%s-%d", prefix, w), perWorker)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func concurrentWorker(ctx context.Context, s session.SessionStore, prefix string, n int) error {
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		want := []byte(id + "-data")
		if err := s.Save(ctx, id, want, later()); err != nil {
			return fmt.Errorf("save %s: %w", id, err)
		}
		got, found, err := s.Load(ctx, id)
		if err != nil {
			return fmt.Errorf("load %s: %w", id, err)
		}
		if !found || !bytes.Equal(got, want) {
			return fmt.Errorf("load %s: got %q, %v; want %q", id, got, found, want)
		}
		if i%2 == 0 {
			if err := s.Delete(ctx, id); err != nil {
				return fmt.Errorf("delete %s: %w", id, err)
			}
			if _, found, err := s.Load(ctx, id); err != nil || found {
				return fmt.Errorf("load %s after Delete: found %v, err %v", id, found, err)
			}
		}
	}
	return nil
}

// requireCanceledOK accepts a nil error (the store ignores the context)
// or one wrapping context.Canceled.
func requireCanceledOK(t *testing.T, err error, op string) bool {
	t.Helper()
	if err == nil {
		return true
	}
	require.ErrorIs(t, err, context.Canceled, "%s with a canceled context", op)
	return false
}

func testCanceledContext(t *testing.T, s session.SessionStore) {
	id := newID(t, "cancel")
	require.NoError(t, s.Save(ctxFor(t), id, []byte("kept"), later()))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	data, found, err := s.Load(ctx, id)
	if requireCanceledOK(t, err, "Load") {
		// Honoured: it must then be the truth, not a silent miss.
		require.True(t, found, "Load with a canceled context must fail, not report a miss")
		require.Equal(t, []byte("kept"), data)
	}
	other := newID(t, "cancel2")
	if requireCanceledOK(t, s.Save(ctx, other, []byte("x"), later()), "Save") {
		requireLoad(t, s, other, []byte("x"))
	}
	if requireCanceledOK(t, s.Delete(ctx, id), "Delete") {
		requireMissing(t, s, id)
	} else {
		// A store that fails fast before touching the network keeps the
		// session; one that failed mid-flight may or may not have deleted.
		_, _, err := s.Load(ctxFor(t), id)
		require.NoError(t, err)
	}
}

// CAS

func testCASLoadMissing(t *testing.T, s session.CASStore) {
	data, v, err := s.LoadVersion(ctxFor(t), newID(t, "casmiss"))
	require.NoError(t, err)
	require.Zero(t, v)
	require.Empty(t, data)
}

func testCASCreate(t *testing.T, s session.CASStore) {
	ctx := ctxFor(t)
	id := newID(t, "cascreate")
	v1, err := s.SaveIf(ctx, id, []byte("one"), later(), 0)
	require.NoError(t, err)
	require.NotZero(t, v1)
	data, v, err := s.LoadVersion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, v1, v)
	require.Equal(t, []byte("one"), data)
	requireLoad(t, s, id, []byte("one"))

	// Version 0 means "only if there is none".
	_, err = s.SaveIf(ctx, id, []byte("two"), later(), 0)
	require.ErrorIs(t, err, session.ErrConflict)
	requireLoad(t, s, id, []byte("one"))

	// The right version saves.
	v2, err := s.SaveIf(ctx, id, []byte("two"), later(), v1)
	require.NoError(t, err)
	require.NotEqual(t, v1, v2)
	requireLoad(t, s, id, []byte("two"))
}

func testCASStale(t *testing.T, s session.CASStore) {
	ctx := ctxFor(t)
	id := newID(t, "casstale")
	v1, err := s.SaveIf(ctx, id, []byte("mine"), later(), 0)
	require.NoError(t, err)
	// Someone else saves, plainly and by CAS.
	require.NoError(t, s.Save(ctx, id, []byte("theirs"), later()))
	_, err = s.SaveIf(ctx, id, []byte("stale"), later(), v1)
	require.ErrorIs(t, err, session.ErrConflict)
	requireLoad(t, s, id, []byte("theirs"))

	_, v2, err := s.LoadVersion(ctx, id)
	require.NoError(t, err)
	require.NotEqual(t, v1, v2)
	v3, err := s.SaveIf(ctx, id, []byte("theirs2"), later(), v2)
	require.NoError(t, err)
	_, err = s.SaveIf(ctx, id, []byte("stale2"), later(), v2)
	require.ErrorIs(t, err, session.ErrConflict)
	requireLoad(t, s, id, []byte("theirs2"))

	// A version that never existed conflicts too.
	_, err = s.SaveIf(ctx, id, []byte("bogus"), later(), v3+1_000_003)
	require.ErrorIs(t, err, session.ErrConflict)
	requireLoad(t, s, id, []byte("theirs2"))
}

func testCASAfterDelete(t *testing.T, s session.CASStore) {
	ctx := ctxFor(t)
	id := newID(t, "caslogout")
	v, err := s.SaveIf(ctx, id, []byte("logged in"), later(), 0)
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, id)) // logout
	_, err = s.SaveIf(ctx, id, []byte("slow request"), later(), v)
	require.ErrorIs(t, err, session.ErrConflict, "a logout must never be undone")
	requireMissing(t, s, id)
	_, v0, err := s.LoadVersion(ctx, id)
	require.NoError(t, err)
	require.Zero(t, v0)
}

func testCASNoReuse(t *testing.T, s session.CASStore) {
	ctx := ctxFor(t)
	id := newID(t, "casreuse")
	v, err := s.SaveIf(ctx, id, []byte("before"), later(), 0)
	require.NoError(t, err)
	require.NoError(t, s.Delete(ctx, id))
	// The ID is saved anew, by plain Save and by SaveIf(0).
	require.NoError(t, s.Save(ctx, id, []byte("anew"), later()))
	_, err = s.SaveIf(ctx, id, []byte("stale"), later(), v)
	require.ErrorIs(t, err, session.ErrConflict, "a version from before a Delete must not match a new session")
	requireLoad(t, s, id, []byte("anew"))

	require.NoError(t, s.Delete(ctx, id))
	_, err = s.SaveIf(ctx, id, []byte("anew2"), later(), 0)
	require.NoError(t, err)
	_, err = s.SaveIf(ctx, id, []byte("stale"), later(), v)
	require.ErrorIs(t, err, session.ErrConflict, "a version from before a Delete must not match a new session")
	requireLoad(t, s, id, []byte("anew2"))
}

func testCASVersionsChange(t *testing.T, s session.CASStore) {
	ctx := ctxFor(t)
	id := newID(t, "casvers")
	seen := map[session.Version]bool{}
	var v session.Version
	for i := range 5 {
		nv, err := s.SaveIf(ctx, id, []byte("same data"), later(), v)
		require.NoError(t, err)
		require.NotZero(t, nv)
		require.False(t, seen[nv], "save %d returned version %d again", i, nv)
		seen[nv] = true
		// A plain Save changes the version too.
		require.NoError(t, s.Save(ctx, id, []byte("same data"), later()))
		_, v, err = s.LoadVersion(ctx, id)
		require.NoError(t, err)
		require.NotZero(t, v)
		require.False(t, seen[v], "Save after SaveIf kept version %d", v)
		seen[v] = true
	}
}

func testCASInvalidID(t *testing.T, s session.CASStore) {
	ctx := ctxFor(t)
	for name, id := range invalidIDs() {
		t.Run(name, func(t *testing.T) {
			_, _, err := s.LoadVersion(ctx, id)
			require.ErrorIs(t, err, session.ErrInvalidID, "LoadVersion")
			_, err = s.SaveIf(ctx, id, []byte("x"), later(), 0)
			require.ErrorIs(t, err, session.ErrInvalidID, "SaveIf")
		})
	}
}

// testCASPastExpiry: SaveIf with an expiry in the past is a conditional
// delete (the Manager's logout): with the current version it deletes and
// returns version 0; with a stale one it fails with ErrConflict and the
// session stays.
func testCASPastExpiry(t *testing.T, s session.CASStore) {
	ctx := ctxFor(t)
	id := newID(t, "casdel")
	v1, err := s.SaveIf(ctx, id, []byte("a"), later(), 0)
	require.NoError(t, err)
	v2, err := s.SaveIf(ctx, id, []byte("b"), later(), v1)
	require.NoError(t, err)
	_, err = s.SaveIf(ctx, id, nil, time.Now().Add(-time.Hour), v1)
	require.ErrorIs(t, err, session.ErrConflict, "a conditional delete with a stale version")
	requireLoad(t, s, id, []byte("b"))
	v, err := s.SaveIf(ctx, id, nil, time.Now().Add(-time.Hour), v2)
	require.NoError(t, err, "a conditional delete with the current version")
	require.Zero(t, v)
	requireMissing(t, s, id)
}

func testCASCounter(t *testing.T, s session.CASStore) {
	ctx := ctxFor(t)
	id := newID(t, "cascount")
	_, err := s.SaveIf(ctx, id, []byte("0"), later(), 0)
	require.NoError(t, err)

	const workers = 100
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { errs <- increment(ctx, s, id) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	requireLoad(t, s, id, []byte(strconv.Itoa(workers)))
}

func increment(ctx context.Context, s session.CASStore, id string) error {
	for range 100_000 {
		data, v, err := s.LoadVersion(ctx, id)
		if err != nil {
			return fmt.Errorf("LoadVersion: %w", err)
		}
		if v == 0 {
			return errors.New("LoadVersion: counter session vanished")
		}
		n, err := strconv.Atoi(string(data))
		if err != nil {
			return fmt.Errorf("counter data %q: %w", data, err)
		}
		_, err = s.SaveIf(ctx, id, []byte(strconv.Itoa(n+1)), later(), v)
		if errors.Is(err, session.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("SaveIf: %w", err)
		}
		return nil
	}
	return errors.New("increment: no SaveIf succeeded in 100000 attempts")
}

// UserIndex

func saveAndIndex(t *testing.T, s session.SessionStore, ui session.UserIndex, user, tag string, n int) []string {
	t.Helper()
	ctx := ctxFor(t)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newID(t, tag)
		require.NoError(t, s.Save(ctx, ids[i], []byte(user), later()))
		require.NoError(t, ui.AddUserSession(ctx, user, ids[i], later()))
	}
	return ids
}

func testUserListDelete(t *testing.T, s session.SessionStore, ui session.UserIndex) {
	ctx := ctxFor(t)
	user := newID(t, "user")
	ids := saveAndIndex(t, s, ui, user, "usess", 3)
	// Adding again is idempotent.
	require.NoError(t, ui.AddUserSession(ctx, user, ids[0], later()))

	got, err := ui.UserSessions(ctx, user)
	require.NoError(t, err)
	require.ElementsMatch(t, ids, got)

	require.NoError(t, ui.DeleteUser(ctx, user))
	for _, id := range ids {
		requireMissing(t, s, id)
	}
	got, err = ui.UserSessions(ctx, user)
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, ui.DeleteUser(ctx, user), "deleting a user twice")

	// Unknown users have no sessions.
	got, err = ui.UserSessions(ctx, newID(t, "nobody"))
	require.NoError(t, err)
	require.Empty(t, got)
}

func testUserIsolation(t *testing.T, s session.SessionStore, ui session.UserIndex) {
	ctx := ctxFor(t)
	alice, bob := newID(t, "alice"), newID(t, "bob")
	aliceIDs := saveAndIndex(t, s, ui, alice, "asess", 3)
	bobIDs := saveAndIndex(t, s, ui, bob, "bsess", 2)

	got, err := ui.UserSessions(ctx, alice)
	require.NoError(t, err)
	require.ElementsMatch(t, aliceIDs, got)
	got, err = ui.UserSessions(ctx, bob)
	require.NoError(t, err)
	require.ElementsMatch(t, bobIDs, got)

	require.NoError(t, ui.DeleteUser(ctx, alice))
	for _, id := range bobIDs {
		requireLoad(t, s, id, []byte(bob))
	}
	got, err = ui.UserSessions(ctx, bob)
	require.NoError(t, err)
	require.ElementsMatch(t, bobIDs, got)
}

func testUserExpired(t *testing.T, s session.SessionStore, ui session.UserIndex) {
	ctx := ctxFor(t)
	user := newID(t, "uexp")
	live := saveAndIndex(t, s, ui, user, "ulive", 1)
	gone := newID(t, "ugone")
	require.NoError(t, s.Save(ctx, gone, []byte(user), later()))
	require.NoError(t, ui.AddUserSession(ctx, user, gone, time.Now().Add(-time.Minute)))
	got, err := ui.UserSessions(ctx, user)
	require.NoError(t, err)
	require.ElementsMatch(t, live, got)
}

func testUserInvalidID(t *testing.T, s session.SessionStore, ui session.UserIndex) {
	ctx := ctxFor(t)
	user := newID(t, "uinv")
	for name, id := range invalidIDs() {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, ui.AddUserSession(ctx, user, id, later()), session.ErrInvalidID)
		})
	}
	require.ErrorIs(t, ui.AddUserSession(ctx, "", newID(t, "nouser"), later()), session.ErrInvalidID, "an empty user")
}
