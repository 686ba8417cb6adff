package cache

import (
	"context"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"time"
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
	// evenly over the shards: a key plus value larger than MaxBytes/Shards
	// is ErrTooLarge. Bookkeeping overhead (about 100 bytes an entry) is
	// not counted.
	//
	// When MaxEntries and MaxBytes are both zero, the cache holds at most
	// DefaultMemoryMaxEntries entries and DefaultMemoryMaxBytes bytes;
	// when only one of them is zero, that dimension is unbounded.
	MaxBytes int64
	// Shards is the number of independently locked LRU lists, rounded up
	// to a power of two. Zero means 4×GOMAXPROCS rounded up to a power of
	// two, at least 16, reduced while a shard would hold fewer than 64
	// entries. Use 1 for an exact, global LRU order.
	Shards int
}

// MemoryStats are the counters of a Memory since it was created.
type MemoryStats struct {
	Hits        uint64 // Get (or GetMulti key) found a live entry
	Misses      uint64 // Get found nothing, or an expired entry
	Evictions   uint64 // live entries dropped to respect MaxEntries or MaxBytes
	Expirations uint64 // expired entries removed (on Get or Set)
	Entries     int    // entries held now, expired ones not yet removed included
	Bytes       int64  // key plus value bytes held now
}

// Memory is an in-process ObjectCache and BatchCache: a fixed number of
// shards, chosen by a seeded hash of the key (hash/maphash), each a
// least-recently-used list under its own mutex. Set evicts from the cold
// end of its shard while the shard is over its entry or byte budget. Get
// promotes an entry to the hot end unless it is already among the most
// recently promoted quarter of its shard's entries: a slightly approximate
// LRU (exact for shards of up to 3 entries) whose hits on hot keys write
// nothing but the shard's lock and counters, so parallel reads scale.
//
// Expiry is lazy: an entry's deadline is checked when it is read (an
// expired entry is a miss and is removed), and Set removes expired
// entries it finds at the cold end of the list. There is no goroutine per
// entry and no background goroutine, so a Memory needs no Close. Expired
// entries that are never read again are reclaimed as they age out of the
// LRU order.
//
// Values are copied on Set and on Get, so callers may reuse and mutate
// their slices: each Get of a hit makes exactly one allocation, the copy.
// Memory ignores ctx: none of its calls block for long.
type Memory struct {
	shards []memShard
	mask   uint64
	seed   maphash.Seed
	start  time.Time // monotonic base of deadlines
}

var (
	_ ObjectCache = (*Memory)(nil)
	_ BatchCache  = (*Memory)(nil)
)

// NewMemory returns an empty Memory. It fails with an error wrapping
// ErrInvalidConfig when a field of cfg is negative or Shards is absurdly
// large.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.MaxEntries < 0 || cfg.MaxBytes < 0 || cfg.Shards < 0 {
		return nil, fmt.Errorf("%w: negative MaxEntries, MaxBytes or Shards in %+v", ErrInvalidConfig, cfg)
	}
	if cfg.Shards > maxMemoryShards {
		return nil, fmt.Errorf("%w: Shards %d > %d", ErrInvalidConfig, cfg.Shards, maxMemoryShards)
	}
	maxEntries, maxBytes := int64(cfg.MaxEntries), cfg.MaxBytes
	if maxEntries == 0 && maxBytes == 0 {
		maxEntries, maxBytes = DefaultMemoryMaxEntries, DefaultMemoryMaxBytes
	}
	n := cfg.Shards
	if n == 0 {
		n = max(16, 4*runtime.GOMAXPROCS(0))
		for n > 1 && maxEntries > 0 && maxEntries/int64(n) < 64 {
			n /= 2
		}
	}
	n = 1 << bits.Len(uint(n-1)) // round up to a power of two
	perEntries, perBytes := int64(math.MaxInt64), int64(math.MaxInt64)
	if maxEntries > 0 {
		perEntries = (maxEntries + int64(n) - 1) / int64(n)
	}
	if maxBytes > 0 {
		perBytes = max(1, maxBytes/int64(n))
	}
	m := &Memory{
		shards: make([]memShard, n),
		mask:   uint64(n - 1),
		seed:   maphash.MakeSeed(),
		start:  time.Now(),
	}
	for i := range m.shards {
		s := &m.shards[i]
		s.maxEntries, s.maxBytes = perEntries, perBytes
		s.m = make(map[string]int32)
		s.entries = make([]memEntry, 1, 16) // entries[0] is the list's sentinel
	}
	return m, nil
}

