// Real-time tests, on real servers: every test here runs the Manager over
// Redis, Redis Cluster or Memcached. TestHungAndDeadStore times requests
// against a paused and a killed server (bounded by StoreTimeout plus 1.5 s
// for a loaded machine); TestManagerConcurrentLogoutOnStores waits 100 ms
// for stragglers that might resurrect a session; the others have no
// timing.

package session_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

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

// proxiedStore is a store on a real server reached through a fault proxy.
type proxiedStore struct {
	name  string
	store session.SessionStore
	proxy *testenv.FaultProxy
	write []byte // what the store's conditional write looks like on the wire
}

func proxiedStores(t *testing.T) []proxiedStore {
	var out []proxiedStore
	for _, retries := range []int{0, -1} { // go-redis's default (3) and none
		p := testenv.StartFaultProxy(t, testenv.RedisAddr(t))
		testenv.RedisClient(t) // deletes Prefix(t) at the end
		c := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: retries, ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		name := "redis, default retries"
		if retries < 0 {
			name = "redis, no retries"
		}
		out = append(out, proxiedStore{name, newRedisStore(t, c), p, []byte("evalsha")})
	}
	p := testenv.StartFaultProxy(t, testenv.MemcachedAddr(t))
	testenv.MemcachedClient(t)
	s, err := memcachedstore.New(memcache.New(p.Addr()), memcachedstore.Config{Prefix: testenv.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, proxiedStore{"memcached", s, p, []byte("cas ")})
}

// TestLostReplyOnStores: the reply to a commit's conditional write is
// dropped on the wire after the server applied it — go-redis then re-sends
// it (and gets a conflict) or, without retries, reports the broken
// connection; memcached's client reports it. Each increment lands exactly
// once, and the request succeeds. Before the fix the Manager treated the
// re-sent write's conflict as a foreign write and applied it twice.
func TestLostReplyOnStores(t *testing.T) {
	for _, st := range proxiedStores(t) {
		t.Run(st.name, func(t *testing.T) {
			c := &client{t: t, h: newManager(t, st.store, session.Config{}).LoadAndSave(app())}
			c.do("/inc")
			require.NotEmpty(t, c.sid)
			for i := 2; i <= 6; i++ {
				st.proxy.DropReply(func(req []byte) bool { return bytes.Contains(req, st.write) })
				w := c.do("/inc")
				require.Equal(t, http.StatusOK, w.Code, "an applied commit was answered %d: %s", w.Code, w.Body)
				require.Zero(t, st.proxy.Armed(), "no conditional write went through the proxy")
				require.Equal(t, i, c.do("/n").Body.Len(), "after a lost reply the increment was applied %d times", c.do("/n").Body.Len()-i+1)
			}
			require.EqualValues(t, 5, st.proxy.DroppedReplies())

			// A renewal whose writes lose their replies: the session moves
			// once, and the client gets its new ID.
			before := c.sid
			st.proxy.DropReply(func(req []byte) bool { return bytes.Contains(req, st.write) })
			w := c.do("/rotate")
			require.Equal(t, http.StatusOK, w.Code)
			require.NotEqual(t, before, c.sid)
			require.Equal(t, 6, c.do("/n").Body.Len())
		})
	}
}

// faultyServer is a private server a test can pause (hung) and kill
// (dead), with a store on it.
type faultyServer struct {
	name          string
	store         session.SessionStore
	pause, resume func()
	kill, restart func()
}

func faultyServers(t *testing.T) []faultyServer {
	rs := testenv.StartRedis(t, testenv.RedisOptions{})
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	rstore, err := redisstore.New(rdb, redisstore.Config{})
	require.NoError(t, err)
	ms := testenv.StartMemcached(t)
	mc := memcache.New(ms.Addr())
	mc.Timeout = 300 * time.Millisecond // bounds each round trip: gomemcache takes no context
	mstore, err := memcachedstore.New(mc, memcachedstore.Config{})
	require.NoError(t, err)
	return []faultyServer{
		{"redis", rstore, rs.Pause, rs.Resume, rs.Kill, rs.Restart},
		{"memcached", mstore, ms.Pause, ms.Resume, ms.Kill, ms.Restart},
	}
}

// TestHungAndDeadStore: a server that accepts connections and never
// answers (paused), and one that is gone (killed): a request is answered
// 503 within StoreTimeout (memcached: its client's Timeout per round
// trip), plus room for a loaded machine, and requests work again once the
// server is back.
func TestHungAndDeadStore(t *testing.T) {
	const storeTimeout = 500 * time.Millisecond
	for _, srv := range faultyServers(t) {
		t.Run(srv.name, func(t *testing.T) {
			c := &client{t: t, h: newManager(t, srv.store, session.Config{StoreTimeout: storeTimeout}).LoadAndSave(app())}
			c.do("/put?a=1")
			require.NotEmpty(t, c.sid)
			for _, fault := range []string{"hung", "dead"} {
				if fault == "hung" {
					srv.pause()
				} else {
					srv.kill()
				}
				for _, path := range []string{"/get?a", "/put?a=2"} {
					start := time.Now()
					w := c.send(path, c.sid)
					took := time.Since(start)
					require.Equal(t, http.StatusServiceUnavailable, w.Code, "%s against a %s server", path, fault)
					require.Less(t, took, storeTimeout+1500*time.Millisecond,
						"%s against a %s %s took %v with StoreTimeout %v", path, fault, srv.name, took, storeTimeout)
				}
				if fault == "hung" {
					srv.resume()
				} else {
					srv.restart()
				}
				// Back: the next requests are served (a killed server lost the
				// session, so a fresh one starts).
				require.Eventually(t, func() bool { return c.send("/get?a", c.sid).Code == http.StatusOK },
					10*time.Second, 50*time.Millisecond, "requests fail after the %s server is back", fault)
			}
		})
	}
}
