package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/scaleout/scaleout/observe"
)

// Defaults of MemoryConfig.
const (
	// DefaultMemoryMaxEntries and DefaultMemoryMaxBytes bound a Memory
	// whose MaxEntries and MaxBytes are both zero.
	DefaultMemoryMaxEntries = 100_000
	DefaultMemoryMaxBytes   = 64 << 20
	maxMemoryShards         = 1 << 16
)

// MemoryConfig configures NewMemory. Zero values mean the documented
// defaults; negative values are ErrInvalidConfig.
type MemoryConfig struct {
	// MaxEntries bounds the number of entries. The bound is split evenly
	// over the shards (rounded up), so the cache may hold up to
	// Shards-1 entries more than MaxEntries.
	MaxEntries int
	// MaxBytes bounds the total size of keys plus values. It is split
	// evenly over the shards: a key plus value larger than MaxBytes/Shards,
	// or of 1 GiB or more, is ErrTooLarge. Bookkeeping (about 90 bytes an
	// entry in a cache bounded by MaxEntries, beyond the key and the
	// value's copy) is not counted.
	//
	// When MaxEntries and MaxBytes are both zero, the cache holds at most
	// DefaultMemoryMaxEntries entries and DefaultMemoryMaxBytes bytes;
	// when only one of them is zero, that dimension is unbounded.
	MaxBytes int64
	// Shards is the number of independently locked parts of the cache
	// (reads take no lock; writes lock their key's shard), each with its
	// own share of the bounds and its own eviction policy state, rounded
	// up to a power of two. Zero means 4×GOMAXPROCS rounded
	// up to a power of two, at least 16, reduced while a shard would hold
	// fewer than 64 entries. Use 1 for one global eviction order.
	Shards int
	// Policy chooses the entries evicted when a shard is over budget. The
	// zero value is PolicyTinyLFU, whose hit ratio beats LRU's on skewed
	// and scan-polluted workloads; PolicyLRU is plain least recently used.
	// Other values are ErrInvalidConfig.
	Policy Policy
	// Meter receives the store's evictions (scaleout.cache.evictions, see
	// package observe); nil means none. A Loader's local tier reports
	// through LoaderConfig.Meter instead.
	Meter observe.Meter
}

// MemoryStats are the counters of a Memory since it was created.
type MemoryStats struct {
	Hits        uint64 // Get (or GetMulti key) found a live entry
	Misses      uint64 // Get found nothing, or an expired entry
	Evictions   uint64 // live entries dropped (or not admitted) to respect MaxEntries or MaxBytes
	Expirations uint64 // expired entries removed (on Get, Set, Add or CompareAndSwap)
	Entries     int    // entries held now, expired ones not yet removed included
	Bytes       int64  // key plus value bytes held now
}

// Memory is an in-process ObjectCache and BatchCache: a fixed number of
// shards, chosen by a seeded hash of the key (hash/maphash), each with its
// own share of the bounds. Writes lock their shard; reads take no lock
// and write no memory shared with other cores on their common path, so
// parallel reads scale with cores. When a write takes a shard over its
// entry or byte budget, the shard evicts by its Policy: W-TinyLFU by
// default (see PolicyTinyLFU), which keeps frequently read entries and
// may decline to keep a new entry that is rarer than the ones it would
// displace; or LRU. The entry just written always survives its own
// write. In shards of 64 entries or more, the policy learns of one hit
// in 8 (sampled per P, dropped when the shard is busy): the order of
// eviction is approximate, the hit ratio barely changes.
//
// Expiry is lazy: an entry's deadline is checked when it is read (an
// expired entry is a miss and is removed), and writes remove expired
// entries they find at the cold ends of the shard's lists. There is no
// goroutine per entry and no background goroutine, so a Memory needs no
// Close. Expired entries that are never read again are reclaimed as they
// age out.
//
// Values are copied on Set and on Get, so callers may reuse and mutate
// their slices: each Get of a hit makes exactly one allocation, the copy.
// Memory ignores ctx: none of its calls block for long.
type Memory struct {
	s *store[string] // a value is kept as a string: 16 bytes of header, not 24
}

var (
	_ ObjectCache = (*Memory)(nil)
	_ BatchCache  = (*Memory)(nil)
)

