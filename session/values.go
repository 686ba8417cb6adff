package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

type ctxKey struct{}

type opKind uint8

const (
	opPut opKind = iota
	opRemove
	opClear
	opUpdate
)

// An op is one change a request made; commit replays the request's ops,
// in order, over the session as stored at commit time.
type op struct {
	kind opKind
	key  string
	val  any
	fn   func(any) any
}

func (o op) apply(values map[string]any) {
	switch o.kind {
	case opPut:
		values[o.key] = o.val
	case opRemove:
		delete(values, o.key)
	case opClear:
		clear(values)
	case opUpdate:
		values[o.key] = o.fn(values[o.key])
	}
}

// renewal is what a request asked to happen to its session's ID.
type renewal uint8

const (
	renewNone      renewal = iota
	renewRotate            // Rotate: same privilege, the old ID forwards for RotateGrace
	renewPrivilege         // RenewID or Login: the old ID never reaches the session again
)

// state is one request's view of its session.
type state struct {
	m  *Manager
	r  *http.Request // the request, for Login's device; nil outside LoadAndSave
	mu sync.Mutex

	cookieID  string // well-formed ID the client presented, or ""
	hadCookie bool   // the request carried a session cookie (or header) at all

	id         string // session ID; "" for a session not (or no longer) stored
	existed    bool   // id names a stored session this request loaded or saved
	forwarded  bool   // id was reached from cookieID through Rotate's forward
	superseded bool   // cookieID was renewed by a change of privilege moments ago
	version    Version
	rec        record         // the record as loaded or last saved
	values     map[string]any // the request's view: rec's values plus ops

	ops        []op
	user       *string   // set by Login
	renew      renewal   // the strongest renewal asked for
	lifetime   *Lifetime // set by SetLifetime
	destroyed  bool      // Destroy ran
	sendCookie bool      // the client must be sent id
}

func from(ctx context.Context) *state {
	s, _ := ctx.Value(ctxKey{}).(*state)
	return s
}

// changed reports whether the request asked for anything to be saved.
func (s *state) changed() bool {
	return len(s.ops) > 0 || s.user != nil || s.renew != renewNone || s.lifetime != nil
}

func (s *state) add(o op) {
	o.apply(s.values)
	s.ops = append(s.ops, o)
}

// checkValue asks the Manager's codec whether it can store v.
func (s *state) checkValue(key string, v any) error {
	var err error
	if c, ok := s.m.cfg.Codec.(ValueChecker); ok {
		err = c.CheckValue(v)
	} else {
		_, err = s.m.cfg.Codec.Encode(map[string]any{key: v})
	}
	if err != nil {
		return fmt.Errorf("session: %T under %q cannot be stored: %w", v, key, err)
	}
	return nil
}

// valueAs returns raw as a T: raw itself, or raw decoded from its Encoded
// form when T is the type it was stored as.
func valueAs[T any](raw any) (T, bool) {
	if v, ok := raw.(T); ok {
		return v, true
	}
	if e, ok := raw.(Encoded); ok {
		return decodeAs[T](e)
	}
	var zero T
	return zero, false
}

