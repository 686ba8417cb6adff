package session_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/memcachedstore"
	"github.com/scaleout/scaleout/session/redisstore"
)

// realStores are the shared stores the Manager is run against end to
// end. Each store's keys live under the test's testenv.Prefix, which the
// testenv client's cleanup deletes.
var realStores = []struct {
	name string
	new  func(t *testing.T) session.SessionStore
}{
	{"redis", func(t *testing.T) session.SessionStore {
		return newRedisStore(t, testenv.RedisClient(t))
	}},
	{"redis-cluster", func(t *testing.T) session.SessionStore {
		return newRedisStore(t, testenv.RedisClusterClient(t))
	}},
	{"memcached", func(t *testing.T) session.SessionStore {
		s, err := memcachedstore.New(testenv.MemcachedClient(t), memcachedstore.Config{Prefix: testenv.Prefix(t)})
		if err != nil {
			t.Fatalf("memcachedstore.New: %v", err)
		}
		return s
	}},
}

func newRedisStore(t *testing.T, c redis.UniversalClient) session.SessionStore {
	t.Helper()
	s, err := redisstore.New(c, redisstore.Config{Prefix: testenv.Prefix(t)})
	if err != nil {
		t.Fatalf("redisstore.New: %v", err)
	}
	return s
}

const storeConcurrency = 100

// clones returns a handler that alternates requests between two Managers
// (two clones) over store, so compare-and-swap in the store — not only
// the Manager's in-process commit lock — arbitrates between commits.
func clones(t *testing.T, store session.SessionStore) http.Handler {
	a := newManager(t, store, session.Config{}).LoadAndSave(app())
	b := newManager(t, store, session.Config{}).LoadAndSave(app())
	var mu sync.Mutex
	var i int
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := a
		if i%2 == 1 {
			h = b
		}
		i++
		mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// fire sends n concurrent requests of path with sid (and, if mid is not
// empty, one request of mid after the first half has been started), waits
// for all of them at most a bounded time, and fails the test for any
// response that is not 200.
func fire(t *testing.T, c *client, sid string, n int, path, mid string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan string, n+1)
	send := func(p string) {
		if w := c.send(p, sid); w.Code != http.StatusOK {
			errs <- fmt.Sprintf("%s answered %d: %q", p, w.Code, w.Body.String())
		}
	}
	for i := range n {
		if mid != "" && i == n/2 {
			wg.Go(func() { send(mid) })
		}
		wg.Go(func() { send(path) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%d concurrent requests of %s did not finish within 30s", n, path)
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestManagerConcurrentUpdatesOnStores: 100 concurrent Update increments
// of one session, through LoadAndSave of two clones, on each real store:
// none is lost.
func TestManagerConcurrentUpdatesOnStores(t *testing.T) {
	for _, st := range realStores {
		t.Run(st.name, func(t *testing.T) {
			store := st.new(t)
			c := &client{t: t, h: clones(t, store)}
			c.do("/put?start=1")
			if c.sid == "" {
				t.Fatal("the first request set no session cookie")
			}
			sid := c.sid
			fire(t, c, sid, storeConcurrency, "/inc", "")
			if t.Failed() {
				t.FailNow()
			}
			if got := c.do("/n").Body.Len(); got != storeConcurrency {
				t.Fatalf("after %d concurrent increments n = %d, want %d (updates lost or duplicated)", storeConcurrency, got, storeConcurrency)
			}
			if c.sid != sid {
				t.Fatalf("session ID changed from %q to %q without RenewID", sid, c.sid)
			}
		})
	}
}

// TestManagerConcurrentLogoutOnStores: a Destroy among 100 concurrent
// increments (served by two clones), on each real store, is final: the old ID is gone from the
// store, presenting it yields a fresh empty session, and no slower commit
// brings it back.
func TestManagerConcurrentLogoutOnStores(t *testing.T) {
	for _, st := range realStores {
		t.Run(st.name, func(t *testing.T) {
			store := st.new(t)
			c := &client{t: t, h: clones(t, store)}
			c.do("/put?start=1")
			sid := c.sid
			if sid == "" {
				t.Fatal("the first request set no session cookie")
			}
			fire(t, c, sid, storeConcurrency, "/inc", "/logout")

			gone := func(when string) {
				t.Helper()
				_, found, err := store.Load(t.Context(), sid)
				if err != nil {
					t.Fatalf("%s: Load(old ID): %v", when, err)
				}
				if found {
					t.Fatalf("%s: the destroyed session is in the store again: the logout was undone", when)
				}
			}
			gone("right after the requests")

			// A read with the old cookie: a fresh, empty session; nothing
			// saved, and the stale cookie deleted.
			w := c.send("/n", sid)
			if w.Code != http.StatusOK {
				t.Fatalf("read with the old cookie answered %d", w.Code)
			}
			if n := w.Body.Len(); n != 0 {
				t.Fatalf("read with the old cookie saw n = %d, want a fresh empty session", n)
			}
			if v := c.send("/get?start", sid).Body.String(); v != "" {
				t.Fatalf("read with the old cookie saw start = %q, want a fresh empty session", v)
			}

			// A write with the old cookie starts a new session under a new
			// ID; the old ID stays dead.
			w = c.send("/inc", sid)
			if w.Code != http.StatusOK {
				t.Fatalf("increment with the old cookie answered %d", w.Code)
			}
			var newID string
			for _, ck := range w.Result().Cookies() {
				if ck.Name == "sid" && ck.MaxAge >= 0 {
					newID = ck.Value
				}
			}
			if newID == "" || newID == sid {
				t.Fatalf("a write with the destroyed ID got cookie %q; want a fresh ID (never the old one)", newID)
			}
			if n := c.send("/n", newID).Body.Len(); n != 1 {
				t.Fatalf("the fresh session has n = %d, want 1", n)
			}

			// Nothing still in flight may resurrect it later.
			time.Sleep(100 * time.Millisecond)
			gone("after the old cookie was presented again")
		})
	}
}