// Get returns a copy of the value of key, or ErrMiss.
func (m *Memory) Get(_ context.Context, key string) ([]byte, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	v, ok := m.shard(key).get(key, m)
	if !ok {
		return nil, ErrMiss
	}
	return copyValue(v), nil
}

// Set stores a copy of value under key for ttl (0: until evicted). A key
// plus value larger than the per-shard byte budget fails with ErrTooLarge
// and removes any older value of key, so that no stale value survives a
// failed write.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if ttl < 0 {
		return ErrInvalidTTL
	}
	s := m.shard(key)
	if int64(len(key))+int64(len(value)) > s.maxBytes {
		s.delete(key)
		return fmt.Errorf("%w: %d bytes of key and value, shard budget %d", ErrTooLarge, len(key)+len(value), s.maxBytes)
	}
	s.set(key, copyValue(value), m.deadline(ttl), m)
	return nil
}

// Delete removes keys; missing keys are not an error. An invalid key fails
// with ErrInvalidKey before anything is deleted.
func (m *Memory) Delete(_ context.Context, keys ...string) error {
	for _, k := range keys {
		if err := CheckKey(k); err != nil {
			return err
		}
	}
	for _, k := range keys {
		m.shard(k).delete(k)
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
		if v, ok := m.shard(k).get(k, m); ok {
			out[k] = copyValue(v)
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
		if err := CheckKey(k); err != nil {
			return err
		}
		if s := m.shard(k); int64(len(k))+int64(len(v)) > s.maxBytes {
			return fmt.Errorf("%w: %d bytes of key and value, shard budget %d", ErrTooLarge, len(k)+len(v), s.maxBytes)
		}
	}
	d := m.deadline(ttl)
	for k, v := range items {
		m.shard(k).set(k, copyValue(v), d, m)
	}
	return nil
}

// Stats returns the counters summed over the shards. The sum is not one
// atomic snapshot: each shard is read under its own lock.
func (m *Memory) Stats() MemoryStats {
	var st MemoryStats
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		st.Hits += s.hits
		st.Misses += s.misses
		st.Evictions += s.evictions
		st.Expirations += s.expirations
		st.Entries += len(s.m)
		st.Bytes += s.bytes
		s.mu.Unlock()
	}
	return st
}

func (m *Memory) shard(key string) *memShard {
	return &m.shards[maphash.String(m.seed, key)&m.mask]
}

// now is the monotonic time since m was created, in nanoseconds.
func (m *Memory) now() int64 { return int64(time.Since(m.start)) }

// deadline returns the expiry of an entry set now for ttl; 0 means never.
func (m *Memory) deadline(ttl time.Duration) int64 {
	if ttl == 0 {
		return 0
	}
	now := m.now()
	if int64(ttl) > math.MaxInt64-now {
		return 0
	}
	return now + int64(ttl) // > 0, since now >= 0 and ttl > 0
}

func copyValue(v []byte) []byte {
	c := make([]byte, len(v))
	copy(c, v)
	return c
}

// memEntry is a node of a shard's intrusive doubly linked LRU list, kept
// in a slice and linked by index: no allocation per entry beyond the slice
// growing, and freed nodes are reused through a free list.
type memEntry struct {
	key        string
	value      []byte // never mutated once stored: readers copy it outside the lock
	deadline   int64  // Memory.now() at or after which the entry is expired; 0: never
	gen        uint64 // the shard's gen when the entry was last put at the hot end
	prev, next int32
}

