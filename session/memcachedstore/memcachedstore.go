// Package memcachedstore keeps sessions in Memcached through the caller's
// github.com/bradfitz/gomemcache client.
//
// # A cache, not a database
//
// Memcached may evict any item under memory pressure and forgets everything
// when it restarts, so a session kept here can vanish before its expiry (the
// user is logged out) and a user's index can vanish too (then "log out
// everywhere" no longer finds the sessions it listed; they still expire on
// their own). Use redisstore where losing sessions is not acceptable.
//
// # Keys
//
// Memcached keys are at most 250 bytes of non-space, non-control bytes. A
// session ID made only of printable ASCII (0x21-0x7e) that does not begin
// with '~' and fits is used as is: the key is Prefix + ID. Any other ID
// (spaces, control or non-ASCII bytes, a leading '~', or too long) is stored
// under Prefix + "~s" + base64url(SHA-256(ID)). Direct keys never begin with
// '~' after the prefix and hashed ones always do, so two different IDs never
// share a key. User index items live under Prefix + "~u" + user (or
// Prefix + "~u~" + base64url(SHA-256(user)) for users that are not safe), a
// space no session key can reach.
//
// # Values and versions (CASStore)
//
// Each item holds an 8-byte big-endian version followed by the session data.
// The version is a random non-zero 64-bit number drawn anew on every save.
// Memcached's own CAS unique cannot serve as the Version: the text protocol
// does not return the new CAS unique after a store, and it restarts from 1
// when the server restarts, so an old value could match a new item (ABA).
// A random version never repeats across deletes and restarts (chance 2^-64).
//
// SaveIf(v) is two round trips: Get the item and compare its version header
// with v, then CompareAndSwap the very item that Get returned, writing a new
// version. Memcached's CAS makes the pair atomic: a save or delete in
// between turns the swap into ErrConflict. SaveIf with v == 0 uses Add, which
// fails (ErrConflict) when a session exists. A SaveIf whose expiry is in the
// past deletes the session, conditionally on v, by swapping in an item that
// is already expired, and returns version 0.
//
// # Expiry
//
// Memcached takes an expiration in whole seconds, relative to now when at
// most 30 days, else an absolute Unix time, and its clock ticks once a
// second. Expiries are rounded up to the next second and one second is
// added for the tick, so a session never expires early (it may be kept up to
// two seconds past its expiry; the Manager refuses it after its expiry all
// the same, and a rotation's forward after its grace); one more than
// 30 days away is sent as an absolute time and so depends on the server's
// clock agreeing with the client's. Expiries beyond 2038-01-19 (the int32
// limit of the protocol) are clamped to it. An expiry that is not in the
// future deletes the session.
//
// # Errors and context
//
// A missing item is found == false, never an error. Other client errors are
// wrapped ("memcachedstore: load: ..."); errors never contain session IDs,
// which are secrets. An item the server refuses as too large (SERVER_ERROR
// object too large, above its -I item size limit, 1 MB by default) becomes
// session.ErrTooLarge: nothing is stored, never silently dropped.
//
// gomemcache takes no context: each method checks ctx before every round
// trip, but cannot interrupt one in flight; the client's Timeout bounds it.
// The store never closes the caller's client.
package memcachedstore

import (
	"github.com/scaleout/scaleout/internal/mckey"

	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/scaleout/scaleout/session"
)

// DefaultPrefix is the key prefix used when Config.Prefix is empty.
const DefaultPrefix = "scaleout:session:"

// maxPrefix leaves room after the prefix for a hashed key ("~u~" + 43).
const maxPrefix = mckey.MaxKey - 3 - mckey.HashLen

const headerLen = 8

// maxIndexRetries bounds the CAS retry loops of the user index.
const maxIndexRetries = 64

// Config configures a Store. The zero value is valid.
type Config struct {
	// Prefix starts every key the store writes (default DefaultPrefix). At
	// most 204 bytes of printable ASCII without spaces.
	Prefix string
}

// Store is a session.SessionStore, session.CASStore and session.UserIndex
// on Memcached. It is safe for concurrent use.
type Store struct {
	c      *memcache.Client
	prefix string
	now    func() time.Time
}

