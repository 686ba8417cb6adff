package session_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/sessiontest"
)

// Tests of the promises an attacker or a busy browser puts to the test:
// login defeats session fixation, a logout is never undone by a request
// racing it, a lost reply never applies a commit twice.

// hookStore runs hook after each SaveIf it passes to the spy store.
type hookStore struct {
	*spyStore
	mu   sync.Mutex
	hook func(id string, data []byte, v session.Version)
}

func (h *hookStore) setHook(f func(id string, data []byte, v session.Version)) {
	h.mu.Lock()
	h.hook = f
	h.mu.Unlock()
}

func (h *hookStore) SaveIf(ctx context.Context, id string, data []byte, exp time.Time, v session.Version) (session.Version, error) {
	ver, err := h.spyStore.SaveIf(ctx, id, data, exp, v)
	h.mu.Lock()
	f := h.hook
	h.mu.Unlock()
	if f != nil {
		f(id, data, v)
	}
	return ver, err
}

// setCookie returns the sid value a response sets ("" for none) and
// whether it deletes the cookie.
func setCookie(w interface{ Result() *http.Response }) (id string, deleted, set bool) {
	for _, c := range w.Result().Cookies() {
		if c.Name == "sid" {
			return c.Value, c.MaxAge < 0, true
		}
	}
	return "", false, false
}

// TestLoginDefeatsFixation: an attacker plants an anonymous session ID in
// a victim's browser; the victim logs in. A request presenting the planted
// ID — at once, within the grace, or later — never obtains the victim's
// user, data or new ID, and its writes never reach the victim's session.
// Before the fix the planted ID forwarded to the new session for 10 s and
// was sent the victim's new ID.
func TestLoginDefeatsFixation(t *testing.T) {
	for _, via := range []string{"/login?victim", "/renew"} {
		t.Run(via, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newManager(t, newSpy(t), session.Config{RotateGrace: 10 * time.Second}).LoadAndSave(app())
				attacker := &client{t: t, h: h}
				attacker.do("/put?cart=attacker")
				planted := attacker.sid
				require.NotEmpty(t, planted)

				victim := &client{t: t, h: h, sid: planted}
				victim.do(via)
				require.NotEqual(t, planted, victim.sid, "the session kept its pre-login ID")
				victim.do("/put?secret=s3cret")

				for _, wait := range []time.Duration{0, 5 * time.Second, 20 * time.Second} {
					time.Sleep(wait)
					w := attacker.send("/get?secret", planted)
					require.Equal(t, http.StatusOK, w.Code)
					require.Empty(t, w.Body.String(), "after %v the pre-login ID read the victim's data", wait)
					require.Empty(t, attacker.send("/user", planted).Body.String(), "after %v the pre-login ID is logged in", wait)
					id, _, _ := setCookie(attacker.send("/get?cart", planted))
					require.NotEqual(t, victim.sid, id, "after %v the pre-login ID was sent the victim's new ID", wait)

					w = attacker.send("/put?secret=forged", planted)
					id, _, _ = setCookie(w)
					require.NotEqual(t, victim.sid, id, "after %v a write with the pre-login ID was sent the victim's new ID", wait)
					require.Equal(t, "s3cret", victim.do("/get?secret").Body.String(), "after %v the pre-login ID wrote into the victim's session", wait)
				}
			})
		})
	}
}

// TestInFlightAcrossLogin: a request that loaded the pre-login session and
// commits after the login neither merges its writes into the logged-in
// session (an attacker adding to a victim's cart) nor touches the cookie
// (it may be another tab of the browser that now holds the new ID).
func TestInFlightAcrossLogin(t *testing.T) {
	mux := app().(*http.ServeMux)
	slow := slowRoute(mux, "/slow", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, session.Put(r.Context(), "cart", "forged"))
	})
	c := &client{t: t, h: newManager(t, newSpy(t), session.Config{}).LoadAndSave(mux)}
	c.do("/put?cart=mine")
	old := c.sid
	slow.start(c, "/slow", old)
	c.do("/login?alice")
	require.NotEqual(t, old, c.sid)
	resp := slow.finish()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, resp.Cookies(), "the in-flight pre-login request set or deleted the cookie")
	require.Equal(t, "mine", c.do("/get?cart").Body.String(), "the in-flight pre-login write reached the logged-in session")
	require.Equal(t, "alice", c.do("/user").Body.String())
}

// TestDoubleLogin: the same browser submits the login form twice at once
// with its anonymous ID; both requests end logged in.
func TestDoubleLogin(t *testing.T) {
	mux := app().(*http.ServeMux)
	slow := slowRoute(mux, "/slowlogin", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, session.Login(r.Context(), "alice"))
	})
	c := &client{t: t, h: newManager(t, newSpy(t), session.Config{}).LoadAndSave(mux)}
	c.do("/put?a=1")
	anon := c.sid
	slow.start(c, "/slowlogin", anon)
	first := c.do("/login?alice")
	require.Equal(t, http.StatusOK, first.Code)
	resp := slow.finish()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, resp.Cookies(), 1, "the second login was sent no session")
	second := resp.Cookies()[0].Value
	require.NotEqual(t, anon, second)
	require.Equal(t, "alice", c.send("/user", second).Body.String())
	require.Equal(t, "alice", c.do("/user").Body.String())
}

