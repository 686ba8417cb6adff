package session_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/session"
)

func TestNewManagerConfig(t *testing.T) {
	store := newSpy(t)
	for _, tc := range []struct {
		name string
		cfg  session.Config
	}{
		{"negative lifetime", session.Config{Lifetime: -1}},
		{"idle over lifetime", session.Config{Lifetime: time.Hour, IdleTimeout: 2 * time.Hour}},
		{"touch not under idle", session.Config{IdleTimeout: time.Minute, TouchInterval: time.Minute}},
		{"bad cookie name", session.Config{Cookie: session.CookieConfig{Name: "a b"}}},
		{"SameSite=None insecure", session.Config{Cookie: session.CookieConfig{SameSite: http.SameSiteNoneMode, Insecure: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := session.NewManager(store, tc.cfg)
			require.ErrorIs(t, err, session.ErrInvalidConfig)
		})
	}
	_, err := session.NewManager(nil, session.Config{})
	require.ErrorIs(t, err, session.ErrInvalidConfig)
	// A short Lifetime alone lowers the default idle timeout.
	_, err = session.NewManager(store, session.Config{Lifetime: time.Minute})
	require.NoError(t, err)
}

func TestCookieAttributes(t *testing.T) {
	store := newSpy(t)
	c := &client{t: t, h: newManager(t, store, session.Config{}).LoadAndSave(app())}
	w := c.do("/put?a=1")
	require.Equal(t, http.StatusOK, w.Code)
	cookies := w.Result().Cookies()
	require.Len(t, cookies, 1)
	ck := cookies[0]
	require.Equal(t, "sid", ck.Name)
	require.Len(t, ck.Value, 43)
	require.Equal(t, "/", ck.Path)
	require.Empty(t, ck.Domain)
	require.True(t, ck.HttpOnly)
	require.True(t, ck.Secure)
	require.Equal(t, http.SameSiteLaxMode, ck.SameSite)
	require.True(t, ck.Expires.IsZero(), "a browser-session cookie by default")
	require.Equal(t, `no-cache="Set-Cookie"`, w.Header().Get("Cache-Control"))
	require.Equal(t, "Cookie", w.Header().Get("Vary"))

	// Reading back sends no cookie and no cache header.
	w = c.do("/get?a")
	require.Equal(t, "1", w.Body.String())
	require.Empty(t, w.Header().Values("Set-Cookie"))
	require.Empty(t, w.Header().Get("Cache-Control"))
}

func TestStrictMode(t *testing.T) {
	store := newSpy(t)
	h := newManager(t, store, session.Config{}).LoadAndSave(app())
	forged := strings.Repeat("A", 43)
	c := &client{t: t, h: h, sid: forged}

	// A read-only request with an unknown ID writes nothing and drops the cookie.
	c.do("/get?a")
	require.Zero(t, store.writes.Load())
	require.Empty(t, c.sid)

	// A write with an unknown ID gets a new ID; the forged one is never stored.
	c.sid = forged
	c.do("/put?a=1")
	require.NotEqual(t, forged, c.sid)
	require.Len(t, c.sid, 43)
	_, found, err := store.Memory.Load(t.Context(), forged)
	require.NoError(t, err)
	require.False(t, found)
	w := c.do("/get?a")
	require.Equal(t, "1", w.Body.String())
}

// TestConcurrentUpdates fires 100 concurrent requests at one session: 100
// increments of one key with Update, and 100 Puts of distinct keys. None
// is lost.
func TestConcurrentUpdates(t *testing.T) {
	for _, name := range []string{"cas", "plain"} {
		t.Run(name, func(t *testing.T) {
			var store session.SessionStore = newSpy(t)
			if name == "plain" {
				store = plainStore{store}
			}
			c := &client{t: t, h: newManager(t, store, session.Config{}).LoadAndSave(app())}
			c.do("/put?start=1")
			require.NotEmpty(t, c.sid)
			// Without CAS the guarantee holds within one process, where
			// commits of a session are serialized; CAS covers clones.
			var wg sync.WaitGroup
			for i := range 100 {
				wg.Go(func() {
					w := c.send("/inc", c.sid)
					require.Equal(t, http.StatusOK, w.Code)
				})
				wg.Go(func() {
					w := c.send(fmt.Sprintf("/put?k%d=%d", i, i), c.sid)
					require.Equal(t, http.StatusOK, w.Code)
				})
			}
			wg.Wait()
			require.Equal(t, 100, c.do("/n").Body.Len())
			for i := range 100 {
				require.Equal(t, fmt.Sprint(i), c.do(fmt.Sprintf("/get?k%d", i)).Body.String())
			}
		})
	}
}

// TestConcurrentLogout: a logout in the middle of 100 concurrent
// increments is never undone by a slower request.
func TestConcurrentLogout(t *testing.T) {
	store := newSpy(t)
	c := &client{t: t, h: newManager(t, store, session.Config{}).LoadAndSave(app())}
	c.do("/put?start=1")
	sid := c.sid
	var wg sync.WaitGroup
	for i := range 100 {
		if i == 50 {
			wg.Go(func() { require.Equal(t, http.StatusOK, c.send("/logout", sid).Code) })
		}
		wg.Go(func() { require.Equal(t, http.StatusOK, c.send("/inc", sid).Code) })
	}
	wg.Wait()
	_, found, err := store.Memory.Load(t.Context(), sid)
	require.NoError(t, err)
	require.False(t, found, "the logout was undone")
	w := c.do("/n")
	require.Zero(t, w.Body.Len())
}

func TestDestroyThenPut(t *testing.T) {
	h := newManager(t, newSpy(t), session.Config{}).LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/out" {
			require.NoError(t, session.Destroy(r.Context()))
			require.NoError(t, session.Put(r.Context(), "flash", "bye"))
			return
		}
		require.NoError(t, session.Put(r.Context(), "u", "alice"))
	}))
	c := &client{t: t, h: h}
	c.do("/in")
	old := c.sid
	c.do("/out")
	require.NotEmpty(t, c.sid)
	require.NotEqual(t, old, c.sid)
}

func TestTouchThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newSpy(t)
		cfg := session.Config{IdleTimeout: 10 * time.Minute, TouchInterval: time.Minute}
		c := &client{t: t, h: newManager(t, store, cfg).LoadAndSave(app())}
		c.do("/put?a=1")
		require.EqualValues(t, 1, store.writes.Load())
		for range 50 {
			time.Sleep(time.Second)
			require.Equal(t, "1", c.do("/get?a").Body.String())
		}
		require.EqualValues(t, 1, store.writes.Load(), "read-only requests within TouchInterval write nothing")
		time.Sleep(11 * time.Second) // 61 s since the save
		c.do("/get?a")
		require.EqualValues(t, 2, store.writes.Load(), "one touch once TouchInterval passed")
		c.do("/get?a")
		require.EqualValues(t, 2, store.writes.Load())
	})
}

func TestIdleAndAbsoluteExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newSpy(t)
		cfg := session.Config{Lifetime: time.Hour, IdleTimeout: 10 * time.Minute}
		c := &client{t: t, h: newManager(t, store, cfg).LoadAndSave(app())}

		// Idle: gone after IdleTimeout without requests.
		c.do("/put?a=1")
		time.Sleep(9 * time.Minute)
		require.Equal(t, "1", c.do("/get?a").Body.String()) // touches
		time.Sleep(9 * time.Minute)
		require.Equal(t, "1", c.do("/get?a").Body.String())
		time.Sleep(10*time.Minute + time.Second)
		require.Empty(t, c.do("/get?a").Body.String())

		// Absolute: gone at created+Lifetime however active it is.
		c.sid = ""
		c.do("/put?a=2")
		for range 11 {
			time.Sleep(5 * time.Minute)
			require.Equal(t, "2", c.do("/get?a").Body.String())
		}
		time.Sleep(5*time.Minute + time.Second) // 60 min + 1 s since creation
		require.Empty(t, c.do("/get?a").Body.String())
	})
}

