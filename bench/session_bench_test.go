package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/redisstore"
)

// Session benchmarks: one HTTP request per op through each library's
// middleware (httptest.NewRecorder, a session cookie established before
// the timer starts), side by side:
//
//	cd bench && eval "$(../scripts/services.sh env)"
//	go test -run '^$' -bench 'Session' -benchmem -count 3 .
//
// BenchmarkSessionIncrement: the handler reads the int "n" and stores
// n+1. BenchmarkSessionRead: it reads "n" only. BenchmarkSessionWrites:
// one increment per 10 requests, the other 9 read-only. Every benchmark
// reports writes/op, the store writes per request (scs: Commit; ours:
// Save or SaveIf), counted by a wrapper around each store.
//
// Both managers run with IdleTimeout 30m and Lifetime 24h; with an idle
// timeout scs commits (one Redis write) on every request, ours only when
// values changed or the idle deadline would move by TouchInterval (default
// IdleTimeout/10). The Redis variants need SCALEOUT_REDIS_ADDR and are
// skipped without it; each uses its own key prefix and deletes its keys
// afterwards.
const (
	sessIdle     = 30 * time.Minute
	sessLifetime = 24 * time.Hour
)

// A sessionLib is one middleware over one store, with the handler
// primitives for reading and incrementing "n".
type sessionLib struct {
	mw     func(http.Handler) http.Handler
	get    func(ctx context.Context) int
	put    func(ctx context.Context, n int)
	writes func() int64 // store writes so far
}

type sessionImpl struct {
	name  string
	redis bool
	build func(b *testing.B, c *redis.Client, prefix string) sessionLib
}

var sessionImpls = []sessionImpl{
	{"scs-redis", true, buildSCS},
	{"ours-redis", true, buildOurs},
	{"scs-mem", false, buildSCS},
	{"ours-mem", false, buildOurs},
	{"floor", false, buildFloor},
}

// buildFloor is no session library at all: "n" is a variable of the
// benchmark. It shows what the request harness (httptest request, cookie,
// recorder) costs by itself.
func buildFloor(*testing.B, *redis.Client, string) sessionLib {
	var n int
	return sessionLib{
		mw:     func(h http.Handler) http.Handler { return h },
		get:    func(context.Context) int { return n },
		put:    func(_ context.Context, v int) { n = v },
		writes: func() int64 { return 0 },
	}
}

// BenchmarkSessionIncrement: read "n", store n+1, on every request.
func BenchmarkSessionIncrement(b *testing.B) { benchSessions(b, 1) }

// BenchmarkSessionRead: read "n" only.
func BenchmarkSessionRead(b *testing.B) { benchSessions(b, 0) }

// BenchmarkSessionWrites: one increment per 10 requests.
func BenchmarkSessionWrites(b *testing.B) { benchSessions(b, 10) }

// benchSessions runs every implementation; every is 0 for read-only
// requests, otherwise every every-th request increments.
func benchSessions(b *testing.B, every int) {
	for _, impl := range sessionImpls {
		b.Run(impl.name, func(b *testing.B) {
			var c *redis.Client
			var prefix string
			if impl.redis {
				c, prefix = benchRedis(b)
			}
			lib := impl.build(b, c, prefix)
			benchSession(b, lib, every)
		})
	}
}

func benchSession(b *testing.B, lib sessionLib, every int) {
	incr := lib.mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lib.put(r.Context(), lib.get(r.Context())+1)
	}))
	var sink int
	read := lib.mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sink += lib.get(r.Context())
	}))

	// Establish the session: n = 0, and the cookie that names it.
	w := httptest.NewRecorder()
	lib.mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lib.put(r.Context(), 0)
	})).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://example.com/", nil))
	if w.Code != http.StatusOK {
		b.Fatalf("establishing the session: status %d: %s", w.Code, w.Body)
	}
	cookie := &http.Cookie{Name: "none", Value: "x"} // for the floor
	if cookies := w.Result().Cookies(); len(cookies) == 1 {
		cookie = cookies[0]
	} else if lib.writes() > 0 {
		b.Fatalf("establishing the session: %d cookies, want 1", len(cookies))
	}

	want := 0
	w0 := lib.writes()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := read
		if every > 0 && i%every == 0 {
			h = incr
			want++
		}
		r := httptest.NewRequest(http.MethodGet, "https://example.com/", nil)
		r.AddCookie(cookie)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("request %d: status %d: %s", i, w.Code, w.Body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(lib.writes()-w0)/float64(b.N), "writes/op")

	// Check that the increments were kept and the session is still the same.
	var got int
	r := httptest.NewRequest(http.MethodGet, "https://example.com/", nil)
	r.AddCookie(cookie)
	w = httptest.NewRecorder()
	lib.mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = lib.get(r.Context())
	})).ServeHTTP(w, r)
	if got != want {
		b.Fatalf("n = %d after the run, want %d", got, want)
	}
	_ = sink
}