var (
	_ session.SessionStore = (*Store)(nil)
	_ session.CASStore     = (*Store)(nil)
	_ session.UserIndex    = (*Store)(nil)
)

// New returns a Store using client, which it never closes.
func New(client *memcache.Client, cfg Config) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: memcachedstore: nil client", session.ErrInvalidConfig)
	}
	p := cfg.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	if len(p) > maxPrefix || !mckey.Safe(p) {
		return nil, fmt.Errorf("%w: memcachedstore: prefix must be at most %d bytes of printable ASCII without spaces", session.ErrInvalidConfig, maxPrefix)
	}
	return &Store{c: client, prefix: p, now: time.Now}, nil
}

// key returns the memcached key of session id. See the package doc.
func (s *Store) key(id string) string { return mckey.Key(s.prefix, id, "~s") }

// userKey returns the memcached key of user's index.
func (s *Store) userKey(user string) string { return mckey.Key(s.prefix+"~u", user, "~") }

// expiration converts expiry into memcached's expiration; ok is false when
// expiry is not in the future.
func expiration(now, expiry time.Time) (int32, bool) { return mckey.Expiration(now, expiry) }

// newVersion returns a random non-zero version different from old.
func newVersion(old session.Version) session.Version {
	for {
		v := session.Version(rand.Uint64())
		if v != 0 && v != old {
			return v
		}
	}
}

func encode(v session.Version, data []byte) []byte {
	b := make([]byte, headerLen+len(data))
	binary.BigEndian.PutUint64(b, uint64(v))
	copy(b[headerLen:], data)
	return b
}

// errCorrupt reports an item that does not hold a version header.
var errCorrupt = errors.New("memcachedstore: malformed item (no version header)")

func decode(b []byte) (session.Version, []byte, error) {
	if len(b) < headerLen {
		return 0, nil, errCorrupt
	}
	return session.Version(binary.BigEndian.Uint64(b)), b[headerLen:], nil
}

// translate maps a store error from the client: a refused large item
// becomes session.ErrTooLarge; everything else is wrapped with op.
func translate(op string, err error) error {
	if err == nil {
		return nil
	}
	if mckey.TooLarge(err) {
		return fmt.Errorf("memcachedstore: %s: %w (%v)", op, session.ErrTooLarge, err)
	}
	return fmt.Errorf("memcachedstore: %s: %w", op, err)
}

func check(ctx context.Context, op, id string) error {
	if err := session.CheckID(id); err != nil {
		return fmt.Errorf("memcachedstore: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcachedstore: %s: %w", op, err)
	}
	return nil
}

// Load implements session.SessionStore.
func (s *Store) Load(ctx context.Context, id string) ([]byte, bool, error) {
	data, v, err := s.LoadVersion(ctx, id)
	return data, v != 0, err
}

// LoadVersion implements session.CASStore.
func (s *Store) LoadVersion(ctx context.Context, id string) ([]byte, session.Version, error) {
	if err := check(ctx, "load", id); err != nil {
		return nil, 0, err
	}
	it, err := s.c.Get(s.key(id))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, translate("load", err)
	}
	v, data, err := decode(it.Value)
	if err != nil {
		return nil, 0, err
	}
	if v == 0 { // never written by this package; treat as corrupt
		return nil, 0, errCorrupt
	}
	return data, v, nil
}

// Save implements session.SessionStore.
func (s *Store) Save(ctx context.Context, id string, data []byte, expiry time.Time) error {
	if err := check(ctx, "save", id); err != nil {
		return err
	}
	key := s.key(id)
	exp, ok := expiration(s.now(), expiry)
	if !ok {
		return s.del("save", key)
	}
	err := s.c.Set(&memcache.Item{Key: key, Value: encode(newVersion(0), data), Expiration: exp})
	return translate("save", err)
}

