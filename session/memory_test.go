package session_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/sessiontest"
)

// newUnclosedMemory is NewMemory for tests that close the store themselves.
func newUnclosedMemory(t testing.TB, cfg session.MemoryConfig) *session.Memory {
	t.Helper()
	m, err := session.NewMemory(cfg)
	require.NoError(t, err)
	return m
}

func TestNewMemoryRefusesNegativeConfig(t *testing.T) {
	for _, cfg := range []session.MemoryConfig{{SweepInterval: -1}, {MaxBytes: -1}, {MaxSessions: -1}} {
		m, err := session.NewMemory(cfg)
		require.ErrorIs(t, err, session.ErrInvalidConfig)
		require.Nil(t, m)
	}
}

func newTestMemory(t *testing.T, cfg session.MemoryConfig) *session.Memory {
	m, err := session.NewMemory(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m
}

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	sessiontest.Run(t, func(t *testing.T) session.SessionStore {
		return newTestMemory(t, session.MemoryConfig{})
	})
}

func TestMemoryConformanceMaxBytes(t *testing.T) {
	// A limit below the kit's large value: the kit accepts ErrTooLarge.
	t.Parallel()
	sessiontest.Run(t, func(t *testing.T) session.SessionStore {
		return newTestMemory(t, session.MemoryConfig{MaxBytes: 64 << 10})
	})
}

// TestMemoryBoundedByDefault: a store built with the zero config holds at
// most DefaultMaxSessions, however many sessions are saved.
func TestMemoryBoundedByDefault(t *testing.T) {
	m := newTestMemory(t, session.MemoryConfig{})
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for i := range session.DefaultMaxSessions + 5_000 {
		require.NoError(t, m.Save(ctx, fmt.Sprintf("s%07d", i), []byte("x"), exp))
	}
	n, _, evicted := session.MemorySizes(m)
	require.Equal(t, session.DefaultMaxSessions, n)
	require.EqualValues(t, 5_000, evicted)
}

// TestMemoryAnonymousFlood: 100k anonymous requests that each store
// something, through the Manager, leave a store of MaxSessions entries;
// a session in use throughout survives them (least recently used goes
// first), and so does its user index entry.
func TestMemoryAnonymousFlood(t *testing.T) {
	const limit = 1000
	m := newTestMemory(t, session.MemoryConfig{MaxSessions: limit})
	h := newManager(t, m, session.Config{}).LoadAndSave(app())
	user := &client{t: t, h: h}
	user.do("/login?alice")
	user.do("/put?a=1")
	flood := &client{t: t, h: h}
	for i := range 100_000 {
		flood.sid = ""
		flood.do("/put?x=1")
		if i%(limit/4) == 0 {
			require.Equal(t, "1", user.do("/get?a").Body.String(), "a session in use was evicted after %d anonymous sessions", i)
		}
	}
	n, users, evicted := session.MemorySizes(m)
	require.LessOrEqual(t, n, limit)
	require.Equal(t, 1, users)
	require.Greater(t, evicted, int64(90_000))
	ids, err := m.UserSessions(t.Context(), "alice")
	require.NoError(t, err)
	require.Len(t, ids, 1)
}

func TestMemoryMaxBytes(t *testing.T) {
	ctx := t.Context()
	m := newTestMemory(t, session.MemoryConfig{MaxBytes: 10})
	exp := time.Now().Add(time.Hour)
	require.NoError(t, m.Save(ctx, "a", make([]byte, 10), exp))
	require.ErrorIs(t, m.Save(ctx, "a", make([]byte, 11), exp), session.ErrTooLarge)
	_, v, err := m.LoadVersion(ctx, "a")
	require.NoError(t, err)
	_, err = m.SaveIf(ctx, "a", make([]byte, 11), exp, v)
	require.ErrorIs(t, err, session.ErrTooLarge)
	data, found, err := m.Load(ctx, "a")
	require.NoError(t, err)
	require.True(t, found)
	require.Len(t, data, 10, "a refused save leaves the old value")
}

