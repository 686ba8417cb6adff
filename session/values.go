package session

import (
	"context"
	"errors"
	"sync"
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

// state is one request's view of its session.
type state struct {
	m  *Manager
	mu sync.Mutex

	cookieID  string // well-formed ID the client presented, or ""
	hadCookie bool   // the request carried a session cookie at all

	id      string // session ID; "" for a session not (or no longer) stored
	existed bool   // id named a live session when the request started
	version Version
	rec     record         // the record as loaded
	values  map[string]any // the request's view: rec's values plus ops

	ops        []op
	user       *string // set by Login
	renew      bool    // RenewID requested
	destroyed  bool    // Destroy ran
	sendCookie bool    // the client must be sent id
}

func from(ctx context.Context) *state {
	s, _ := ctx.Value(ctxKey{}).(*state)
	return s
}

func (s *state) add(o op) {
	o.apply(s.values)
	s.ops = append(s.ops, o)
}

// Get returns the value stored under key if it has type T.
func Get[T any](ctx context.Context, key string) (T, bool) {
	var zero T
	s := from(ctx)
	if s == nil {
		return zero, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.values[key].(T)
	return v, ok
}

// Put stores v under key. A nil v removes key. With the default
// BinaryCodec, strings, numbers, bools, []byte and time.Time need nothing;
// a v of any other concrete type goes through gob and must be registered
// with gob.Register. Outside LoadAndSave, Put does nothing.
//
// At commit, Put overwrites whatever a concurrent request stored under key
// (last writer wins per key); to change a value based on its old value,
// use Update.
func Put(ctx context.Context, key string, v any) {
	s := from(ctx)
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v == nil {
		s.add(op{kind: opRemove, key: key})
		return
	}
	s.add(op{kind: opPut, key: key, val: v})
}

// Update sets key to fn(old), where old is the value under key or T's
// zero value when there is none (or it has another type), and returns the
// new value as this request sees it. fn runs now and again at commit, on
// the value as stored then (and on each compare-and-swap retry), so
// concurrent Updates of one key compose: 100 concurrent increments add
// 100. fn must be a pure function of old.
func Update[T any](ctx context.Context, key string, fn func(old T) T) T {
	s := from(ctx)
	if s == nil {
		var zero T
		return fn(zero)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(op{kind: opUpdate, key: key, fn: func(old any) any {
		t, _ := old.(T)
		return fn(t)
	}})
	v, _ := s.values[key].(T)
	return v
}

// Pop returns the value under key if it has type T and removes it (a
// flash message).
func Pop[T any](ctx context.Context, key string) (T, bool) {
	var zero T
	s := from(ctx)
	if s == nil {
		return zero, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	raw, present := s.values[key]
	v, ok := raw.(T)
	if present {
		s.add(op{kind: opRemove, key: key})
	}
	return v, ok
}

// Remove deletes key.
func Remove(ctx context.Context, key string) {
	if s := from(ctx); s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.add(op{kind: opRemove, key: key})
	}
}

// Clear deletes every key, including keys concurrent requests add before
// this one commits. The session and its ID stay; see Destroy.
func Clear(ctx context.Context) {
	if s := from(ctx); s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.add(op{kind: opClear})
	}
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

// RenewID gives the session a new ID at commit; call it on login and on
// any change of privilege. For RenewGrace the old ID resolves to the new
// session (a request presenting it is sent the new ID), then it dies.
func RenewID(ctx context.Context) error {
	s := from(ctx)
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renew = true
	return nil
}

// Login records user as the session's user and renews the ID at commit;
// when the store has a UserIndex, the session is listed under user so
// Manager.DestroyAll finds it.
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
	s.renew = true
	s.user = &user
	return nil
}

// Destroy deletes the session from the store now (a logout) and tells the
// client to drop its cookie. A slower concurrent request of the same
// session never brings it back (with a CASStore; see the package doc).
// Values Put after Destroy start a fresh session with a new ID.
func Destroy(ctx context.Context) error {
	s := from(ctx)
	if s == nil {
		return ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := []string{s.id}
	if s.existed && s.cookieID != s.id {
		ids = append(ids, s.cookieID) // the forwarding record it came through
	}
	for _, id := range ids {
		if id == "" {
			continue
		}
		if err := s.m.store.Delete(ctx, id); err != nil {
			return err
		}
	}
	s.id, s.existed, s.version, s.rec = "", false, 0, record{}
	s.values = map[string]any{}
	s.ops, s.user, s.renew, s.sendCookie = nil, nil, false, false
	s.destroyed = true
	return nil
}
