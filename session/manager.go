package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/scaleout/scaleout/observe"
)

// Config configures a Manager. Zero values mean the documented defaults.
type Config struct {
	// Lifetime is the absolute lifetime of a session, counted from its
	// creation and never extended; default 24h. SetLifetime changes it
	// for one session.
	Lifetime time.Duration
	// IdleTimeout ends a session that saw no request for this long;
	// default 30m, or Lifetime if that is shorter. Must be ≤ Lifetime.
	// A session expires at min(created+Lifetime, last request+IdleTimeout).
	IdleTimeout time.Duration
	// TouchInterval throttles idle refreshes: a request that changed
	// nothing writes to the store only when that would push the stored
	// expiry forward by at least TouchInterval (or a tenth of a session's
	// own shorter idle timeout). Default IdleTimeout/10; must be <
	// IdleTimeout. The cost: a session may end up to TouchInterval earlier
	// than IdleTimeout after its last request.
	TouchInterval time.Duration
	// RotateGrace is how long the old ID of a session renewed by Rotate
	// keeps forwarding to it, and how long the old ID of a session renewed
	// by RenewID or Login is recognised as the session's (its requests'
	// writes are dropped and their cookie left alone, never forwarded).
	// Default 10s; negative: no grace at all.
	RotateGrace time.Duration
	// Codec encodes session values; default BinaryCodec.
	Codec Codec
	// Cookie sets the session cookie; the zero value is secure.
	Cookie CookieConfig
	// Header, when set, carries the session ID in this request and
	// response header instead of a cookie (for API and mobile clients,
	// which a browser's cross-site requests cannot impersonate): the
	// client sends the ID it was given in Header, and a response that
	// issues or changes an ID carries it in Header (an empty value when
	// the session ended). Cookies are then neither read nor written.
	Header string
	// ErrorHandler answers a request whose session could not be loaded
	// or committed. Default: log the error through Logger and answer 503
	// Service Unavailable with a generic body; the error text is never
	// shown to the client.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// Logger receives the store failures the default ErrorHandler
	// answers and records the Manager could not read; default
	// slog.Default(). Nothing logged ever contains a session ID.
	Logger *slog.Logger
	// Meter receives the Manager's metrics (see package observe): loads,
	// commits, conflicts and merge retries, renewals, and store errors by
	// operation; nil means none.
	Meter observe.Meter
	// CommitAttempts bounds the compare-and-swap attempts of one commit
	// under contention; default 10. When they run out the request gets
	// the ErrorHandler response and its changes are not saved.
	CommitAttempts int
	// StoreTimeout bounds the time a request spends loading its session,
	// and again committing it (all attempts) or destroying it: past it,
	// the request gets the ErrorHandler response. Default 3s; negative:
	// only the request's context bounds it. It holds only with a store
	// whose calls honour their context's deadline (redisstore refuses a
	// client that does not; memcachedstore's client Timeout bounds each
	// round trip).
	StoreTimeout time.Duration
}

// maxForwardHops bounds how many Rotate forwards a load follows: enough
// for a busy browser whose slow request carries an ID that its other
// requests rotated many times within RotateGrace (three was not: such a
// request got a fresh session), while a request cannot make the Manager
// walk an unbounded chain.
const maxForwardHops = 64

// A Manager loads and commits sessions for HTTP handlers, and, through
// Load and Commit, for code outside an HTTP request; see the package
// documentation for the semantics. It is safe for concurrent use.
type Manager struct {
	store SessionStore
	cas   CASStore  // nil when the store cannot compare-and-swap
	index UserIndex // nil when the store keeps no user index
	cfg   Config
	log   *slog.Logger
	met   metrics
	// commits serializes the commits of one session within this process
	// (striped by ID), so that concurrent requests of a session on one
	// clone queue instead of failing each other's compare-and-swap;
	// CAS still arbitrates between clones.
	commits [256]sync.Mutex
}