type memShard struct {
	mu          sync.Mutex
	m           map[string]int32
	entries     []memEntry // [0] is the sentinel: next is the most recent, prev the least
	free        int32      // head of the free list (linked by next), 0 when empty
	gen         uint64     // counts links at the hot end
	bytes       int64
	maxEntries  int64
	maxBytes    int64
	hits        uint64
	misses      uint64
	evictions   uint64
	expirations uint64
	_           [64]byte // keep neighbouring shards' locks off this cache line
}

func (s *memShard) get(key string, m *Memory) ([]byte, bool) {
	s.mu.Lock()
	i, ok := s.m[key]
	if !ok {
		s.misses++
		s.mu.Unlock()
		return nil, false
	}
	e := &s.entries[i]
	if e.deadline != 0 && m.now() >= e.deadline {
		s.remove(i)
		s.misses++
		s.expirations++
		s.mu.Unlock()
		return nil, false
	}
	// Promote only entries outside the hottest quarter of the list: the
	// entries ahead of e were all linked after it, so fewer than
	// len/4 of them means e is already near the hot end. Skipping the
	// relink keeps a hit from writing list nodes that other cores read,
	// which is what lets parallel reads scale. Shards of fewer than 4
	// entries keep an exact LRU order.
	if s.gen-e.gen >= uint64(len(s.m)>>2) {
		s.moveToFront(i)
	}
	v := e.value
	s.hits++
	s.mu.Unlock()
	return v, true
}

func (s *memShard) set(key string, value []byte, deadline int64, m *Memory) {
	size := int64(len(key)) + int64(len(value))
	s.mu.Lock()
	if i, ok := s.m[key]; ok {
		e := &s.entries[i]
		s.bytes += int64(len(value)) - int64(len(e.value))
		e.value, e.deadline = value, deadline
		s.moveToFront(i)
	} else {
		i := s.alloc()
		s.entries[i] = memEntry{key: key, value: value, deadline: deadline}
		s.link(i)
		s.m[key] = i
		s.bytes += size
	}
	s.reclaim(m)
	s.mu.Unlock()
}

// reclaim removes a few expired entries from the cold end, then evicts
// from the cold end while the shard is over budget. The entry just set is
// at the hot end and fits the byte budget on its own, so it survives.
func (s *memShard) reclaim(m *Memory) {
	var now int64 = -1
	for range 2 {
		t := s.entries[0].prev
		if t == 0 || s.entries[0].next == t {
			break
		}
		d := s.entries[t].deadline
		if d == 0 {
			break
		}
		if now < 0 {
			now = m.now()
		}
		if now < d {
			break
		}
		s.remove(t)
		s.expirations++
	}
	for int64(len(s.m)) > s.maxEntries || s.bytes > s.maxBytes {
		t := s.entries[0].prev
		if t == 0 {
			break
		}
		s.remove(t)
		s.evictions++
	}
}

func (s *memShard) delete(key string) {
	s.mu.Lock()
	if i, ok := s.m[key]; ok {
		s.remove(i)
	}
	s.mu.Unlock()
}

func (s *memShard) alloc() int32 {
	if i := s.free; i != 0 {
		s.free = s.entries[i].next
		return i
	}
	if len(s.entries) >= math.MaxInt32 {
		panic("cache: memory shard over 2^31 entries")
	}
	s.entries = append(s.entries, memEntry{})
	return int32(len(s.entries) - 1)
}

// remove unlinks entry i, forgets its key and frees its node.
func (s *memShard) remove(i int32) {
	e := &s.entries[i]
	s.unlink(i)
	delete(s.m, e.key)
	s.bytes -= int64(len(e.key)) + int64(len(e.value))
	*e = memEntry{next: s.free}
	s.free = i
}

func (s *memShard) link(i int32) {
	head := &s.entries[0]
	e := &s.entries[i]
	s.gen++
	e.gen = s.gen
	e.prev, e.next = 0, head.next
	s.entries[head.next].prev = i
	head.next = i
}

func (s *memShard) unlink(i int32) {
	e := &s.entries[i]
	s.entries[e.prev].next = e.next
	s.entries[e.next].prev = e.prev
}

func (s *memShard) moveToFront(i int32) {
	s.unlink(i)
	s.link(i)
}
