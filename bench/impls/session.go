package impls

// Session benchmarks: one HTTP request per op through each library's
// middleware (httptest.NewRecorder, a session cookie established before
// the timer starts): scaleout's session.Manager over session/redisstore
// or session.Memory, and alexedwards/scs v2 over goredisstore or
// memstore, on the same Redis. Shared by session_bench_test.go and
// cmd/compare.
//
// Workloads: Increment reads the int "n" and stores n+1 on every
// request; Read reads "n" only; Writes increments on one request in 10.
// Every library reports writes/op, the store writes per request (scs:
// Commit; ours: Save or SaveIf), counted by a wrapper around each store.
//
// scs runs in two configurations: "scs-redis" with IdleTimeout 30m and
// Lifetime 24h like ours (an idle timeout makes scs commit, one Redis
// write, on every request; ours writes only when values changed or the
// idle deadline would move by TouchInterval), and "scs-redis-default" at
// its defaults (no idle timeout: it writes only when values changed).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

// Session libraries, by name.
const (
	SessionOursRedis       = "ours-redis"
	SessionSCSRedis        = "scs-redis"
	SessionSCSRedisDefault = "scs-redis-default"
	SessionOursMem         = "ours-mem"
	SessionSCSMem          = "scs-mem"
	SessionFloor           = "floor"
)

// SessionLibs lists every library, Redis ones first.
var SessionLibs = []string{SessionOursRedis, SessionSCSRedis, SessionSCSRedisDefault, SessionOursMem, SessionSCSMem, SessionFloor}

// SessionRedis reports whether lib needs Redis.
func SessionRedis(lib string) bool {
	return lib == SessionOursRedis || lib == SessionSCSRedis || lib == SessionSCSRedisDefault
}

// Session workloads: a request increments "n" when its number is a
// multiple of Every (never when Every is 0).
type SessionWorkload struct {
	Name  string
	Every int
}

var (
	SessionIncrement = SessionWorkload{"increment", 1}
	SessionRead      = SessionWorkload{"read", 0}
	SessionWrites    = SessionWorkload{"writes 1 in 10", 10}
)

// SessionWorkloads are the workloads, in report order.
var SessionWorkloads = []SessionWorkload{SessionIncrement, SessionRead, SessionWrites}

const (
	sessIdle     = 30 * time.Minute
	sessLifetime = 24 * time.Hour
)

// A SessionLib is one middleware over one store, with handler primitives
// for reading and incrementing "n", and an established session.
type SessionLib struct {
	Name   string
	mw     func(http.Handler) http.Handler
	get    func(ctx context.Context) int
	put    func(ctx context.Context, n int)
	writes func() int64 // store writes so far
	close  func()

	incr, read http.Handler
	cookie     *http.Cookie
	want       int // increments made through the lib
}

// SessionEnv holds the Redis client the Redis libraries share.
type SessionEnv struct {
	rdb    *redis.Client // nil without SCALEOUT_REDIS_ADDR
	prefix string
}

// ErrSessionRedisUnset: SCALEOUT_REDIS_ADDR is not set; the Redis rows
// are not measured.
var ErrSessionRedisUnset = fmt.Errorf("%s unset: run eval \"$(../scripts/services.sh env)\" first", RedisAddrEnv)

// NewSessionEnv connects to $SCALEOUT_REDIS_ADDR; without it, Redis
// libraries fail to build with ErrSessionRedisUnset.
func NewSessionEnv() (*SessionEnv, error) {
	e := &SessionEnv{}
	var buf [8]byte
	_, _ = rand.Read(buf[:])
	e.prefix = "scaleoutbench:session:" + hex.EncodeToString(buf[:]) + ":"
	addr := os.Getenv(RedisAddrEnv)
	if addr == "" {
		return e, nil
	}
	e.rdb = redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	if err := e.rdb.Ping(context.Background()).Err(); err != nil {
		_ = e.rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w", addr, err)
	}
	return e, nil
}

// Close deletes the libraries' keys and closes the client.
func (e *SessionEnv) Close() error {
	if e.rdb == nil {
		return nil
	}
	defer e.rdb.Close()
	ctx := context.Background()
	iter := e.rdb.Scan(ctx, 0, e.prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return e.rdb.Del(ctx, keys...).Err()
	}
	return nil
}

