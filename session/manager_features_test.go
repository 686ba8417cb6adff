package session_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/session"
)

type cart struct {
	Items []string
	Total int
}

// TestValuesNeedNoRegistration: a struct Put in one request is read back
// in the next with Get of its type, never registered anywhere; Get of
// another type reports false, and Get[any] gives the stored form.
func TestValuesNeedNoRegistration(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/add", func(w http.ResponseWriter, r *http.Request) {
		c, _ := session.Get[cart](r.Context(), "cart")
		c.Items = append(c.Items, r.URL.Query().Get("item"))
		c.Total++
		require.NoError(t, session.Put(r.Context(), "cart", c))
	})
	mux.HandleFunc("/show", func(w http.ResponseWriter, r *http.Request) {
		c, ok := session.Get[cart](r.Context(), "cart")
		require.True(t, ok)
		_, wrong := session.Get[map[string]any](r.Context(), "cart")
		require.False(t, wrong, "a cart was handed out as another type")
		raw, _ := session.Get[any](r.Context(), "cart")
		enc, isEnc := raw.(session.Encoded)
		require.True(t, isEnc, "Get[any] gave %T", raw)
		require.Contains(t, enc.Type, "session_test.cart")
		_, _ = w.Write([]byte(strings.Join(c.Items, ",")))
	})
	c := &client{t: t, h: newManager(t, newSpy(t), session.Config{}).LoadAndSave(mux)}
	c.do("/add?item=tea")
	c.do("/add?item=milk")
	require.Equal(t, "tea,milk", c.do("/show").Body.String())
}

// TestPutRefusesUnencodable: a value the codec cannot store fails at Put,
// naming the key, and nothing of it is committed.
func TestPutRefusesUnencodable(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/bad", func(w http.ResponseWriter, r *http.Request) {
		err := session.Put(r.Context(), "ch", make(chan int))
		require.Error(t, err)
		require.Contains(t, err.Error(), `"ch"`)
		_, err = session.Update(r.Context(), "fn", func(f func()) func() { return func() {} })
		require.Error(t, err)
		require.NoError(t, session.Put(r.Context(), "ok", "yes"))
	})
	store := newSpy(t)
	c := &client{t: t, h: newManager(t, store, session.Config{}).LoadAndSave(mux)}
	w := c.do("/bad")
	require.Equal(t, http.StatusOK, w.Code, "the request failed at commit")
	require.NotEmpty(t, c.sid)
}

// loggedClient is a client of a Manager that logs into the returned buffer.
func loggedClient(t *testing.T) (*spyStore, *client, *bytes.Buffer) {
	var buf bytes.Buffer
	store := newSpy(t)
	m := newManager(t, store, session.Config{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	return store, &client{t: t, h: m.LoadAndSave(app())}, &buf
}

// TestDefaultErrorHandlerLogs: a store failure is answered 503 and logged
// through the configured slog.Logger with the store's error, never the
// session ID.
func TestDefaultErrorHandlerLogs(t *testing.T) {
	store, c, buf := loggedClient(t)
	c.do("/put?a=1")
	sid := c.sid
	store.down.Store(true)
	w := c.do("/get?a")
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.NotContains(t, w.Body.String(), errDown.Error())
	log := buf.String()
	require.Contains(t, log, errDown.Error(), "the store's error was not logged")
	require.Contains(t, log, "level=ERROR")
	require.NotContains(t, log, sid, "the log holds the session ID")
}

// TestUnreadableRecordLogged: a record the Manager cannot read starts a
// fresh session and is logged as a warning, without the ID.
func TestUnreadableRecordLogged(t *testing.T) {
	store, c, buf := loggedClient(t)
	c.do("/put?a=1")
	sid := c.sid
	require.NoError(t, store.Memory.Save(t.Context(), sid, []byte("S\x00garbage"), time.Now().Add(time.Hour)))
	require.Empty(t, c.do("/get?a").Body.String())
	require.Contains(t, buf.String(), "level=WARN")
	require.NotContains(t, buf.String(), sid)
}

// blockingStore answers nothing until the caller's context ends.
type blockingStore struct{ *spyStore }

func (b blockingStore) LoadVersion(ctx context.Context, id string) ([]byte, session.Version, error) {
	<-ctx.Done()
	return nil, 0, ctx.Err()
}

// TestStoreTimeout: a store that hangs holds a request for StoreTimeout,
// then the request gets the error response.
func TestStoreTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := blockingStore{newSpy(t)}
		m := newManager(t, store, session.Config{StoreTimeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)})
		c := &client{t: t, h: m.LoadAndSave(app()), sid: strings.Repeat("A", 43)}
		start := time.Now()
		w := c.do("/get?a")
		require.Equal(t, http.StatusServiceUnavailable, w.Code)
		require.Equal(t, 2*time.Second, time.Since(start))
	})
}