// NewMemory returns an empty Memory. It fails with an error wrapping
// ErrInvalidConfig when a field of cfg is negative, Shards is absurdly
// large or Policy is unknown.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	s, err := newStore[string](cfg)
	if err != nil {
		return nil, err
	}
	return &Memory{s: s}, nil
}

// Get returns a copy of the value of key, or ErrMiss.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	v, ok := m.s.get(key)
	if !ok {
		return nil, ErrMiss
	}
	return []byte(v), nil
}

// Set stores a copy of value under key for ttl (0: until evicted). A key
// plus value larger than the per-shard byte budget, or of 1 GiB or more,
// fails with ErrTooLarge and removes any older value of key, so that no
// stale value survives a failed write.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.check(key, value, ttl); err != nil {
		if errors.Is(err, ErrTooLarge) {
			m.s.delete(key)
		}
		return err
	}
	m.s.set(key, string(value), memSize(key, value), ttl)
	return nil
}

// Add stores a copy of value under key for ttl only when key holds no live
// value; otherwise it fails with ErrNotStored. It validates like Set, but
// ErrTooLarge leaves an existing value in place.
func (m *Memory) Add(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.check(key, value, ttl); err != nil {
		return err
	}
	if !m.s.add(key, string(value), memSize(key, value), ttl) {
		return ErrNotStored
	}
	return nil
}

// CompareAndSwap stores a copy of value under key for ttl only when key
// holds a live value equal to old (bytes.Equal: nil and empty are equal);
// otherwise, also when key is absent, it fails with ErrNotStored. It
// validates like Set, but ErrTooLarge leaves the old value in place.
func (m *Memory) CompareAndSwap(_ context.Context, key string, old, value []byte, ttl time.Duration) error {
	if err := m.check(key, value, ttl); err != nil {
		return err
	}
	same := func(cur string) bool { return cur == string(old) }
	if !m.s.compareAndSwap(key, same, string(value), memSize(key, value), ttl) {
		return ErrNotStored
	}
	return nil
}

// Clear removes every entry. Entries and Bytes drop to zero; the other
// counters are kept, and the removed entries do not count as evictions.
func (m *Memory) Clear() { m.s.clear() }

// Delete removes keys; missing keys are not an error. An invalid key fails
// with ErrInvalidKey before anything is deleted.
func (m *Memory) Delete(_ context.Context, keys ...string) error {
	for _, k := range keys {
		if err := CheckKey(k); err != nil {
			return err
		}
	}
	for _, k := range keys {
		m.s.delete(k)
	}
	return nil
}

// GetMulti returns copies of the values of the present keys.
func (m *Memory) GetMulti(_ context.Context, keys []string) (map[string][]byte, error) {
	for _, k := range keys {
		if err := CheckKey(k); err != nil {
			return nil, err
		}
	}
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		if v, ok := m.s.get(k); ok {
			out[k] = []byte(v)
		}
	}
	return out, nil
}

// SetMulti stores copies of all items for ttl. Keys, ttl and sizes are
// checked first: on ErrInvalidKey, ErrInvalidTTL or ErrTooLarge nothing is
// stored.
func (m *Memory) SetMulti(_ context.Context, items map[string][]byte, ttl time.Duration) error {
	if ttl < 0 {
		return ErrInvalidTTL
	}
	for k, v := range items {
		if err := m.check(k, v, ttl); err != nil {
			return err
		}
	}
	for k, v := range items {
		m.s.set(k, string(v), memSize(k, v), ttl)
	}
	return nil
}

// Stats returns the counters summed over the shards. The sum is not one
// atomic snapshot: each shard is read under its own lock.
func (m *Memory) Stats() MemoryStats { return m.s.stats() }

// check validates a write of value under key for ttl.
func (m *Memory) check(key string, value []byte, ttl time.Duration) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if ttl < 0 {
		return ErrInvalidTTL
	}
	if n := memSize(key, value); n > m.s.maxSize() {
		return fmt.Errorf("%w: %d bytes of key and value, at most %d", ErrTooLarge, n, m.s.maxSize())
	}
	return nil
}

// memSize is the bytes an entry is charged: key plus value.
func memSize(key string, value []byte) int64 { return int64(len(key)) + int64(len(value)) }