// Get returns the value stored under key if it has type T. Outside a
// session (a context not from LoadAndSave or Manager.Load) it reports
// false.
func Get[T any](ctx context.Context, key string) (T, bool) {
	s := from(ctx)
	if s == nil {
		var zero T
		return zero, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return valueAs[T](s.values[key])
}

// Put stores v under key; a nil v removes key. Any value BinaryCodec can
// encode works without registration (see BinaryCodec). It fails with
// ErrNoSession outside a session, and with an error naming the type when
// the codec cannot encode v (nothing is stored then).
//
// At commit, Put overwrites whatever a concurrent request stored under key
// (last writer wins per key); to change a value based on its old value,
// use Update.
func Put(ctx context.Context, key string, v any) error {
	s := from(ctx)
	if s == nil {
		return ErrNoSession
	}
	if v == nil {
		return Remove(ctx, key)
	}
	if err := s.checkValue(key, v); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(op{kind: opPut, key: key, val: v})
	return nil
}

// Update sets key to fn(old), where old is the value under key or T's
// zero value when there is none (or it has another type), and returns the
// new value as this request sees it. fn runs now and again at commit, on
// the value as stored then (and on each compare-and-swap retry), so
// concurrent Updates of one key compose: 100 concurrent increments add
// 100. fn must be a pure function of old. It fails with ErrNoSession
// outside a session, and when the codec cannot encode fn's result.
func Update[T any](ctx context.Context, key string, fn func(old T) T) (T, error) {
	var zero T
	s := from(ctx)
	if s == nil {
		return zero, ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, _ := valueAs[T](s.values[key])
	v := fn(old)
	if err := s.checkValue(key, v); err != nil {
		return zero, err
	}
	s.values[key] = v
	s.ops = append(s.ops, op{kind: opUpdate, key: key, fn: func(old any) any {
		t, _ := valueAs[T](old)
		return fn(t)
	}})
	return v, nil
}

// Pop returns the value under key if it has type T and removes it (a
// flash message). Outside a session it reports false.
func Pop[T any](ctx context.Context, key string) (T, bool) {
	s := from(ctx)
	if s == nil {
		var zero T
		return zero, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, present := s.values[key]
	if present {
		s.add(op{kind: opRemove, key: key})
	}
	return valueAs[T](raw)
}

// Remove deletes key. It fails with ErrNoSession outside a session.
func Remove(ctx context.Context, key string) error {
	s := from(ctx)
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(op{kind: opRemove, key: key})
	return nil
}

// Clear deletes every key, including keys concurrent requests add before
// this one commits. The session and its ID stay; see Destroy. It fails
// with ErrNoSession outside a session.
func Clear(ctx context.Context) error {
	s := from(ctx)
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(op{kind: opClear})
	return nil
}

// Keys returns the session's keys as this request sees them, unordered.
func Keys(ctx context.Context) []string {
	s := from(ctx)
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.values))
	for k := range s.values {
		keys = append(keys, k)
	}
	return keys
}

// User returns the user recorded by Login, or "".
func User(ctx context.Context) string {
	s := from(ctx)
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.user != nil {
		return *s.user
	}
	return s.rec.user
}

func (s *state) askRenewal(r renewal) {
	s.renew = max(s.renew, r)
}

// RenewID gives the session a new ID at commit, as a change of privilege:
// call it whenever what the session may do changes (Login calls it). From
// the commit on, the old ID never reaches the session, its data or the
// new ID: a request presenting it is served as a fresh visitor. Requests
// of the old ID still in flight at the commit (another tab of the same
// browser, or an attacker who planted the ID) have their writes dropped,
// not merged into the renewed session, and their responses leave the
// client's cookie alone, so a slow tab does not undo the login in the
// browser. See Rotate for a renewal that changes no privilege.
func RenewID(ctx context.Context) error {
	s := from(ctx)
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.askRenewal(renewPrivilege)
	return nil
}

// Rotate gives the session a new ID at commit without any change of
// privilege (a periodic rotation that limits how long a leaked ID is
// useful). For Config.RotateGrace the old ID forwards to the session: a
// request presenting it — one already in flight in another tab — reads
// and writes the session and is sent the new ID. After the grace the old
// ID is unknown. Never use Rotate on login or logout; use Login or
// RenewID.
func Rotate(ctx context.Context) error {
	s := from(ctx)
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.askRenewal(renewRotate)
	return nil
}

// maxDevice bounds the device description Login records.
const maxDevice = 200

// Login records user as the session's user and renews the ID at commit as
// RenewID does (defeating session fixation). The values the session holds
// are kept: Clear first if anonymous data must not follow the user in.
// When the store has a UserIndex, the session is listed under user, with
// the request's User-Agent as its device, so Manager.UserSessions lists it
// and Manager.DestroyAll ends it.
func Login(ctx context.Context, user string) error {
	s := from(ctx)
	if s == nil {
		return ErrNoSession
	}
	if user == "" {
		return errors.New("session: Login with an empty user")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.askRenewal(renewPrivilege)
	s.user = &user
	return nil
}

// A Lifetime gives one session limits of its own, as "remember me" does.
type Lifetime struct {
	// Absolute is the session's lifetime counted from its creation; 0
	// keeps Config.Lifetime.
	Absolute time.Duration
	// Idle ends the session after this long without a request; 0 keeps
	// Config.IdleTimeout. It must not exceed the absolute lifetime.
	Idle time.Duration
	// Persist sends the cookie with Expires at the session's absolute
	// deadline, so it survives a browser restart (see CookieConfig.Persist
	// for every session).
	Persist bool
}

// SetLifetime gives the session its own lifetime, idle timeout and cookie
// persistence at commit (for example a 30-day "remember me" on the
// sessions of users who ask for it and the default elsewhere). It fails
// with ErrNoSession outside a session and with ErrInvalidConfig for a
// negative duration or an idle timeout longer than the lifetime.
func SetLifetime(ctx context.Context, l Lifetime) error {
	s := from(ctx)
	if s == nil {
		return ErrNoSession
	}
	if l.Absolute < 0 || l.Idle < 0 {
		return fmt.Errorf("%w: negative lifetime", ErrInvalidConfig)
	}
	abs := cmp.Or(l.Absolute, s.m.cfg.Lifetime)
	if idle := cmp.Or(l.Idle, s.m.cfg.IdleTimeout); idle > abs {
		return fmt.Errorf("%w: idle timeout %v exceeds lifetime %v", ErrInvalidConfig, idle, abs)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = &l
	return nil
}

// Destroy ends the session now (a logout) and tells the client to drop its
// cookie. It deletes the session under every ID of its family: the ID the
// request loaded, and every ID a concurrent RenewID, Login or Rotate has
// moved it to since, so no request, however it races the logout, is ever
// served the session again. Values Put after Destroy start a fresh session
// with a new ID. It fails with ErrNoSession outside a session, or with the
// store's error (the session may then still exist; calling Destroy again
// finishes the job).
func Destroy(ctx context.Context) error {
	s := from(ctx)
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.id
	if s.forwarded || s.superseded {
		start = s.cookieID // the chain from it reaches s.id
	}
	if start != "" && (s.existed || s.superseded) {
		if err := s.m.destroyFamily(ctx, start); err != nil {
			return err
		}
	}
	s.id, s.existed, s.forwarded, s.superseded, s.version, s.rec = "", false, false, false, 0, record{}
	s.values = map[string]any{}
	s.ops, s.user, s.renew, s.lifetime, s.sendCookie = nil, nil, renewNone, nil, false
	s.destroyed = true
	return nil
}