// NewManager returns a Manager keeping sessions in store. The store's
// optional abilities (CASStore, UserIndex) are found by type assertion.
func NewManager(store SessionStore, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidConfig)
	}
	if cfg.Lifetime < 0 || cfg.IdleTimeout < 0 || cfg.TouchInterval < 0 || cfg.CommitAttempts < 0 {
		return nil, fmt.Errorf("%w: negative duration or count", ErrInvalidConfig)
	}
	cfg.Lifetime = cmp.Or(cfg.Lifetime, 24*time.Hour)
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, min(30*time.Minute, cfg.Lifetime))
	if cfg.IdleTimeout > cfg.Lifetime {
		return nil, fmt.Errorf("%w: IdleTimeout %v exceeds Lifetime %v", ErrInvalidConfig, cfg.IdleTimeout, cfg.Lifetime)
	}
	cfg.TouchInterval = cmp.Or(cfg.TouchInterval, cfg.IdleTimeout/10)
	if cfg.TouchInterval >= cfg.IdleTimeout {
		return nil, fmt.Errorf("%w: TouchInterval %v must be shorter than IdleTimeout %v", ErrInvalidConfig, cfg.TouchInterval, cfg.IdleTimeout)
	}
	cfg.RotateGrace = max(0, cmp.Or(cfg.RotateGrace, 10*time.Second))
	cfg.StoreTimeout = cmp.Or(cfg.StoreTimeout, 3*time.Second)
	if cfg.Codec == nil {
		cfg.Codec = BinaryCodec{}
	}
	if cfg.CommitAttempts == 0 {
		cfg.CommitAttempts = 10
	}
	if cfg.Header != "" && !validCookieName(cfg.Header) {
		return nil, fmt.Errorf("%w: header name %q", ErrInvalidConfig, cfg.Header)
	}
	if err := cfg.Cookie.setDefaults(); err != nil {
		return nil, err
	}
	m := &Manager{store: store, cfg: cfg, log: cfg.Logger, met: newMetrics(cfg.Meter)}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.cfg.ErrorHandler == nil {
		m.cfg.ErrorHandler = m.answerFailure
	}
	m.cas, _ = store.(CASStore)
	m.index, _ = store.(UserIndex)
	return m, nil
}

// answerFailure is the default ErrorHandler: it logs the store's error
// (which never holds a session ID) and answers 503.
func (m *Manager) answerFailure(w http.ResponseWriter, r *http.Request, err error) {
	m.log.LogAttrs(r.Context(), slog.LevelError, "session: store failed; answering 503",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
}

// bounded returns ctx limited by StoreTimeout.
func (m *Manager) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if m.cfg.StoreTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, m.cfg.StoreTimeout)
}

// LoadAndSave is the middleware: it loads the request's session (or
// starts a fresh one), makes it available to next through the request's
// context, and commits the changes just before the response's header is
// written (or when next returns), sending the cookie (or Config.Header)
// when the ID changed. Changes made after the response has started are
// not saved.
//
// A store failure while loading or committing is answered by
// Config.ErrorHandler; the handler's own response is then discarded.
func (m *Manager) LoadAndSave(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, present := m.readID(r)
		s, err := m.load(r.Context(), id)
		if err != nil {
			m.cfg.ErrorHandler(w, r, err)
			return
		}
		s.hadCookie = present
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, s))
		s.r = r
		sw := &writer{ResponseWriter: w, m: m, r: r, s: s}
		next.ServeHTTP(sw, r)
		sw.commit()
	})
}

// Load is LoadAndSave's first half for code outside an HTTP request (a
// WebSocket handler, a gRPC method, a job): it returns a context carrying
// the session named by token ("" or an unknown token: a fresh session),
// for Get, Put, Login and the rest. Commit saves what changed.
func (m *Manager) Load(ctx context.Context, token string) (context.Context, error) {
	id := ""
	if validID(token) {
		id = token
	}
	s, err := m.load(ctx, id)
	if err != nil {
		return ctx, err
	}
	s.hadCookie = token != ""
	return context.WithValue(ctx, ctxKey{}, s), nil
}