// TestLogoutRacingRenewal is the race, made deterministic: the
// logout request loads the session, a sibling request then commits a
// renewal (the session moves to a new ID), and only then does the logout
// call Destroy. Before the fix Destroy deleted only the ID it had loaded
// and the session lived on under the sibling's new ID.
func TestLogoutRacingRenewal(t *testing.T) {
	for _, renewal := range []string{"/renew", "/rotate", "/login?alice"} {
		t.Run(renewal, func(t *testing.T) {
			store := newSpy(t)
			mux := app().(*http.ServeMux)
			slow := slowRoute(mux, "/slowlogout", func(w http.ResponseWriter, r *http.Request) {
				if err := session.Destroy(r.Context()); err != nil {
					http.Error(w, err.Error(), 500)
				}
			})
			c := &client{t: t, h: newManager(t, store, session.Config{}).LoadAndSave(mux)}
			c.do("/login?alice")
			c.do("/put?secret=s3cret")
			sid := c.sid
			slow.start(c, "/slowlogout", sid)
			renewed, _, _ := setCookie(c.send(renewal, sid))
			require.NotEmpty(t, renewed, "the renewal sent no new ID")
			require.Equal(t, http.StatusOK, slow.finish().StatusCode)
			for _, id := range []string{sid, renewed} {
				require.Empty(t, c.send("/get?secret", id).Body.String(), "the logged-out session is served again")
				_, found, err := store.Memory.Load(t.Context(), id)
				require.NoError(t, err)
				require.False(t, found, "the store still holds an ID of the logged-out session")
			}
		})
	}
}

// TestDestroyAllRacingRenewal: log-out-everywhere runs in the middle of a
// renewal — after it saved the session under its new ID and before it
// replaced the old one, or just after it replaced the old one — and no ID
// of the session survives. Before the fix the new ID was listed under the
// user only after the renewal finished, and DestroyAll missed it.
func TestDestroyAllRacingRenewal(t *testing.T) {
	for _, at := range []string{"new ID saved", "old ID replaced"} {
		t.Run(at, func(t *testing.T) { testDestroyAllRacingRenewal(t, at == "old ID replaced") })
	}
}

func testDestroyAllRacingRenewal(t *testing.T, replaced bool) {
	store := &hookStore{spyStore: newSpy(t)}
	m := newManager(t, store, session.Config{})
	c := &client{t: t, h: m.LoadAndSave(app())}
	c.do("/login?alice")
	c.do("/put?secret=s3cret")
	sid := c.sid
	var once sync.Once
	store.setHook(func(id string, data []byte, v session.Version) {
		fire := v == 0 && id != sid // the renewal saved the new ID
		if replaced {
			fire = id == sid && len(data) > 0 && data[0] == 'R' // it replaced the old one
		}
		if fire {
			once.Do(func() { require.NoError(t, m.DestroyAll(t.Context(), "alice")) })
		}
	})
	w := c.send("/renew", sid)
	store.setHook(nil)
	require.Equal(t, http.StatusOK, w.Code)
	renewed, _, _ := setCookie(w)
	for _, id := range []string{sid, renewed} {
		if id == "" {
			continue
		}
		require.Empty(t, c.send("/get?secret", id).Body.String(), "a session outlived log-out-everywhere")
	}
	ids, err := store.UserSessions(t.Context(), "alice")
	require.NoError(t, err)
	require.Empty(t, ids)
}

// TestLogoutWithPreLoginIDInGrace: a logout presented with the pre-login
// ID moments after the login (a tab of the same browser still holding it)
// ends the logged-in session too: the user asked to log out.
func TestLogoutWithPreLoginIDInGrace(t *testing.T) {
	store := newSpy(t)
	c := &client{t: t, h: newManager(t, store, session.Config{}).LoadAndSave(app())}
	c.do("/put?a=1")
	anon := c.sid
	c.do("/login?alice")
	w := c.send("/logout", anon)
	require.Equal(t, http.StatusOK, w.Code)
	_, deleted, _ := setCookie(w)
	require.True(t, deleted, "the logout did not delete the cookie")
	require.Empty(t, c.do("/user").Body.String(), "the logged-in session survived a logout")
}

// TestLogoutRaceTrials runs the kit's randomized logout race many more
// times on the memory store than the real stores run it.
func TestLogoutRaceTrials(t *testing.T) {
	old := sessiontest.RaceTrials
	sessiontest.RaceTrials = 500
	t.Cleanup(func() { sessiontest.RaceTrials = old })
	sessiontest.RunManager(t, func(t *testing.T) session.SessionStore { return newTestMemory(t, session.MemoryConfig{}) })
}