// TestRotateGrace: after Rotate, the old ID forwards to the session for
// RotateGrace — reads and writes land in it, and the request is sent the
// new ID — and is unknown after.
func TestRotateGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newSpy(t)
		c := &client{t: t, h: newManager(t, store, session.Config{RotateGrace: 10 * time.Second}).LoadAndSave(app())}
		c.do("/login?alice")
		c.do("/put?a=1")
		old := c.sid
		w := c.do("/rotate")
		require.Equal(t, http.StatusOK, w.Code)
		require.NotEqual(t, old, c.sid)
		rotated := c.sid

		time.Sleep(5 * time.Second)
		oldClient := &client{t: t, h: c.h, sid: old}
		oldClient.do("/put?b=2")
		require.Equal(t, rotated, oldClient.sid, "a request with the old ID within the grace is sent the new ID")
		require.Equal(t, "2", c.do("/get?b").Body.String())
		require.Equal(t, "1", c.do("/get?a").Body.String())
		require.Equal(t, "alice", c.do("/user").Body.String())

		ids, err := store.UserSessions(t.Context(), "alice")
		require.NoError(t, err)
		require.Contains(t, ids, rotated, "the rotated session is listed under its user")

		// After the grace the old ID is dead.
		time.Sleep(6 * time.Second)
		w = c.send("/get?a", old)
		require.Empty(t, w.Body.String())
		require.Equal(t, "1", c.do("/get?a").Body.String())
	})
}

// TestRotateChainWithinGrace: a busy browser's slow request carries an ID
// that other requests have rotated several times since; within the grace
// it still reaches the session (it was sent a fresh one when the session
// had been rotated more than three times).
func TestRotateChainWithinGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &client{t: t, h: newManager(t, newSpy(t), session.Config{RotateGrace: 10 * time.Second}).LoadAndSave(app())}
		c.do("/login?alice")
		c.do("/put?a=1")
		first := c.sid
		ids := []string{first}
		for range 65 {
			c.do("/rotate")
			ids = append(ids, c.sid)
		}
		// The doc's bound: 64 rotations are followed, not more.
		slow := &client{t: t, h: c.h, sid: ids[1]}
		require.Equal(t, "alice", slow.do("/user").Body.String(), "an ID rotated 64 times within the grace")
		require.Equal(t, c.sid, slow.sid, "and the request is sent the current ID")
		tooOld := &client{t: t, h: c.h, sid: first}
		require.Empty(t, tooOld.do("/user").Body.String(), "an ID rotated 65 times is past the bound")
	})
}

func TestDestroyAll(t *testing.T) {
	store := newSpy(t)
	m := newManager(t, store, session.Config{})
	h := m.LoadAndSave(app())
	a, b, other := &client{t: t, h: h}, &client{t: t, h: h}, &client{t: t, h: h}
	a.do("/put?x=a")
	a.do("/login?alice")
	b.do("/login?alice")
	b.do("/put?x=b")
	other.do("/login?bob")
	other.do("/put?x=o")
	require.NoError(t, m.DestroyAll(t.Context(), "alice"))
	require.Empty(t, a.do("/get?x").Body.String())
	require.Empty(t, b.do("/get?x").Body.String())
	require.Equal(t, "o", other.do("/get?x").Body.String())

	m2 := newManager(t, plainStore{store}, session.Config{})
	require.ErrorIs(t, m2.DestroyAll(t.Context(), "alice"), errUnsupported)
}

func TestStoreFailure(t *testing.T) {
	store := newSpy(t)
	h := newManager(t, store, session.Config{}).LoadAndSave(app())
	alice, bob := &client{t: t, h: h}, &client{t: t, h: h}
	alice.do("/put?who=alice")
	bob.do("/put?who=bob")
	aliceID, bobID := alice.sid, bob.sid

	store.down.Store(true)
	for _, path := range []string{"/get?who", "/put?who=mallory", "/inc", "/login?x"} {
		for _, c := range []*client{alice, bob, {t: t, h: h}} {
			w := c.do(path)
			if c.sid == "" && path == "/get?who" {
				require.Equal(t, http.StatusOK, w.Code, "no session, nothing to load")
				continue
			}
			require.Equal(t, http.StatusServiceUnavailable, w.Code, path)
			require.NotContains(t, w.Body.String(), "alice")
			require.NotContains(t, w.Body.String(), "bob")
			require.NotContains(t, w.Body.String(), errDown.Error())
			require.Empty(t, w.Header().Values("Set-Cookie"))
		}
	}
	require.Equal(t, aliceID, alice.sid)
	require.Equal(t, bobID, bob.sid)

	// A commit that fails after a successful load is answered the same way.
	failCommit := newManager(t, store, session.Config{}).LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		session.Put(r.Context(), "who", "mallory")
		store.down.Store(true)
		_, _ = w.Write([]byte("secret page"))
	}))
	store.down.Store(false)
	w := (&client{t: t, h: failCommit, sid: aliceID}).send("/", aliceID)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.NotContains(t, w.Body.String(), "secret")

	store.down.Store(false)
	require.Equal(t, "alice", alice.do("/get?who").Body.String())
	require.Equal(t, "bob", bob.do("/get?who").Body.String())
}

