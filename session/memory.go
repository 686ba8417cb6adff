package session

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSweepInterval is how often a Memory store removes expired
// sessions when MemoryConfig.SweepInterval is zero.
const DefaultSweepInterval = time.Minute

// DefaultMaxSessions bounds a Memory store when MemoryConfig.MaxSessions
// is zero.
const DefaultMaxSessions = 100_000

// evictionSamples is how many entries an eviction compares.
const evictionSamples = 16

// MemoryConfig configures a Memory store. The zero value is ready to use.
type MemoryConfig struct {
	// SweepInterval is how often the background goroutine removes expired
	// sessions and user-index entries. Expired sessions are invisible to
	// Load as soon as they expire; the sweep only frees their memory.
	// Zero means DefaultSweepInterval; negative is invalid.
	SweepInterval time.Duration
	// MaxBytes bounds the size of one session's data; a larger Save fails
	// with ErrTooLarge. Zero means no limit; negative is invalid.
	MaxBytes int
	// MaxSessions bounds how many IDs the store holds (sessions, and the
	// records a renewal leaves under an old ID), so that a flood of
	// anonymous visitors cannot grow it without limit. Saving a new ID
	// into a full store first evicts the least recently used one, chosen
	// among a sample the way Redis's allkeys-lru does; an evicted session
	// ends as if it had expired. Zero means DefaultMaxSessions; negative
	// is invalid.
	MaxSessions int
}

// Memory is a SessionStore kept in the memory of one process: for a single
// server, for tests, and as the reference the conformance kit
// (session/sessiontest) is checked against. Sessions in a Memory store are
// not shared between clones; use session/redisstore or
// session/memcachedstore for that.
//
// Memory also implements CASStore (versions come from one counter per
// store, so a version is never reused, not even after a Delete) and
// UserIndex. It copies data on Save and on Load, so callers may reuse their
// buffers.
//
// One background goroutine sweeps expired entries; Close stops it. After
// Close every operation fails with ErrClosed.
type Memory struct {
	maxBytes    int
	maxSessions int

	mu       sync.RWMutex
	entries  map[string]*memEntry
	ids      []string                        // the keys of entries, for sampling
	users    map[string]map[string]time.Time // user -> session ID -> expiry
	userOf   map[string]string               // session ID -> user, for the indexed IDs
	lastVer  Version
	evicted  int64
	closed   bool
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

type memEntry struct {
	data    []byte
	expiry  time.Time
	version Version
	used    atomic.Int64 // last Load or Save, Unix ns: the eviction order
	slot    int          // index of its key in Memory.ids
}

var (
	_ SessionStore = (*Memory)(nil)
	_ CASStore     = (*Memory)(nil)
	_ UserIndex    = (*Memory)(nil)
)

// NewMemory returns a Memory store and starts its sweeping goroutine;
// call Close to stop it. It fails with ErrInvalidConfig for a negative
// SweepInterval, MaxBytes or MaxSessions.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.SweepInterval < 0 || cfg.MaxBytes < 0 || cfg.MaxSessions < 0 {
		return nil, fmt.Errorf("%w: negative SweepInterval, MaxBytes or MaxSessions", ErrInvalidConfig)
	}
	interval := cfg.SweepInterval
	if interval == 0 {
		interval = DefaultSweepInterval
	}
	m := &Memory{
		maxBytes:    cfg.MaxBytes,
		maxSessions: cfg.MaxSessions,
		entries:     make(map[string]*memEntry),
		users:       make(map[string]map[string]time.Time),
		userOf:      make(map[string]string),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
	if m.maxSessions == 0 {
		m.maxSessions = DefaultMaxSessions
	}
	go m.sweepLoop(interval)
	return m, nil
}

// Close stops the sweeping goroutine, waits for it to exit and drops all
// sessions. It is idempotent; operations after Close fail with ErrClosed.
func (m *Memory) Close() error {
	m.stopOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.entries = nil
		m.ids = nil
		m.users = nil
		m.userOf = nil
		m.mu.Unlock()
		close(m.stop)
	})
	<-m.done
	return nil
}

// Load implements SessionStore.
func (m *Memory) Load(ctx context.Context, id string) ([]byte, bool, error) {
	data, v, err := m.LoadVersion(ctx, id)
	return data, v != 0, err
}

// LoadVersion implements CASStore.
func (m *Memory) LoadVersion(ctx context.Context, id string) ([]byte, Version, error) {
	if err := memCheck(ctx, id); err != nil {
		return nil, 0, err
	}
	now := time.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, 0, ErrClosed
	}
	e, ok := m.entries[id]
	if !ok || !now.Before(e.expiry) {
		return nil, 0, nil
	}
	e.used.Store(now.UnixNano())
	data := make([]byte, len(e.data))
	copy(data, e.data)
	return data, e.version, nil
}

// Save implements SessionStore.
func (m *Memory) Save(ctx context.Context, id string, data []byte, expiry time.Time) error {
	_, err := m.save(ctx, id, data, expiry, 0, false)
	return err
}

