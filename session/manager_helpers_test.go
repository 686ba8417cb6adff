package session_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/session"
)

// spyStore wraps a Memory store, counts writes, records the IDs it is
// asked about and fails every call while down is set.
type spyStore struct {
	*session.Memory
	writes atomic.Int64
	down   atomic.Bool
	mu     sync.Mutex
	ids    map[string]bool
}

var errDown = errors.New("test store is down")

func newSpy(t testing.TB) *spyStore {
	m, err := session.NewMemory(session.MemoryConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return &spyStore{Memory: m, ids: map[string]bool{}}
}

func (s *spyStore) seen(id string) error {
	s.mu.Lock()
	s.ids[id] = true
	s.mu.Unlock()
	if s.down.Load() {
		return errDown
	}
	return nil
}

func (s *spyStore) Load(ctx context.Context, id string) ([]byte, bool, error) {
	if err := s.seen(id); err != nil {
		return nil, false, err
	}
	return s.Memory.Load(ctx, id)
}

func (s *spyStore) LoadVersion(ctx context.Context, id string) ([]byte, session.Version, error) {
	if err := s.seen(id); err != nil {
		return nil, 0, err
	}
	return s.Memory.LoadVersion(ctx, id)
}

func (s *spyStore) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	if err := s.seen(id); err != nil {
		return err
	}
	s.writes.Add(1)
	return s.Memory.Save(ctx, id, data, exp)
}

func (s *spyStore) SaveIf(ctx context.Context, id string, data []byte, exp time.Time, v session.Version) (session.Version, error) {
	if err := s.seen(id); err != nil {
		return 0, err
	}
	s.writes.Add(1)
	return s.Memory.SaveIf(ctx, id, data, exp, v)
}

func (s *spyStore) Delete(ctx context.Context, id string) error {
	if err := s.seen(id); err != nil {
		return err
	}
	s.writes.Add(1)
	return s.Memory.Delete(ctx, id)
}

// plainStore hides the optional abilities: a bare SessionStore.
type plainStore struct{ s session.SessionStore }

func (p plainStore) Load(ctx context.Context, id string) ([]byte, bool, error) {
	return p.s.Load(ctx, id)
}
func (p plainStore) Save(ctx context.Context, id string, d []byte, e time.Time) error {
	return p.s.Save(ctx, id, d, e)
}
func (p plainStore) Delete(ctx context.Context, id string) error { return p.s.Delete(ctx, id) }

func newManager(t testing.TB, store session.SessionStore, cfg session.Config) *session.Manager {
	t.Helper()
	m, err := session.NewManager(store, cfg)
	require.NoError(t, err)
	return m
}

// client sends requests with its session cookie and keeps the cookie the
// server sets, like a browser.
type client struct {
	t   testing.TB
	h   http.Handler
	sid string
}

func (c *client) do(path string) *httptest.ResponseRecorder {
	c.t.Helper()
	w := c.send(path, c.sid)
	for _, ck := range w.Result().Cookies() {
		if ck.Name == "sid" {
			if ck.MaxAge < 0 {
				c.sid = ""
			} else {
				c.sid = ck.Value
			}
		}
	}
	return w
}

func (c *client) send(path, sid string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "https://example.test"+path, nil)
	if sid != "" {
		r.AddCookie(&http.Cookie{Name: "sid", Value: sid})
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	return w
}

// app is the handler under test: /put?k=v, /get?k, /n, /inc, /login?u,
// /logout, /renew, /rotate, /user.
func app() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		for k, v := range r.URL.Query() {
			if err := session.Put(r.Context(), k, v[0]); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		v, _ := session.Get[string](r.Context(), r.URL.RawQuery)
		_, _ = w.Write([]byte(v))
	})
	mux.HandleFunc("/n", func(w http.ResponseWriter, r *http.Request) {
		n, _ := session.Get[int](r.Context(), "n")
		_, _ = w.Write([]byte(strings.Repeat("x", n)))
	})
	mux.HandleFunc("/inc", func(w http.ResponseWriter, r *http.Request) {
		if _, err := session.Update(r.Context(), "n", func(n int) int { return n + 1 }); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := session.Login(r.Context(), r.URL.RawQuery); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		if err := session.Destroy(r.Context()); err != nil {
			http.Error(w, "logout failed", 500)
		}
	})
	mux.HandleFunc("/renew", func(w http.ResponseWriter, r *http.Request) {
		_ = session.RenewID(r.Context())
	})
	mux.HandleFunc("/rotate", func(w http.ResponseWriter, r *http.Request) {
		_ = session.Rotate(r.Context())
	})
	mux.HandleFunc("/user", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(session.User(r.Context())))
	})
	return mux
}

var errUnsupported = errors.ErrUnsupported

// A slowRequest is the slow side of a race: a request that loads its
// session, then waits until the test releases it before it acts.
type slowRequest struct {
	loaded, release chan struct{}
	done            chan *http.Response
}

// slowRoute serves path on mux as a slow request that runs act once
// released.
func slowRoute(mux *http.ServeMux, path string, act func(w http.ResponseWriter, r *http.Request)) *slowRequest {
	s := &slowRequest{loaded: make(chan struct{}), release: make(chan struct{}), done: make(chan *http.Response, 1)}
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		close(s.loaded)
		<-s.release
		act(w, r)
	})
	return s
}

// start sends the slow request with sid and returns once it has loaded
// its session.
func (s *slowRequest) start(c *client, path, sid string) {
	go func() { s.done <- c.send(path, sid).Result() }()
	<-s.loaded
}

// finish releases the slow request and returns its response.
func (s *slowRequest) finish() *http.Response {
	close(s.release)
	return <-s.done
}
