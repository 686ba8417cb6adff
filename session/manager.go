package session

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Config configures a Manager. Zero values mean the documented defaults.
type Config struct {
	// Lifetime is the absolute lifetime of a session, counted from its
	// creation and never extended; default 24h.
	Lifetime time.Duration
	// IdleTimeout ends a session that saw no request for this long;
	// default 30m, or Lifetime if that is shorter. Must be ≤ Lifetime.
	// A session expires at min(created+Lifetime, last request+IdleTimeout).
	IdleTimeout time.Duration
	// TouchInterval throttles idle refreshes: a request that changed
	// nothing writes to the store only when that would push the stored
	// expiry forward by at least TouchInterval. Default IdleTimeout/10;
	// must be < IdleTimeout. The cost: a session may end up to
	// TouchInterval earlier than IdleTimeout after its last request.
	TouchInterval time.Duration
	// RenewGrace is how long the old ID keeps resolving to the session
	// after RenewID; default 10s.
	RenewGrace time.Duration
	// Codec encodes session values; default BinaryCodec.
	Codec Codec
	// Cookie sets the session cookie; the zero value is secure.
	Cookie CookieConfig
	// ErrorHandler answers a request whose session could not be loaded
	// or committed. Default: 503 Service Unavailable with a generic body;
	// the error text is never shown to the client.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// CommitAttempts bounds the compare-and-swap attempts of one commit
	// under contention; default 10. When they run out the request gets
	// the ErrorHandler response and its changes are not saved.
	CommitAttempts int
}

// maxForwardHops bounds how many forwarding records (RenewID within
// RenewGrace of another RenewID) a load follows.
const maxForwardHops = 3

// A Manager loads and commits sessions for HTTP handlers; see the package
// documentation for the semantics. It is safe for concurrent use.
type Manager struct {
	store SessionStore
	cas   CASStore  // nil when the store cannot compare-and-swap
	index UserIndex // nil when the store keeps no user index
	cfg   Config
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
	if cfg.Lifetime < 0 || cfg.IdleTimeout < 0 || cfg.TouchInterval < 0 || cfg.RenewGrace < 0 || cfg.CommitAttempts < 0 {
		return nil, fmt.Errorf("%w: negative duration or count", ErrInvalidConfig)
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = 24 * time.Hour
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = min(30*time.Minute, cfg.Lifetime)
	}
	if cfg.IdleTimeout > cfg.Lifetime {
		return nil, fmt.Errorf("%w: IdleTimeout %v exceeds Lifetime %v", ErrInvalidConfig, cfg.IdleTimeout, cfg.Lifetime)
	}
	if cfg.TouchInterval == 0 {
		cfg.TouchInterval = cfg.IdleTimeout / 10
	}
	if cfg.TouchInterval >= cfg.IdleTimeout {
		return nil, fmt.Errorf("%w: TouchInterval %v must be shorter than IdleTimeout %v", ErrInvalidConfig, cfg.TouchInterval, cfg.IdleTimeout)
	}
	if cfg.RenewGrace == 0 {
		cfg.RenewGrace = 10 * time.Second
	}
	if cfg.Codec == nil {
		cfg.Codec = BinaryCodec{}
	}
	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = defaultErrorHandler
	}
	if cfg.CommitAttempts == 0 {
		cfg.CommitAttempts = 10
	}
	if err := cfg.Cookie.setDefaults(); err != nil {
		return nil, err
	}
	m := &Manager{store: store, cfg: cfg}
	m.cas, _ = store.(CASStore)
	m.index, _ = store.(UserIndex)
	return m, nil
}

func defaultErrorHandler(w http.ResponseWriter, _ *http.Request, _ error) {
	http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
}

// DestroyAll deletes every session of user ("log out everywhere"). It
// needs a store with a UserIndex and fails with an error wrapping
// errors.ErrUnsupported otherwise. Sessions are recorded for a user by
// Login.
func (m *Manager) DestroyAll(ctx context.Context, user string) error {
	if m.index == nil {
		return fmt.Errorf("session: store %T keeps no user index: %w", m.store, errors.ErrUnsupported)
	}
	return m.index.DeleteUser(ctx, user)
}

// LoadAndSave is the middleware: it loads the request's session (or
// starts a fresh one), makes it available to next through the request's
// context, and commits the changes just before the response's header is
// written (or when next returns), sending the cookie when the ID changed.
// Changes made after the response has started are not saved.
//
// A store failure while loading or committing is answered by
// Config.ErrorHandler; the handler's own response is then discarded.
func (m *Manager) LoadAndSave(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		s, err := m.load(ctx, readID(r, m.cfg.Cookie.Name))
		if err != nil {
			m.cfg.ErrorHandler(w, r, err)
			return
		}
		s.hadCookie = len(r.CookiesNamed(m.cfg.Cookie.Name)) > 0
		r = r.WithContext(context.WithValue(ctx, ctxKey{}, s))
		sw := &writer{ResponseWriter: w, m: m, r: r, s: s}
		next.ServeHTTP(sw, r)
		sw.commit()
	})
}

// load reads id's session, following forwarding records. An unknown,
// expired or unreadable ID gives a fresh session that will get a new ID
// (strict mode); only a failure of the store is an error.
func (m *Manager) load(ctx context.Context, id string) (*state, error) {
	s := &state{m: m, cookieID: id, values: map[string]any{}}
	for hops := 0; id != "" && hops <= maxForwardHops; hops++ {
		data, v, found, err := m.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if !found {
			break
		}
		rec, err := unmarshalRecord(data)
		if err != nil {
			break
		}
		if rec.forward != "" {
			id = rec.forward
			continue
		}
		if !m.live(rec, time.Now()) {
			break
		}
		values, err := m.cfg.Codec.Decode(rec.values)
		if err != nil {
			break
		}
		s.id, s.existed, s.version, s.rec, s.values = id, true, v, rec, values
		s.sendCookie = id != s.cookieID
		return s, nil
	}
	return s, nil
}

func (m *Manager) live(rec record, now time.Time) bool {
	return now.Before(rec.expiry) && now.Before(rec.created.Add(m.cfg.Lifetime))
}

// expiry is when a session created at created expires if touched now.
func (m *Manager) expiry(created, now time.Time) time.Time {
	return minTime(created.Add(m.cfg.Lifetime), now.Add(m.cfg.IdleTimeout))
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
	switch {
	case w.s.id != "" && w.s.sendCookie:
		w.m.cfg.Cookie.write(h, w.s.id, w.s.rec.created.Add(w.m.cfg.Lifetime))
	case w.s.id == "" && w.s.hadCookie:
		// Logged out, expired or never issued here: drop the cookie.
		w.m.cfg.Cookie.write(h, "", time.Time{})
	}
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