// Commit saves the changes made through ctx (from Load) since it was
// loaded or last committed, as LoadAndSave does at the end of a request,
// and returns the token the client must use from now on — the same one,
// or a new one after Login, RenewID or Rotate, or "" when the session was
// destroyed or holds nothing — with the session's absolute deadline.
// Commit may be called again after more changes.
func (m *Manager) Commit(ctx context.Context) (token string, deadline time.Time, err error) {
	s := from(ctx)
	if s == nil {
		return "", time.Time{}, ErrNoSession
	}
	if err := m.commit(ctx, s); err != nil {
		return "", time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendCookie = false
	if s.id == "" {
		return "", time.Time{}, nil
	}
	return s.id, s.rec.deadline, nil
}

// load reads id's session, following Rotate's forwards within the grace.
// An unknown, expired, renewed or unreadable ID gives a fresh session that
// will get a new ID (strict mode); only a failure of the store is an
// error.
func (m *Manager) load(ctx context.Context, id string) (*state, error) {
	s := &state{m: m, cookieID: id, values: map[string]any{}}
	if id == "" {
		return s, nil
	}
	ctx, cancel := m.bounded(ctx)
	defer cancel()
	now := time.Now()
	m.met.loads.Inc()
	for hops := 0; id != "" && hops <= maxForwardHops; hops++ {
		data, v, found, err := m.get(ctx, id)
		if err != nil {
			m.met.failed(opLoad, err)
			return nil, err
		}
		if !found {
			break
		}
		rec, err := unmarshalRecord(data, m.cfg.Lifetime)
		if err != nil {
			m.unreadable(ctx, err)
			break
		}
		if rec.renewed {
			if now.Before(rec.at.Add(m.cfg.RotateGrace)) {
				if rec.forward {
					id = rec.next
					s.forwarded = true
					continue
				}
				s.superseded = true
			}
			break
		}
		if !m.live(rec, now) {
			break
		}
		values, err := m.cfg.Codec.Decode(rec.values)
		if err != nil {
			m.unreadable(ctx, err)
			break
		}
		s.id, s.existed, s.version, s.rec, s.values = id, true, v, rec, values
		s.sendCookie = id != s.cookieID
		return s, nil
	}
	s.forwarded = false
	return s, nil
}

// unreadable logs a record the Manager cannot read; the request goes on
// with a fresh session.
func (m *Manager) unreadable(ctx context.Context, err error) {
	m.log.LogAttrs(ctx, slog.LevelWarn, "session: unreadable session record; starting a fresh session", slog.Any("err", err))
}

func (m *Manager) live(rec record, now time.Time) bool {
	return now.Before(rec.expiry) && now.Before(rec.deadline)
}

// idle is rec's idle timeout.
func (m *Manager) idle(rec record) time.Duration { return cmp.Or(rec.idle, m.cfg.IdleTimeout) }

// expiry is when rec expires if touched now.
func (m *Manager) expiry(rec record, now time.Time) time.Time {
	return minTime(rec.deadline, now.Add(m.idle(rec)))
}

// touchInterval is how far rec's expiry must move before a read-only
// request writes it.
func (m *Manager) touchInterval(rec record) time.Duration {
	return min(m.cfg.TouchInterval, m.idle(rec)/10)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// get loads id with its version (0 without CAS).
func (m *Manager) get(ctx context.Context, id string) ([]byte, Version, bool, error) {
	if m.cas != nil {
		data, v, err := m.cas.LoadVersion(ctx, id)
		return data, v, err == nil && v != 0, err
	}
	data, found, err := m.store.Load(ctx, id)
	return data, 0, found, err
}

// save stores data under id over version v (CAS) or unconditionally.
func (m *Manager) save(ctx context.Context, id string, data []byte, expiry time.Time, v Version) (Version, error) {
	if m.cas != nil {
		return m.cas.SaveIf(ctx, id, data, expiry, v)
	}
	return 0, m.store.Save(ctx, id, data, expiry)
}

var stripeSeed = maphash.MakeSeed()

func (m *Manager) commitLock(id string) *sync.Mutex {
	return &m.commits[maphash.String(stripeSeed, id)%uint64(len(m.commits))]
}

// backoff sleeps before retry attempt (1, 2, ...): exponential with full
// jitter, at most 100ms, so contending requests spread out.
func backoff(ctx context.Context, attempt int) {
	ceiling := min(100*time.Millisecond, time.Millisecond<<min(attempt-1, 10))
	d := time.Duration(rand.Int64N(int64(ceiling)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// writer commits the session before the first byte of the response
// header goes out.
type writer struct {
	http.ResponseWriter
	m      *Manager
	r      *http.Request
	s      *state
	done   bool // commit attempted
	failed bool // commit failed; the error response was sent
}

var errCommitFailed = errors.New("session: commit failed; response replaced by the error handler")

// commit runs once and reports whether the handler's response may go out.
func (w *writer) commit() bool {
	if w.done {
		return !w.failed
	}
	w.done = true
	h := w.ResponseWriter.Header()
	if err := w.m.commit(w.r.Context(), w.s); err != nil {
		w.failed = true
		clear(h)
		w.m.cfg.ErrorHandler(w.ResponseWriter, w.r, err)
		return false
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.m.sendID(h, w.s)
	return true
}

func (w *writer) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: the header is still to come
		return
	}
	if w.commit() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *writer) Write(b []byte) (int, error) {
	if !w.commit() {
		return 0, errCommitFailed
	}
	return w.ResponseWriter.Write(b)
}

// Flush commits, then flushes when the underlying writer can.
func (w *writer) Flush() {
	if w.commit() {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
