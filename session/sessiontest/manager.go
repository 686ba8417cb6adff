package sessiontest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/session"
)

// The Manager clauses run session.Manager over the store the way an
// attacker and a busy browser would, through two Managers (two clones of
// a service) so that the store's compare-and-swap, not only a Manager's
// in-process lock, arbitrates:
//
//   - LogoutWinsRaces: a logout raced by writers, RenewID and Rotate on
//     the same session, many trials: no ID any response handed out, nor
//     the original, ever reaches the logged-out session again.
//   - LostReplyAppliedOnce: a commit whose reply is lost after the store
//     applied it — the client sees an error, or re-sends it and gets a
//     conflict, with up to 7 other clones' commits in between; on a plain
//     commit, a renewal and a new session — is applied exactly once and
//     reported done; when 12 other commits land before the Manager can
//     read the session back, the request is reported failed, and still
//     applied once.
//   - LoginSupersedesOldID: after Login, a request presenting the
//     pre-login ID (planted by an attacker) is served as a fresh visitor:
//     it never obtains the authenticated session, its data, the new ID or
//     the pre-login session, and its writes never reach the session.
//   - ConcurrentIncrements: concurrent Update increments through two
//     clones all count.
//
// They need a CASStore (without one the Manager's commits are best
// effort); for a store without CAS they are skipped.
// RunManager runs only the Manager clauses (Run runs them too, as the
// subtest "Manager").
func RunManager(t *testing.T, newStore func(t *testing.T) session.SessionStore) {
	t.Helper()
	if _, ok := newStore(t).(session.CASStore); !ok {
		t.Skip("store does not implement session.CASStore: the Manager's commits are best effort")
	}
	for _, tc := range managerTests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t).(session.CASStore)) })
	}
}

var managerTests = []struct {
	name string
	fn   func(t *testing.T, s session.CASStore)
}{
	{"LogoutWinsRaces", testLogoutWinsRaces},
	{"LostReplyAppliedOnce", testLostReplyAppliedOnce},
	{"LoginSupersedesOldID", testLoginSupersedesOldID},
	{"ConcurrentIncrements", testManagerIncrements},
}

// RaceTrials is how many trials LogoutWinsRaces runs; a test may raise it
// for a longer hunt (the in-memory store's own test runs 500).
var RaceTrials = 100

// farm is two clones over one store, and a browser-like client that keeps
// every session ID a response handed out.
type farm struct {
	t      *testing.T
	clones [2]http.Handler
	mu     sync.Mutex
	issued map[string]bool
}

func newFarm(t *testing.T, store session.SessionStore, cfg session.Config) *farm {
	f := &farm{t: t, issued: map[string]bool{}}
	for i := range f.clones {
		m, err := session.NewManager(store, cfg)
		require.NoError(t, err)
		f.clones[i] = m.LoadAndSave(kitApp())
	}
	return f
}