func TestHostPrefixCookie(t *testing.T) {
	store := newSpy(t)
	c := &client{t: t, h: newManager(t, store, session.Config{Cookie: session.CookieConfig{HostPrefix: true}}).LoadAndSave(app())}
	w := c.do("/put?a=1")
	cookies := w.Result().Cookies()
	require.Len(t, cookies, 1)
	require.Equal(t, "__Host-sid", cookies[0].Name)
	require.True(t, cookies[0].Secure)
	require.Equal(t, "/", cookies[0].Path)
	require.Empty(t, cookies[0].Domain)

	for name, cfg := range map[string]session.CookieConfig{
		"host prefix, insecure":      {HostPrefix: true, Insecure: true},
		"host prefix with a domain":  {HostPrefix: true, Domain: "example.com"},
		"host prefix on a sub-path":  {HostPrefix: true, Path: "/app"},
		"__Host- name with a domain": {Name: "__Host-s", Domain: "example.com"},
		"__Secure- name, insecure":   {Name: "__Secure-s", Insecure: true},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := session.NewManager(store, session.Config{Cookie: cfg})
			require.ErrorIs(t, err, session.ErrInvalidConfig)
		})
	}
}

// TestHeaderTransport: with Config.Header the ID travels in a header, for
// clients without cookies; no cookie is read or written.
func TestHeaderTransport(t *testing.T) {
	h := newManager(t, newSpy(t), session.Config{Header: "X-Session"}).LoadAndSave(app())
	send := func(path, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "https://api.test"+path, nil)
		if token != "" {
			r.Header.Set("X-Session", token)
		}
		r.AddCookie(&http.Cookie{Name: "sid", Value: strings.Repeat("A", 43)}) // ignored
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Empty(t, w.Result().Cookies(), "a cookie was set in header mode")
		return w
	}
	w := send("/put?a=1", "")
	token := w.Header().Get("X-Session")
	require.Len(t, token, 43)
	require.Contains(t, w.Header().Get("Cache-Control"), "no-store")
	require.Equal(t, "1", send("/get?a", token).Body.String())
	require.Empty(t, send("/get?a", token).Header().Values("X-Session"), "an unchanged session re-sent its token")

	w = send("/login?alice", token)
	renewed := w.Header().Get("X-Session")
	require.Len(t, renewed, 43)
	require.NotEqual(t, token, renewed)
	require.Equal(t, "alice", send("/user", renewed).Body.String())

	w = send("/logout", renewed)
	require.Equal(t, []string{""}, w.Header().Values("X-Session"), "a logout does not tell the client to drop its token")
	require.Empty(t, send("/user", renewed).Body.String())
}

// TestLoadCommit: sessions outside an HTTP request, by token.
func TestLoadCommit(t *testing.T) {
	m := newManager(t, newSpy(t), session.Config{})
	bg := context.Background()

	ctx, err := m.Load(bg, "")
	require.NoError(t, err)
	token, _, err := m.Commit(ctx)
	require.NoError(t, err)
	require.Empty(t, token, "an untouched new session was stored")

	require.NoError(t, session.Put(ctx, "room", "lobby"))
	token, deadline, err := m.Commit(ctx)
	require.NoError(t, err)
	require.Len(t, token, 43)
	require.WithinDuration(t, time.Now().Add(24*time.Hour), deadline, time.Minute)

	// Commit again on the same context (a long-lived WebSocket).
	_, err = session.Update(ctx, "msgs", func(n int) int { return n + 1 })
	require.NoError(t, err)
	again, _, err := m.Commit(ctx)
	require.NoError(t, err)
	require.Equal(t, token, again)

	ctx2, err := m.Load(bg, token)
	require.NoError(t, err)
	room, _ := session.Get[string](ctx2, "room")
	n, _ := session.Get[int](ctx2, "msgs")
	require.Equal(t, "lobby", room)
	require.Equal(t, 1, n)

	require.NoError(t, session.Login(ctx2, "alice"))
	renewed, _, err := m.Commit(ctx2)
	require.NoError(t, err)
	require.NotEqual(t, token, renewed)

	require.NoError(t, session.Destroy(ctx2))
	gone, _, err := m.Commit(ctx2)
	require.NoError(t, err)
	require.Empty(t, gone)
	ctx3, err := m.Load(bg, renewed)
	require.NoError(t, err)
	require.Empty(t, session.User(ctx3))

	_, _, err = m.Commit(bg)
	require.ErrorIs(t, err, session.ErrNoSession)
	ctx4, err := m.Load(bg, "not a token")
	require.NoError(t, err, "a malformed token is a fresh session, never a store lookup")
	require.Empty(t, session.Keys(ctx4))
}