// SaveIf implements CASStore. A SaveIf whose expiry is in the past deletes
// the session (if v matches) and returns version 0.
func (m *Memory) SaveIf(ctx context.Context, id string, data []byte, expiry time.Time, v Version) (Version, error) {
	return m.save(ctx, id, data, expiry, v, true)
}

func (m *Memory) save(ctx context.Context, id string, data []byte, expiry time.Time, v Version, cas bool) (Version, error) {
	if err := memCheck(ctx, id); err != nil {
		return 0, err
	}
	if m.maxBytes > 0 && len(data) > m.maxBytes {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), m.maxBytes)
	}
	now := time.Now()
	var cp []byte
	if now.Before(expiry) {
		cp = make([]byte, len(data))
		copy(cp, data)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	if cas {
		var cur Version
		if e, ok := m.entries[id]; ok && now.Before(e.expiry) {
			cur = e.version
		}
		if cur != v {
			return 0, ErrConflict
		}
	}
	if !now.Before(expiry) {
		m.remove(id)
		return 0, nil
	}
	m.lastVer++
	e := &memEntry{data: cp, expiry: expiry, version: m.lastVer}
	e.used.Store(now.UnixNano())
	if old, ok := m.entries[id]; ok {
		e.slot = old.slot
	} else {
		if len(m.entries) >= m.maxSessions {
			m.evict(now)
		}
		e.slot = len(m.ids)
		m.ids = append(m.ids, id)
	}
	m.entries[id] = e
	return m.lastVer, nil
}

// evict removes one entry to make room: an expired one if the sample has
// one, else the least recently used of evictionSamples entries drawn at
// random.
func (m *Memory) evict(now time.Time) {
	var victim string
	oldest := int64(1<<63 - 1)
	for range evictionSamples {
		id := m.ids[rand.IntN(len(m.ids))]
		e := m.entries[id]
		if !now.Before(e.expiry) {
			victim = id
			break
		}
		if u := e.used.Load(); u < oldest {
			victim, oldest = id, u
		}
	}
	m.remove(victim)
	m.evicted++
}

// remove deletes id and its user-index entry. The caller holds mu.
func (m *Memory) remove(id string) {
	if e, ok := m.entries[id]; ok {
		last := len(m.ids) - 1
		moved := m.ids[last]
		m.ids[e.slot] = moved
		m.entries[moved].slot = e.slot
		m.ids = m.ids[:last]
	}
	delete(m.entries, id)
	if user, ok := m.userOf[id]; ok {
		delete(m.userOf, id)
		if ids := m.users[user]; ids != nil {
			delete(ids, id)
			if len(ids) == 0 {
				delete(m.users, user)
			}
		}
	}
}

// Delete implements SessionStore.
func (m *Memory) Delete(ctx context.Context, id string) error {
	if err := memCheck(ctx, id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.remove(id)
	return nil
}

// AddUserSession implements UserIndex. An empty user is refused with an
// error wrapping ErrInvalidID.
func (m *Memory) AddUserSession(ctx context.Context, user, id string, expiry time.Time) error {
	if err := memCheck(ctx, id); err != nil {
		return err
	}
	if user == "" {
		return fmt.Errorf("%w: empty user", ErrInvalidID)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	ids := m.users[user]
	if ids == nil {
		ids = make(map[string]time.Time)
		m.users[user] = ids
	}
	if old, ok := ids[id]; !ok || expiry.After(old) {
		ids[id] = expiry
	}
	m.userOf[id] = user
	return nil
}

// UserSessions implements UserIndex. It lists, sorted, only the sessions
// that still exist: the memory store can check cheaply, so a session
// deleted on its own is not listed.
func (m *Memory) UserSessions(ctx context.Context, user string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, ErrClosed
	}
	var out []string
	for id, exp := range m.users[user] {
		if !now.Before(exp) {
			continue
		}
		if e, ok := m.entries[id]; ok && now.Before(e.expiry) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out, nil
}

// DeleteUser implements UserIndex. It deletes every session ever indexed
// for user, expired index entries included.
func (m *Memory) DeleteUser(ctx context.Context, user string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for id := range m.users[user] {
		m.remove(id)
	}
	delete(m.users, user)
	return nil
}

func (m *Memory) sweepLoop(interval time.Duration) {
	defer close(m.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep(time.Now())
		}
	}
}

// sweep removes the sessions and user-index entries expired at now.
func (m *Memory) sweep(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	for id, e := range m.entries {
		if !now.Before(e.expiry) {
			m.remove(id)
		}
	}
	for user, ids := range m.users {
		for id, exp := range ids {
			if !now.Before(exp) {
				delete(ids, id)
				delete(m.userOf, id)
			}
		}
		if len(ids) == 0 {
			delete(m.users, user)
		}
	}
}

// sizes returns the number of sessions and users held, expired or not,
// and how many sessions were evicted (for tests).
func (m *Memory) sizes() (sessions, users int, evicted int64) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.entries), len(m.users), m.evicted
}

func memCheck(ctx context.Context, id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	return ctx.Err()
}