// SaveIf implements session.CASStore. See the package doc for how it uses
// memcached's CAS.
func (s *Store) SaveIf(ctx context.Context, id string, data []byte, expiry time.Time, v session.Version) (session.Version, error) {
	if err := check(ctx, "save", id); err != nil {
		return 0, err
	}
	key := s.key(id)
	exp, live := expiration(s.now(), expiry)
	if v == 0 {
		if !live {
			// Nothing to create; succeed only if there is no session.
			_, cur, err := s.LoadVersion(ctx, id)
			if err != nil {
				return 0, err
			}
			if cur != 0 {
				return 0, fmt.Errorf("memcachedstore: save: %w", session.ErrConflict)
			}
			return 0, nil
		}
		nv := newVersion(0)
		err := s.c.Add(&memcache.Item{Key: key, Value: encode(nv, data), Expiration: exp})
		if errors.Is(err, memcache.ErrNotStored) {
			return 0, fmt.Errorf("memcachedstore: save: %w", session.ErrConflict)
		}
		if err != nil {
			return 0, translate("save", err)
		}
		return nv, nil
	}
	it, err := s.c.Get(key)
	if errors.Is(err, memcache.ErrCacheMiss) {
		return 0, fmt.Errorf("memcachedstore: save: %w", session.ErrConflict)
	}
	if err != nil {
		return 0, translate("save", err)
	}
	if cur, _, err := decode(it.Value); err != nil || cur != v {
		return 0, fmt.Errorf("memcachedstore: save: %w", session.ErrConflict)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memcachedstore: save: %w", err)
	}
	nv := newVersion(v)
	if live {
		it.Value = encode(nv, data)
		it.Expiration = exp
	} else {
		// Conditional delete: swap in an item that is already expired.
		it.Value = encode(nv, nil)
		it.Expiration = -1
		nv = 0
	}
	err = s.c.CompareAndSwap(it)
	switch {
	case errors.Is(err, memcache.ErrCASConflict), errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrCacheMiss):
		return 0, fmt.Errorf("memcachedstore: save: %w", session.ErrConflict)
	case err != nil:
		return 0, translate("save", err)
	}
	return nv, nil
}

// Delete implements session.SessionStore.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := check(ctx, "delete", id); err != nil {
		return err
	}
	return s.del("delete", s.key(id))
}

func (s *Store) del(op, key string) error {
	err := s.c.Delete(key)
	if err == nil || errors.Is(err, memcache.ErrCacheMiss) {
		return nil
	}
	return translate(op, err)
}

// ---- user index ----

// The index item holds entries of (id, expiry in Unix seconds, rounded
// up): a format byte, then per entry uvarint(len(id)), id, varint(expiry).
const indexFormat = 1

type entry struct {
	id  string
	exp int64
}

func encodeIndex(es []entry) []byte {
	n := 1
	for _, e := range es {
		n += 2*binary.MaxVarintLen64 + len(e.id)
	}
	b := make([]byte, 0, n)
	b = append(b, indexFormat)
	for _, e := range es {
		b = binary.AppendUvarint(b, uint64(len(e.id)))
		b = append(b, e.id...)
		b = binary.AppendVarint(b, e.exp)
	}
	return b
}

var errBadIndex = errors.New("memcachedstore: malformed user index")

func decodeIndex(b []byte) ([]entry, error) {
	if len(b) == 0 || b[0] != indexFormat {
		return nil, errBadIndex
	}
	b = b[1:]
	var es []entry
	for len(b) > 0 {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > session.MaxIDLength || uint64(len(b)-n) < l {
			return nil, errBadIndex
		}
		b = b[n:]
		id := string(b[:l])
		b = b[l:]
		exp, n := binary.Varint(b)
		if n <= 0 {
			return nil, errBadIndex
		}
		b = b[n:]
		es = append(es, entry{id, exp})
	}
	return es, nil
}

func unixCeil(t time.Time) int64 {
	u := t.Unix()
	if t.Nanosecond() > 0 {
		u++
	}
	return u
}

// live drops expired entries.
func live(es []entry, now time.Time) []entry {
	n := now.Unix()
	return slices.DeleteFunc(es, func(e entry) bool { return e.exp <= n })
}

func checkUser(ctx context.Context, op, user string) error {
	if user == "" {
		return fmt.Errorf("memcachedstore: %s: empty user: %w", op, session.ErrInvalidID)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcachedstore: %s: %w", op, err)
	}
	return nil
}