// benchRedis connects to $SCALEOUT_REDIS_ADDR (skipping without it) and
// returns a key prefix of the benchmark's own, whose keys are deleted at
// the end.
func benchRedis(b *testing.B) (*redis.Client, string) {
	addr := os.Getenv("SCALEOUT_REDIS_ADDR")
	if addr == "" {
		b.Skip(`SCALEOUT_REDIS_ADDR unset: run eval "$(../scripts/services.sh env)" first`)
	}
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		b.Fatalf("redis at %s: %v", addr, err)
	}
	var buf [8]byte
	_, _ = rand.Read(buf[:])
	prefix := "scaleoutbench:" + hex.EncodeToString(buf[:]) + ":"
	b.Cleanup(func() {
		defer c.Close()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			b.Errorf("cleaning up %s*: %v", prefix, err)
			return
		}
		if len(keys) > 0 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				b.Errorf("cleaning up %s*: %v", prefix, err)
			}
		}
	})
	return c, prefix
}

// buildSCS: scs v2 with goredisstore (c != nil) or memstore.
func buildSCS(b *testing.B, c *redis.Client, prefix string) sessionLib {
	cs := &countingSCS{}
	if c != nil {
		st := goredisstore.NewWithPrefix(c, prefix)
		cs.Store, cs.ctx = st, st
	} else {
		st := memstore.NewWithCleanupInterval(time.Hour)
		b.Cleanup(st.StopCleanup)
		cs.Store = st
	}
	sm := scs.New()
	sm.Store = cs
	sm.IdleTimeout = sessIdle
	sm.Lifetime = sessLifetime
	return sessionLib{
		mw:     sm.LoadAndSave,
		get:    func(ctx context.Context) int { return sm.GetInt(ctx, "n") },
		put:    func(ctx context.Context, n int) { sm.Put(ctx, "n", n) },
		writes: cs.writes.Load,
	}
}

// buildOurs: session.Manager over redisstore (c != nil) or Memory.
func buildOurs(b *testing.B, c *redis.Client, prefix string) sessionLib {
	var inner session.CASStore
	if c != nil {
		st, err := redisstore.New(c, redisstore.Config{Prefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		inner = st
	} else {
		st, err := session.NewMemory(session.MemoryConfig{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		inner = st
	}
	cs := &countingOurs{CASStore: inner}
	m, err := session.NewManager(cs, session.Config{IdleTimeout: sessIdle, Lifetime: sessLifetime})
	if err != nil {
		b.Fatal(err)
	}
	return sessionLib{
		mw: m.LoadAndSave,
		get: func(ctx context.Context) int {
			n, _ := session.Get[int](ctx, "n")
			return n
		},
		put:    func(ctx context.Context, n int) { session.Put(ctx, "n", n) },
		writes: cs.writes.Load,
	}
}

// countingSCS counts the Commits of an scs store; it forwards the
// context-taking methods when the store has them, as scs would call them.
type countingSCS struct {
	scs.Store
	ctx    scs.CtxStore // nil for a store without them
	writes atomic.Int64
}

func (s *countingSCS) Commit(token string, b []byte, expiry time.Time) error {
	s.writes.Add(1)
	return s.Store.Commit(token, b, expiry)
}

func (s *countingSCS) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	if s.ctx == nil {
		return s.Store.Find(token)
	}
	return s.ctx.FindCtx(ctx, token)
}

func (s *countingSCS) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	s.writes.Add(1)
	if s.ctx == nil {
		return s.Store.Commit(token, b, expiry)
	}
	return s.ctx.CommitCtx(ctx, token, b, expiry)
}

func (s *countingSCS) DeleteCtx(ctx context.Context, token string) error {
	if s.ctx == nil {
		return s.Store.Delete(token)
	}
	return s.ctx.DeleteCtx(ctx, token)
}

// countingOurs counts Save and SaveIf calls; it keeps CASStore so the
// Manager still uses compare-and-swap.
type countingOurs struct {
	session.CASStore
	writes atomic.Int64
}

func (s *countingOurs) Save(ctx context.Context, id string, data []byte, expiry time.Time) error {
	s.writes.Add(1)
	return s.CASStore.Save(ctx, id, data, expiry)
}

func (s *countingOurs) SaveIf(ctx context.Context, id string, data []byte, expiry time.Time, v session.Version) (session.Version, error) {
	s.writes.Add(1)
	return s.CASStore.SaveIf(ctx, id, data, expiry, v)
}