// TestOutsideMiddleware: every call that changes a session fails loudly
// outside one instead of doing nothing.
func TestOutsideMiddleware(t *testing.T) {
	ctx := context.Background()
	require.ErrorIs(t, session.Put(ctx, "a", 1), session.ErrNoSession)
	_, err := session.Update(ctx, "n", func(n int) int { return n + 1 })
	require.ErrorIs(t, err, session.ErrNoSession)
	require.ErrorIs(t, session.Remove(ctx, "a"), session.ErrNoSession)
	require.ErrorIs(t, session.Clear(ctx), session.ErrNoSession)
	require.ErrorIs(t, session.RenewID(ctx), session.ErrNoSession)
	require.ErrorIs(t, session.Rotate(ctx), session.ErrNoSession)
	require.ErrorIs(t, session.Destroy(ctx), session.ErrNoSession)
	require.ErrorIs(t, session.Login(ctx, "u"), session.ErrNoSession)
	require.ErrorIs(t, session.SetLifetime(ctx, session.Lifetime{}), session.ErrNoSession)
	_, ok := session.Get[int](ctx, "a")
	require.False(t, ok)
}

// TestSlowRequestAfterLogout: a request that loaded the session before a
// logout and commits after it does not bring the session back.
func TestSlowRequestAfterLogout(t *testing.T) {
	store := newSpy(t)
	mux := app().(*http.ServeMux)
	slow := slowRoute(mux, "/slow", func(w http.ResponseWriter, r *http.Request) {
		_ = session.Put(r.Context(), "late", "x")
		_, _ = session.Update(r.Context(), "n", func(n int) int { return n + 1 })
	})
	c := &client{t: t, h: newManager(t, store, session.Config{}).LoadAndSave(mux)}
	c.do("/put?a=1")
	sid := c.sid
	slow.start(c, "/slow", sid)
	c.do("/logout")
	require.Empty(t, c.sid)
	require.Equal(t, http.StatusOK, slow.finish().StatusCode)
	_, found, err := store.Memory.Load(t.Context(), sid)
	require.NoError(t, err)
	require.False(t, found)
}

// TestInFlightDuringRotate: a request that loaded the session under the
// old ID and commits after Rotate lands its change in the new session and
// is sent the new ID.
func TestInFlightDuringRotate(t *testing.T) {
	mux := app().(*http.ServeMux)
	slow := slowRoute(mux, "/slow", func(w http.ResponseWriter, r *http.Request) {
		_, _ = session.Update(r.Context(), "n", func(n int) int { return n + 1 })
	})
	c := &client{t: t, h: newManager(t, newSpy(t), session.Config{}).LoadAndSave(mux)}
	c.do("/inc")
	old := c.sid
	slow.start(c, "/slow", old)
	c.do("/inc")
	c.do("/rotate")
	require.NotEqual(t, old, c.sid)
	resp := slow.finish()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, resp.Cookies(), 1)
	require.Equal(t, c.sid, resp.Cookies()[0].Value, "the in-flight request is sent the new ID")
	require.Equal(t, 3, c.do("/n").Body.Len())
}

// TestCommitBeforeHeader: the session is committed, and the cookie sent,
// when the handler flushes; changes after that are not saved.
func TestCommitBeforeHeader(t *testing.T) {
	mux := app().(*http.ServeMux)
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		_ = session.Put(r.Context(), "a", "1")
		w.(http.Flusher).Flush()
		_ = session.Put(r.Context(), "b", "2") // after the header: not saved
		_, _ = w.Write([]byte("body"))
	})
	c := &client{t: t, h: newManager(t, newSpy(t), session.Config{}).LoadAndSave(mux)}
	w := c.do("/stream")
	require.True(t, w.Flushed)
	require.NotEmpty(t, c.sid)
	require.Equal(t, "body", w.Body.String())
	require.Equal(t, "1", c.do("/get?a").Body.String())
	require.Empty(t, c.do("/get?b").Body.String())
}