// Build returns the library named name with its session established.
func (e *SessionEnv) Build(name string) (*SessionLib, error) {
	if SessionRedis(name) && e.rdb == nil {
		return nil, ErrSessionRedisUnset
	}
	var lib *SessionLib
	var err error
	prefix := e.prefix + name + ":"
	switch name {
	case SessionOursRedis:
		lib, err = buildOurs(e.rdb, prefix)
	case SessionOursMem:
		lib, err = buildOurs(nil, "")
	case SessionSCSRedis:
		lib = buildSCS(e.rdb, prefix, true)
	case SessionSCSRedisDefault:
		lib = buildSCS(e.rdb, prefix, false)
	case SessionSCSMem:
		lib = buildSCS(nil, "", true)
	case SessionFloor:
		lib = buildFloor()
	default:
		return nil, fmt.Errorf("no session library %q", name)
	}
	if err != nil {
		return nil, err
	}
	lib.Name = name
	if err := lib.establish(); err != nil {
		lib.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return lib, nil
}

// Close releases what the library holds.
func (l *SessionLib) Close() {
	if l.close != nil {
		l.close()
	}
}

// buildFloor is no session library at all: "n" is a variable of the
// benchmark. It shows what the request harness (httptest request, cookie,
// recorder) costs by itself.
func buildFloor() *SessionLib {
	var n int
	return &SessionLib{
		mw:     func(h http.Handler) http.Handler { return h },
		get:    func(context.Context) int { return n },
		put:    func(_ context.Context, v int) { n = v },
		writes: func() int64 { return 0 },
	}
}

// buildSCS: scs v2 with goredisstore (c != nil) or memstore; idle sets
// IdleTimeout and Lifetime as ours has them.
func buildSCS(c *redis.Client, prefix string, idle bool) *SessionLib {
	cs := &countingSCS{}
	lib := &SessionLib{}
	if c != nil {
		st := goredisstore.NewWithPrefix(c, prefix)
		cs.Store, cs.ctx = st, st
	} else {
		st := memstore.NewWithCleanupInterval(time.Hour)
		lib.close = st.StopCleanup
		cs.Store = st
	}
	sm := scs.New()
	sm.Store = cs
	if idle {
		sm.IdleTimeout = sessIdle
		sm.Lifetime = sessLifetime
	}
	lib.mw = sm.LoadAndSave
	lib.get = func(ctx context.Context) int { return sm.GetInt(ctx, "n") }
	lib.put = func(ctx context.Context, n int) { sm.Put(ctx, "n", n) }
	lib.writes = cs.writes.Load
	return lib
}

// buildOurs: session.Manager over redisstore (c != nil) or Memory.
func buildOurs(c *redis.Client, prefix string) (*SessionLib, error) {
	lib := &SessionLib{}
	var inner session.CASStore
	if c != nil {
		st, err := redisstore.New(c, redisstore.Config{Prefix: prefix})
		if err != nil {
			return nil, err
		}
		inner = st
	} else {
		st, err := session.NewMemory(session.MemoryConfig{})
		if err != nil {
			return nil, err
		}
		lib.close = func() { _ = st.Close() }
		inner = st
	}
	cs := &countingOurs{CASStore: inner}
	m, err := session.NewManager(cs, session.Config{IdleTimeout: sessIdle, Lifetime: sessLifetime})
	if err != nil {
		return nil, err
	}
	lib.mw = m.LoadAndSave
	lib.get = func(ctx context.Context) int {
		n, _ := session.Get[int](ctx, "n")
		return n
	}
	lib.put = func(ctx context.Context, n int) { _ = session.Put(ctx, "n", n) }
	lib.writes = cs.writes.Load
	return lib, nil
}

// establish builds the handlers and creates the session: n = 0, and the
// cookie that names it.
func (l *SessionLib) establish() error {
	l.incr = l.mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.put(r.Context(), l.get(r.Context())+1)
	}))
	l.read = l.mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = l.get(r.Context())
	}))
	w := httptest.NewRecorder()
	l.mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.put(r.Context(), 0)
	})).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://example.com/", nil))
	if w.Code != http.StatusOK {
		return fmt.Errorf("establishing the session: status %d: %s", w.Code, w.Body)
	}
	l.cookie = &http.Cookie{Name: "none", Value: "x"} // for the floor
	if cookies := w.Result().Cookies(); len(cookies) == 1 {
		l.cookie = cookies[0]
	} else if l.writes() > 0 {
		return fmt.Errorf("establishing the session: %d cookies, want 1", len(cookies))
	}
	return nil
}

// request serves request number i of workload w; it reports false when
// the response was not 200.
func (l *SessionLib) request(w SessionWorkload, i int) bool {
	h := l.read
	if w.Every > 0 && i%w.Every == 0 {
		h = l.incr
		l.want++
	}
	r := httptest.NewRequest(http.MethodGet, "https://example.com/", nil)
	r.AddCookie(l.cookie)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Code == http.StatusOK
}

// check reads "n" back: every increment must have been kept, in the same
// session.
func (l *SessionLib) check() error {
	var got int
	r := httptest.NewRequest(http.MethodGet, "https://example.com/", nil)
	r.AddCookie(l.cookie)
	l.mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = l.get(r.Context())
	})).ServeHTTP(httptest.NewRecorder(), r)
	if got != l.want && l.Name != SessionFloor {
		return fmt.Errorf("%s: n = %d after the run, want %d", l.Name, got, l.want)
	}
	return nil
}

// Body is the benchmark of workload w on l; it reports writes/op.
func (l *SessionLib) Body(w SessionWorkload) func(*testing.B) {
	return func(b *testing.B) {
		w0 := l.writes()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if !l.request(w, i) {
				b.Fatalf("%s request %d: not 200", l.Name, i)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(l.writes()-w0)/float64(b.N), "writes/op")
		if err := l.check(); err != nil {
			b.Fatal(err)
		}
	}
}

// SessionInterleaved is the benchmark of workload w that serves one request of
// every library per iteration, each timed alone, and reports each one's
// mean as "<name>-ns/op": ratios of libraries measured in the same window
// of a shared machine.
func SessionInterleaved(libs []*SessionLib, w SessionWorkload) func(*testing.B) {
	return func(b *testing.B) {
		spent := make([]time.Duration, len(libs))
		for i := 0; i < b.N; i++ {
			for k, l := range libs {
				start := time.Now()
				ok := l.request(w, i)
				spent[k] += time.Since(start)
				if !ok {
					b.Fatalf("%s request %d: not 200", l.Name, i)
				}
			}
		}
		for k, l := range libs {
			if err := l.check(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(spent[k].Nanoseconds())/float64(b.N), l.Name+"-ns/op")
		}
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