// AddUserSession implements session.UserIndex. The index is one item per
// user updated in a CAS retry loop, so concurrent logins all land. It
// expires with its last session. Like everything in memcached it may be
// evicted (see the package doc).
func (s *Store) AddUserSession(ctx context.Context, user, id string, expiry time.Time) error {
	const op = "add user session"
	if err := checkUser(ctx, op, user); err != nil {
		return err
	}
	if err := session.CheckID(id); err != nil {
		return fmt.Errorf("memcachedstore: %s: %w", op, err)
	}
	now := s.now()
	if !expiry.After(now) {
		return nil // already expired: nothing to list
	}
	key := s.userKey(user)
	for range maxIndexRetries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memcachedstore: %s: %w", op, err)
		}
		it, err := s.c.Get(key)
		var es []entry
		switch {
		case errors.Is(err, memcache.ErrCacheMiss):
			it = nil
		case err != nil:
			return translate(op, err)
		default:
			if es, err = decodeIndex(it.Value); err != nil {
				es = nil // unreadable: start afresh rather than lock the user out
			}
		}
		es = live(es, now)
		es = slices.DeleteFunc(es, func(e entry) bool { return e.id == id })
		es = append(es, entry{id, unixCeil(expiry)})
		last := expiry
		for _, e := range es {
			if t := time.Unix(e.exp, 0); t.After(last) {
				last = t
			}
		}
		exp, _ := expiration(now, last)
		val := encodeIndex(es)
		if it == nil {
			err = s.c.Add(&memcache.Item{Key: key, Value: val, Expiration: exp})
		} else {
			it.Value, it.Expiration = val, exp
			err = s.c.CompareAndSwap(it)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, memcache.ErrNotStored), errors.Is(err, memcache.ErrCASConflict), errors.Is(err, memcache.ErrCacheMiss):
			continue
		default:
			return translate(op, err)
		}
	}
	return fmt.Errorf("memcachedstore: %s: %w", op, session.ErrConflict)
}

// UserSessions implements session.UserIndex.
func (s *Store) UserSessions(ctx context.Context, user string) ([]string, error) {
	const op = "user sessions"
	if err := checkUser(ctx, op, user); err != nil {
		return nil, err
	}
	it, err := s.c.Get(s.userKey(user))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(op, err)
	}
	es, err := decodeIndex(it.Value)
	if err != nil {
		return nil, fmt.Errorf("memcachedstore: %s: %w", op, err)
	}
	es = live(es, s.now())
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.id
	}
	return ids, nil
}

// DeleteUser implements session.UserIndex. It deletes the listed sessions,
// then removes the index only if no session was added meanwhile (CAS);
// otherwise it starts over, so every session indexed before DeleteUser
// returns is deleted.
func (s *Store) DeleteUser(ctx context.Context, user string) error {
	const op = "delete user"
	if err := checkUser(ctx, op, user); err != nil {
		return err
	}
	key := s.userKey(user)
	for range maxIndexRetries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memcachedstore: %s: %w", op, err)
		}
		it, err := s.c.Get(key)
		if errors.Is(err, memcache.ErrCacheMiss) {
			return nil
		}
		if err != nil {
			return translate(op, err)
		}
		es, _ := decodeIndex(it.Value) // unreadable: nothing to delete but the index
		for _, e := range es {
			if session.CheckID(e.id) != nil {
				continue
			}
			if err := s.del(op, s.key(e.id)); err != nil {
				return err
			}
		}
		it.Value, it.Expiration = []byte{indexFormat}, -1 // conditional delete
		err = s.c.CompareAndSwap(it)
		switch {
		case err == nil, errors.Is(err, memcache.ErrCacheMiss), errors.Is(err, memcache.ErrNotStored):
			// Gone either way; an index added after it vanished is a later login.
			return nil
		case errors.Is(err, memcache.ErrCASConflict):
			continue
		default:
			return translate(op, err)
		}
	}
	return fmt.Errorf("memcachedstore: %s: %w", op, session.ErrConflict)
}