func TestMemoryClose(t *testing.T) {
	ctx := t.Context()
	m := newUnclosedMemory(t, session.MemoryConfig{})
	exp := time.Now().Add(time.Hour)
	require.NoError(t, m.Save(ctx, "a", []byte("x"), exp))
	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "Close is idempotent")

	_, _, err := m.Load(ctx, "a")
	require.ErrorIs(t, err, session.ErrClosed)
	_, _, err = m.LoadVersion(ctx, "a")
	require.ErrorIs(t, err, session.ErrClosed)
	require.ErrorIs(t, m.Save(ctx, "a", []byte("x"), exp), session.ErrClosed)
	_, err = m.SaveIf(ctx, "a", []byte("x"), exp, 0)
	require.ErrorIs(t, err, session.ErrClosed)
	require.ErrorIs(t, m.Delete(ctx, "a"), session.ErrClosed)
	require.ErrorIs(t, m.AddUserSession(ctx, "u", "a", exp), session.ErrClosed)
	_, err = m.UserSessions(ctx, "u")
	require.ErrorIs(t, err, session.ErrClosed)
	require.ErrorIs(t, m.DeleteUser(ctx, "u"), session.ErrClosed)
}

func TestMemoryConcurrentClose(t *testing.T) {
	m := newUnclosedMemory(t, session.MemoryConfig{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _ = m.Close() })
		wg.Go(func() { _, _, _ = m.Load(context.Background(), "a") })
	}
	wg.Wait()
	_, _, err := m.Load(context.Background(), "a")
	require.ErrorIs(t, err, session.ErrClosed)
}

func TestMemoryNoGoroutineLeak(t *testing.T) {
	defer testenv.CheckGoroutines(t)()
	stores := make([]*session.Memory, 20)
	for i := range stores {
		stores[i] = newUnclosedMemory(t, session.MemoryConfig{SweepInterval: time.Millisecond})
	}
	for _, m := range stores {
		require.NoError(t, m.Close())
	}
}

func TestMemorySweep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		m := newUnclosedMemory(t, session.MemoryConfig{SweepInterval: time.Minute})
		defer func() { require.NoError(t, m.Close()) }()

		now := time.Now()
		for i := range 10 {
			id := "short" + strconv.Itoa(i)
			require.NoError(t, m.Save(ctx, id, []byte("x"), now.Add(30*time.Second)))
			require.NoError(t, m.AddUserSession(ctx, "shortuser", id, now.Add(30*time.Second)))
		}
		for i := range 5 {
			id := "long" + strconv.Itoa(i)
			require.NoError(t, m.Save(ctx, id, []byte("x"), now.Add(time.Hour)))
			require.NoError(t, m.AddUserSession(ctx, "longuser", id, now.Add(time.Hour)))
		}

		// Expired but not yet swept: invisible at once, still held.
		time.Sleep(31 * time.Second)
		synctest.Wait()
		_, found, err := m.Load(ctx, "short0")
		require.NoError(t, err)
		require.False(t, found)
		ids, err := m.UserSessions(ctx, "shortuser")
		require.NoError(t, err)
		require.Empty(t, ids)
		sessions, users, _ := session.MemorySizes(m)
		require.Equal(t, 15, sessions)
		require.Equal(t, 2, users)

		// The sweep at one minute frees them.
		time.Sleep(30 * time.Second)
		synctest.Wait()
		sessions, users, _ = session.MemorySizes(m)
		require.Equal(t, 5, sessions)
		require.Equal(t, 1, users)

		// And the long ones at theirs.
		time.Sleep(time.Hour)
		synctest.Wait()
		sessions, users, _ = session.MemorySizes(m)
		require.Zero(t, sessions)
		require.Zero(t, users)
	})
}

func TestMemoryExpiryExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		m := newUnclosedMemory(t, session.MemoryConfig{})
		defer m.Close()
		exp := time.Now().Add(10 * time.Second)
		v, err := m.SaveIf(ctx, "a", []byte("x"), exp, 0)
		require.NoError(t, err)

		time.Sleep(10*time.Second - time.Nanosecond)
		_, found, err := m.Load(ctx, "a")
		require.NoError(t, err)
		require.True(t, found)

		time.Sleep(time.Nanosecond)
		_, found, err = m.Load(ctx, "a")
		require.NoError(t, err)
		require.False(t, found, "expired at its expiry instant")

		// An expired session has version 0: SaveIf(v) conflicts,
		// SaveIf(0) creates.
		_, err = m.SaveIf(ctx, "a", []byte("y"), time.Now().Add(time.Hour), v)
		require.ErrorIs(t, err, session.ErrConflict)
		_, err = m.SaveIf(ctx, "a", []byte("y"), time.Now().Add(time.Hour), 0)
		require.NoError(t, err)
	})
}