// TestSetLifetime: a "remember me" session outlives the default idle
// timeout and carries a persistent cookie; others keep the defaults.
func TestSetLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mux := app().(*http.ServeMux)
		mux.HandleFunc("/remember", func(w http.ResponseWriter, r *http.Request) {
			require.NoError(t, session.SetLifetime(r.Context(), session.Lifetime{Absolute: 30 * 24 * time.Hour, Idle: 7 * 24 * time.Hour, Persist: true}))
		})
		h := newManager(t, newSpy(t), session.Config{IdleTimeout: 30 * time.Minute}).LoadAndSave(mux)
		remembered, plain := &client{t: t, h: h}, &client{t: t, h: h}
		remembered.do("/put?a=1")
		w := remembered.do("/remember")
		cookies := w.Result().Cookies()
		require.Len(t, cookies, 1, "a changed lifetime resends the cookie with Expires")
		require.WithinDuration(t, time.Now().Add(30*24*time.Hour), cookies[0].Expires, time.Second)
		plain.do("/put?a=1")

		time.Sleep(2 * time.Hour)
		require.Equal(t, "1", remembered.do("/get?a").Body.String(), "the remembered session ended at the default idle timeout")
		require.Empty(t, plain.do("/get?a").Body.String(), "the default session outlived its idle timeout")

		time.Sleep(7*24*time.Hour + time.Minute)
		require.Empty(t, remembered.do("/get?a").Body.String(), "the remembered session outlived its own idle timeout")
	})

	ctx, err := newManager(t, newSpy(t), session.Config{}).Load(context.Background(), "")
	require.NoError(t, err)
	require.ErrorIs(t, session.SetLifetime(ctx, session.Lifetime{Absolute: -1}), session.ErrInvalidConfig)
	require.ErrorIs(t, session.SetLifetime(ctx, session.Lifetime{Absolute: time.Hour, Idle: 2 * time.Hour}), session.ErrInvalidConfig)
}

// TestUserSessions: a user's sessions are listed with device and times,
// under handles that are not the session IDs, the caller's own marked;
// DestroySession ends one of them.
func TestUserSessions(t *testing.T) {
	store := newSpy(t)
	m := newManager(t, store, session.Config{})
	mux := app().(*http.ServeMux)
	var listed []session.SessionInfo
	mux.HandleFunc("/devices", func(w http.ResponseWriter, r *http.Request) {
		var err error
		listed, err = m.UserSessions(r.Context(), session.User(r.Context()))
		require.NoError(t, err)
	})
	h := m.LoadAndSave(mux)
	login := func(agent string) *client {
		c := &client{t: t, h: h}
		r := httptest.NewRequest(http.MethodGet, "https://example.test/login?alice", nil)
		r.Header.Set("User-Agent", agent)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		c.sid, _, _ = setCookie(w)
		require.NotEmpty(t, c.sid)
		return c
	}
	laptop := login("Firefox on Linux")
	phone := login("Safari on iPhone")
	laptop.do("/devices")
	require.Len(t, listed, 2)
	var phoneHandle string
	for _, s := range listed {
		require.NotContains(t, []string{laptop.sid, phone.sid}, s.Handle, "a handle is a session ID")
		require.NotEmpty(t, s.Handle)
		require.False(t, s.Created.IsZero() || s.LastSeen.IsZero() || s.Expires.IsZero())
		if s.Device == "Safari on iPhone" {
			phoneHandle = s.Handle
			require.False(t, s.Current)
		} else {
			require.Equal(t, "Firefox on Linux", s.Device)
			require.True(t, s.Current, "the caller's own session is not marked current")
		}
	}
	require.NotEmpty(t, phoneHandle)

	require.NoError(t, m.DestroySession(t.Context(), "alice", phoneHandle))
	require.Empty(t, phone.do("/user").Body.String(), "the ended session still works")
	require.Equal(t, "alice", laptop.do("/user").Body.String())
	require.True(t, errors.Is(m.DestroySession(t.Context(), "alice", phoneHandle), session.ErrUnknownSession))
	require.ErrorIs(t, m.DestroySession(t.Context(), "mallory", "x"), session.ErrUnknownSession)

	bare := newManager(t, plainStore{store}, session.Config{})
	_, err := bare.UserSessions(t.Context(), "alice")
	require.ErrorIs(t, err, errUnsupported)
}