// kitApp: /start?owner&user (Put owner, Login user), /inc, /renew,
// /rotate, /logout, /peek (answers "owner|user|n"), /put?k=v.
func kitApp() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := session.Put(r.Context(), "owner", q.Get("owner")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if u := q.Get("user"); u != "" {
			if err := session.Login(r.Context(), u); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		}
	})
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		for k, v := range r.URL.Query() {
			if err := session.Put(r.Context(), k, v[0]); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
	})
	mux.HandleFunc("/inc", func(w http.ResponseWriter, r *http.Request) {
		if _, err := session.Update(r.Context(), "n", func(n int) int { return n + 1 }); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		_ = session.RenewID(r.Context())
	})
	mux.HandleFunc("/rotate", func(w http.ResponseWriter, r *http.Request) {
		_ = session.Rotate(r.Context())
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := session.Destroy(r.Context()); err != nil {
			http.Error(w, "logout failed", http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("/peek", func(w http.ResponseWriter, r *http.Request) {
		owner, _ := session.Get[string](r.Context(), "owner")
		n, _ := session.Get[int](r.Context(), "n")
		secret, _ := session.Get[string](r.Context(), "secret")
		fmt.Fprintf(w, "%s|%s|%d|%s", owner, session.User(r.Context()), n, secret)
	})
	return mux
}

// send sends path with session ID sid through clone i%2, records the IDs
// the response sets, and returns the response.
func (f *farm) send(i int, path, sid string) *http.Response {
	r := httptest.NewRequest(http.MethodGet, "https://kit.test"+path, nil)
	if sid != "" {
		r.AddCookie(&http.Cookie{Name: "sid", Value: sid})
	}
	w := httptest.NewRecorder()
	f.clones[i%2].ServeHTTP(w, r)
	resp := w.Result()
	f.mu.Lock()
	for _, c := range resp.Cookies() {
		if c.Name == "sid" && c.Value != "" {
			f.issued[c.Value] = true
		}
	}
	f.mu.Unlock()
	return resp
}

// cookie returns the session ID resp sets, or "".
func cookie(resp *http.Response) string {
	for _, c := range resp.Cookies() {
		if c.Name == "sid" && c.MaxAge >= 0 {
			return c.Value
		}
	}
	return ""
}

// peek reads the session sid names, as a fresh request would.
func (f *farm) peek(sid string) (owner, user string, n int, secret string) {
	resp := f.send(0, "/peek", sid)
	body := readAll(resp)
	parts := strings.SplitN(body, "|", 4)
	if len(parts) != 4 {
		f.t.Fatalf("/peek answered %d %q", resp.StatusCode, body)
	}
	n, _ = strconv.Atoi(parts[2])
	return parts[0], parts[1], n, parts[3]
}

func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func token(t *testing.T) string {
	var b [8]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return hex.EncodeToString(b[:])
}

// testLogoutWinsRaces races one logout against writers and renewals of
// the same session, RaceTrials times, and counts survivors: IDs through
// which the logged-out session (recognised by its owner token) is still
// served. Requests that start after the logout with the old ID get a
// fresh session of their own, without the owner token; those are not
// survivors.
func testLogoutWinsRaces(t *testing.T, s session.CASStore) {
	f := newFarm(t, s, session.Config{})
	survivors := 0
	for trial := range RaceTrials {
		owner := token(t)
		resp := f.send(trial, "/start?owner="+owner+"&user=u"+owner, "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		sid := cookie(resp)
		require.NotEmpty(t, sid)
		paths := []string{"/inc", "/inc", "/renew", "/inc", "/rotate", "/inc", "/logout", "/inc", "/renew", "/inc"}
		var wg sync.WaitGroup
		codes := make(chan string, len(paths))
		for i, p := range paths {
			wg.Go(func() {
				if resp := f.send(trial+i, p, sid); resp.StatusCode != http.StatusOK {
					codes <- fmt.Sprintf("%s answered %d", p, resp.StatusCode)
				}
			})
		}
		wg.Wait()
		close(codes)
		for c := range codes {
			t.Errorf("trial %d: %s", trial, c)
		}
		f.mu.Lock()
		ids := []string{sid}
		for id := range f.issued {
			ids = append(ids, id)
		}
		clear(f.issued)
		f.mu.Unlock()
		for _, id := range ids {
			if got, _, _, _ := f.peek(id); got == owner {
				survivors++
				t.Errorf("trial %d: the logged-out session is still served under an ID a response handed out", trial)
			}
		}
	}
	t.Logf("%d trials of a logout raced by 8 writes and 3 renewals over two clones: %d survivors", RaceTrials, survivors)
}

// errLostReply is what a client sees when the reply to an applied write
// was lost.
var errLostReply = errors.New("sessiontest: connection reset (the reply was lost)")

// lossyStore applies SaveIf calls and then, when armed, runs between()
// (another clone's commits landing meanwhile) and loses the reply (the
// caller gets errLostReply) or re-sends the call as a client's retry does
// (the caller gets the second answer).
type lossyStore struct {
	session.CASStore
	mu      sync.Mutex
	skip    int  // SaveIf calls to let through before the fault
	lose    bool // the armed fault loses the reply
	armed   bool
	between func()
	fired   int
}

func (l *lossyStore) arm(skip int, lose bool, between func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.skip, l.lose, l.armed, l.between, l.fired = skip, lose, true, between, 0
}

func (l *lossyStore) SaveIf(ctx context.Context, id string, data []byte, expiry time.Time, v session.Version) (session.Version, error) {
	l.mu.Lock()
	fault := l.armed && l.skip == 0
	if l.armed {
		if fault {
			l.armed = false
			l.fired++
		} else {
			l.skip--
		}
	}
	lose, between := l.lose, l.between
	l.mu.Unlock()
	ver, err := l.CASStore.SaveIf(ctx, id, data, expiry, v)
	if !fault || err != nil {
		return ver, err
	}
	if between != nil {
		between()
	}
	if lose {
		return 0, errLostReply
	}
	return l.CASStore.SaveIf(ctx, id, data, expiry, v)
}

// lossyIndexStore keeps the store's UserIndex visible to the Manager.
type lossyIndexStore struct {
	*lossyStore
	session.UserIndex
}

func lossy(s session.CASStore) (*lossyStore, session.SessionStore) {
	l := &lossyStore{CASStore: s}
	if ui, ok := s.(session.UserIndex); ok {
		return l, lossyIndexStore{l, ui}
	}
	return l, l
}

func testLostReplyAppliedOnce(t *testing.T, s session.CASStore) {
	l, store := lossy(s)
	f := newFarm(t, store, session.Config{})
	other := newFarm(t, s, session.Config{}) // another clone, without faults

	cases := []struct {
		name     string
		path     string
		skip     int // SaveIf calls of the request before the faulty one
		lose     bool
		foreign  int  // commits of another clone between the write and its re-send
		unknown  bool // the Manager cannot tell: it must answer an error, not apply twice
		renewing bool
	}{
		{name: "reply lost", path: "/inc", lose: true},
		{name: "client retry", path: "/inc"},
		{name: "client retry after another commit", path: "/inc", foreign: 1},
		{name: "client retry after 7 other commits", path: "/inc", foreign: 7},
		{name: "client retry after 40 other commits", path: "/inc", foreign: 40},
		{name: "reply lost, then 3 other commits", path: "/inc", lose: true, foreign: 3},
		{name: "reply lost, then 12 other commits", path: "/inc", lose: true, foreign: 12},
		{name: "reply lost, then 70 other commits", path: "/inc", lose: true, foreign: 70, unknown: true},
		{name: "renewal: new session's reply lost", path: "/renew", lose: true, renewing: true},
		{name: "renewal: old ID's reply lost", path: "/renew", skip: 1, lose: true, renewing: true},
		{name: "renewal: old ID retried", path: "/rotate", skip: 1, renewing: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.send(0, "/start?owner=lost", "")
			sid := cookie(resp)
			require.NotEmpty(t, sid)
			require.Equal(t, http.StatusOK, f.send(0, "/inc", sid).StatusCode)
			var between func()
			if tc.foreign > 0 {
				between = func() {
					for range tc.foreign {
						require.Equal(t, http.StatusOK, other.send(1, "/inc", sid).StatusCode)
					}
				}
			}
			l.arm(tc.skip, tc.lose, between)
			resp = f.send(0, tc.path, sid)
			l.mu.Lock()
			fired := l.fired
			l.armed = false
			l.mu.Unlock()
			require.Equal(t, 1, fired, "the fault was not injected")
			if tc.unknown {
				require.NotEqual(t, http.StatusOK, resp.StatusCode, "a commit whose outcome the Manager cannot know was reported done")
			} else {
				require.Equal(t, http.StatusOK, resp.StatusCode, "a commit applied by the store was reported failed")
			}
			now := sid
			if id := cookie(resp); id != "" {
				now = id
			}
			if tc.renewing && resp.StatusCode == http.StatusOK {
				require.NotEqual(t, sid, now, "the renewal's response carries no new ID")
			}
			want := 1 + tc.foreign
			if tc.path == "/inc" {
				want++
			}
			_, _, n, _ := f.peek(now)
			require.Equal(t, want, n, "increments applied: want each exactly once")
		})
	}
	t.Run("new session, reply lost", func(t *testing.T) {
		l.arm(0, true, nil)
		resp := f.send(0, "/start?owner=fresh", "")
		require.Equal(t, http.StatusOK, resp.StatusCode, "a new session the store saved was reported failed")
		sid := cookie(resp)
		require.NotEmpty(t, sid, "the new session's ID was not sent")
		owner, _, _, _ := f.peek(sid)
		require.Equal(t, "fresh", owner)
	})
}

func testLoginSupersedesOldID(t *testing.T, s session.CASStore) {
	f := newFarm(t, s, session.Config{})
	// The attacker gets an anonymous session and plants its ID in the
	// victim's browser.
	planted := cookie(f.send(0, "/put?owner=attacker", ""))
	require.NotEmpty(t, planted)

	// The victim logs in with it and stores a secret.
	resp := f.send(1, "/start?owner=victim&user=victim", planted)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	victim := cookie(resp)
	require.NotEmpty(t, victim)
	require.NotEqual(t, planted, victim, "Login kept the pre-login ID")
	require.Equal(t, http.StatusOK, f.send(0, "/put?secret=s3cret", victim).StatusCode)

	// The attacker, presenting the planted ID at once (within the grace),
	// through either clone, reads nothing of the victim's and is sent no ID.
	for i := range 2 {
		resp := f.send(i, "/peek", planted)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "||0|", readAll(resp), "the pre-login ID reached a session's data (the pre-login session's owner is attacker)")
		require.Empty(t, cookie(resp), "a request with the pre-login ID was sent an ID")
	}
	// Its writes reach nothing either.
	resp = f.send(0, "/put?secret=forged", planted)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, cookie(resp), "a write with the pre-login ID was sent an ID")
	resp = f.send(1, "/inc", planted)
	require.Empty(t, cookie(resp), "a write with the pre-login ID was sent an ID")
	owner, user, n, secret := f.peek(victim)
	require.Equal(t, "victim", owner)
	require.Equal(t, "victim", user)
	require.Equal(t, 0, n, "the attacker's increment reached the victim's session")
	require.Equal(t, "s3cret", secret, "the attacker's write reached the victim's session")
}

func testManagerIncrements(t *testing.T, s session.CASStore) {
	f := newFarm(t, s, session.Config{})
	sid := cookie(f.send(0, "/start?owner=inc", ""))
	require.NotEmpty(t, sid)
	const n = 60
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if resp := f.send(i, "/inc", sid); resp.StatusCode != http.StatusOK {
				t.Errorf("/inc answered %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	_, _, got, _ := f.peek(sid)
	require.Equal(t, n, got, "increments lost or applied twice")
}