func TestMemorySaveIfPastExpiryDeletes(t *testing.T) {
	ctx := t.Context()
	m := newTestMemory(t, session.MemoryConfig{})
	v, err := m.SaveIf(ctx, "a", []byte("x"), time.Now().Add(time.Hour), 0)
	require.NoError(t, err)
	nv, err := m.SaveIf(ctx, "a", []byte("x"), time.Now().Add(-time.Second), v)
	require.NoError(t, err)
	require.Zero(t, nv)
	_, found, err := m.Load(ctx, "a")
	require.NoError(t, err)
	require.False(t, found)
}

func TestMemoryUserIndexEdges(t *testing.T) {
	ctx := t.Context()
	m := newTestMemory(t, session.MemoryConfig{})
	exp := time.Now().Add(time.Hour)
	require.ErrorIs(t, m.AddUserSession(ctx, "", "a", exp), session.ErrInvalidID)

	// A session deleted on its own is no longer listed by the memory store.
	require.NoError(t, m.Save(ctx, "a", []byte("x"), exp))
	require.NoError(t, m.Save(ctx, "b", []byte("x"), exp))
	require.NoError(t, m.AddUserSession(ctx, "u", "a", exp))
	require.NoError(t, m.AddUserSession(ctx, "u", "b", exp))
	require.NoError(t, m.Delete(ctx, "a"))
	ids, err := m.UserSessions(ctx, "u")
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, ids)

	// An earlier expiry does not shorten an index entry.
	require.NoError(t, m.AddUserSession(ctx, "u", "b", time.Now().Add(-time.Hour)))
	ids, err = m.UserSessions(ctx, "u")
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, ids)
}

func TestMemoryCanceledContext(t *testing.T) {
	m := newTestMemory(t, session.MemoryConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := m.Load(ctx, "a")
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, m.Save(ctx, "a", nil, time.Now().Add(time.Hour)), context.Canceled)
	require.ErrorIs(t, m.Delete(ctx, "a"), context.Canceled)
	_, err = m.UserSessions(ctx, "u")
	require.ErrorIs(t, err, context.Canceled)
}

func ExampleMemory() {
	ctx := context.Background()
	store, err := session.NewMemory(session.MemoryConfig{})
	if err != nil {
		panic(err)
	}
	defer store.Close()

	// Create a session only if there is none, then update it over the
	// version loaded.
	v, _ := store.SaveIf(ctx, "session-id", []byte("visits=1"), time.Now().Add(time.Hour), 0)
	data, v2, _ := store.LoadVersion(ctx, "session-id")
	fmt.Println(string(data), v2 == v)

	_, err = store.SaveIf(ctx, "session-id", []byte("visits=2"), time.Now().Add(time.Hour), v)
	fmt.Println(err)
	// A second write over the same, now stale, version conflicts.
	_, err = store.SaveIf(ctx, "session-id", []byte("visits=2"), time.Now().Add(time.Hour), v)
	fmt.Println(err)
	// Output:
	// visits=1 true
	// <nil>
	// session: saved concurrently
}

func benchStore(b *testing.B) *session.Memory {
	m := newUnclosedMemory(b, session.MemoryConfig{})
	b.Cleanup(func() { m.Close() })
	return m
}

func BenchmarkMemoryLoad(b *testing.B) {
	ctx := context.Background()
	m := benchStore(b)
	data := make([]byte, 256)
	const n = 1024
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("session-%040d", i)
		if err := m.Save(ctx, ids[i], data, time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, found, err := m.Load(ctx, ids[i%n]); err != nil || !found {
				b.Fatal(found, err)
			}
			i++
		}
	})
}

func BenchmarkMemorySave(b *testing.B) {
	ctx := context.Background()
	m := benchStore(b)
	data := make([]byte, 256)
	exp := time.Now().Add(time.Hour)
	const n = 1024
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("session-%040d", i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if err := m.Save(ctx, ids[i%n], data, exp); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkMemoryLoadSaveIf(b *testing.B) {
	ctx := context.Background()
	m := benchStore(b)
	exp := time.Now().Add(time.Hour)
	if _, err := m.SaveIf(ctx, "s", make([]byte, 256), exp, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		data, v, err := m.LoadVersion(ctx, "s")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.SaveIf(ctx, "s", data, exp, v); err != nil {
			b.Fatal(err)
		}
	}
}
