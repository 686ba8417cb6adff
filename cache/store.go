package cache

import (
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/observe"
)

// store is the sharded, bounded, expiring map behind Memory and the typed
// local tier: a fixed number of shards, chosen by a seeded hash of the key
// (hash/maphash), each evicting by its own policy (policy.go). Expiry is
// lazy, as Memory documents.
//
// Reads take no lock and write no shared memory on their common path, so
// that they scale with cores: a shard's index is an open-addressing hash
// table of atomic pointers to entries (table.go) whose key, value and
// deadline never change: writers, serialized by the shard's mutex, replace
// an entry rather than mutate them. An entry is also its own node in the
// policy's lists (64 bytes for Memory's string values, one allocation
// beside the value's copy). Hits and
// misses are counted in per-P stripes (stripes); a hit is reported to the
// shard's eviction policy (sketch frequency, list order) only for one hit
// in accessSample of each stripe, and only when the shard's lock is free,
// as Caffeine's lossy read buffers do.
//
// It is kept rather than built on github.com/maypok86/otter/v2 because,
// measured side by side (bench/impls/localtier.go, BENCHMARKS.md "Local
// tier"), it has the higher hit ratio on Zipf and scan traces, the faster
// serial hit and miss + set, and holds an entry in no more memory. Otter
// also cannot bound entries and bytes at once, has no LRU,
// and runs goroutines of its own, which Memory promises not to.
type store[V any] struct {
	shards        []shard[V]
	mask          uint64
	seed          maphash.Seed
	start         time.Time // monotonic base of deadlines
	shardMaxBytes int64
	tomb          *entry[V] // marks a deleted slot of a table
	stripes       stripes
}

// newStore returns an empty store bounded as cfg says (same defaults and
// validation as NewMemory, errors wrapping ErrInvalidConfig).
func newStore[V any](cfg MemoryConfig) (*store[V], error) {
	if cfg.MaxEntries < 0 || cfg.MaxBytes < 0 || cfg.Shards < 0 {
		return nil, fmt.Errorf("%w: negative MaxEntries, MaxBytes or Shards in %+v", ErrInvalidConfig, cfg)
	}
	if cfg.Shards > maxMemoryShards {
		return nil, fmt.Errorf("%w: Shards %d > %d", ErrInvalidConfig, cfg.Shards, maxMemoryShards)
	}
	if cfg.Policy != PolicyTinyLFU && cfg.Policy != PolicyLRU {
		return nil, fmt.Errorf("%w: unknown %v", ErrInvalidConfig, cfg.Policy)
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
	evicted := observe.NewCounter(cfg.Meter, observe.CacheEvictions)
	s := &store[V]{
		shards:        make([]shard[V], n),
		mask:          uint64(n - 1),
		seed:          maphash.MakeSeed(),
		start:         time.Now(),
		shardMaxBytes: perBytes,
		tomb:          new(entry[V]),
	}
	s.stripes.init()
	for i := range s.shards {
		s.shards[i].seed = s.seed
		s.shards[i].init(perEntries, perBytes, cfg.Policy, s.tomb)
		s.shards[i].evicted = evicted
	}
	return s, nil
}

// hash returns the hash of key and its shard. The shard is chosen by the
// top 16 bits of the hash, and the slot of a shard's table by the low
// bits: the keys of a shard must not all share their home slots' low bits.
func (s *store[V]) hash(key string) (uint64, *shard[V]) {
	h := maphash.String(s.seed, key)
	return h, &s.shards[(h>>48)&s.mask]
}

// now is the monotonic time since s was created, in nanoseconds.
func (s *store[V]) now() int64 { return int64(time.Since(s.start)) }

// deadline returns the expiry of an entry set now for ttl; 0 means never.
func (s *store[V]) deadline(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	now := s.now()
	if int64(ttl) > math.MaxInt64-now {
		return 0
	}
	return now + int64(ttl) // > 0, since now >= 0 and ttl > 0
}

// get returns the live value of key (an expired entry is a miss and is
// removed), counting a hit or a miss.
func (s *store[V]) get(key string) (V, bool) {
	h, sh := s.hash(key)
	e := sh.lookup(h, key)
	ref := s.stripes.get()
	st := ref.s
	if e != nil && (e.deadline == 0 || s.now() < e.deadline) {
		st.hits.Store(st.hits.Load() + 1) // st is ours alone until put back
		st.n++
		if st.n&sh.sampleMask == 0 && sh.mu.TryLock() {
			if sh.holds(e) {
				sh.access(h, e)
			}
			sh.mu.Unlock()
		}
		s.stripes.put(ref)
		return e.value, true
	}
	st.misses.Store(st.misses.Load() + 1)
	s.stripes.put(ref)
	if e != nil {
		sh.mu.Lock()
		if sh.holds(e) {
			sh.remove(e)
			sh.expirations++
		}
		sh.mu.Unlock()
	}
	var zero V
	return zero, false
}

// accessSample is how many hits of a stripe make one report to the
// eviction policy of a shard of at least sampleMinEntries entries; smaller
// shards see every hit. Reporting every hit writes the shard's lock, list
// nodes and sketch counters, cache lines that then bounce between the
// cores reading the shard; sampling keeps frequencies in proportion and
// costs little hit ratio (see TestHitRatio). A power of two.
const (
	accessSample     = 8
	sampleMinEntries = 64
)

// set stores v under key for ttl (0: no expiry); size is the bytes charged
// against MaxBytes. It returns false, and removes any older value of key,
// when size exceeds maxSize.
func (s *store[V]) set(key string, v V, size int64, ttl time.Duration) bool {
	h, sh := s.hash(key)
	if size > s.maxSize() {
		sh.mu.Lock()
		if e := sh.lookup(h, key); e != nil {
			sh.remove(e)
		}
		sh.mu.Unlock()
		return false
	}
	d := s.deadline(ttl)
	sh.mu.Lock()
	sh.put(h, key, v, size, d, sh.lookup(h, key), s)
	sh.mu.Unlock()
	return true
}

// maxSize is the most bytes one entry may be charged: the per-shard
// budget, and at most maxEntrySize.
func (s *store[V]) maxSize() int64 { return min(s.shardMaxBytes, maxEntrySize) }

// add stores v only when key holds no live value; it returns false
// otherwise, or when size exceeds the per-shard byte budget.
func (s *store[V]) add(key string, v V, size int64, ttl time.Duration) bool {
	h, sh := s.hash(key)
	if size > s.maxSize() {
		return false
	}
	d := s.deadline(ttl)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.lookup(h, key); e != nil {
		if e.deadline == 0 || s.now() < e.deadline {
			return false
		}
		sh.remove(e)
		sh.expirations++
	}
	sh.put(h, key, v, size, d, nil, s)
	return true
}

// compareAndSwap stores v only when key holds a live value for which
// same(old) is true; it returns false otherwise, or when size exceeds the
// per-shard byte budget (the old value is then kept). same is called
// under the shard's lock and must not use s.
func (s *store[V]) compareAndSwap(key string, same func(old V) bool, v V, size int64, ttl time.Duration) bool {
	h, sh := s.hash(key)
	if size > s.maxSize() {
		return false
	}
	d := s.deadline(ttl)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.lookup(h, key)
	if e == nil {
		return false
	}
	if e.deadline != 0 && s.now() >= e.deadline {
		sh.remove(e)
		sh.expirations++
		return false
	}
	if !same(e.value) {
		return false
	}
	sh.put(h, key, v, size, d, e, s)
	return true
}

func (s *store[V]) delete(key string) {
	h, sh := s.hash(key)
	sh.mu.Lock()
	if e := sh.lookup(h, key); e != nil {
		sh.remove(e)
	}
	sh.mu.Unlock()
}

// clear removes every entry; counters other than Entries and Bytes are
// kept, and removed entries are not counted as evictions.
func (s *store[V]) clear() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.reset()
		sh.mu.Unlock()
	}
}

// stats returns the counters summed over the shards. The sum is not one
// atomic snapshot: each shard is read under its own lock.
func (s *store[V]) stats() MemoryStats {
	var st MemoryStats
	st.Hits, st.Misses = s.stripes.sum()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Evictions += sh.evictions
		st.Expirations += sh.expirations
		st.Entries += int(sh.count)
		st.Bytes += sh.bytes
		sh.mu.Unlock()
	}
	return st
}

// The lists of a shard. listDead marks an entry no longer in the shard
// (removed, replaced or cleared), so that a reader holding it does not
// report a hit on it to the policy.
const (
	listWindow    = 0 // W-TinyLFU's admission window; PolicyLRU's only list
	listProbation = 1
	listProtected = 2
	numLists      = 3
	listDead      = 3
)

// maxEntrySize bounds the bytes charged for one entry (key plus value), so
// that an entry's size fits beside its list in entry.meta.
const maxEntrySize = 1<<30 - 1

// entry is a stored value and its place in the eviction policy, one
// allocation of 64 bytes for a string value. key, value and deadline are
// set before the entry is published in a table and never change: readers
// use them without a lock. The rest is the policy's, guarded by the
// shard's lock, and never read by readers, so that it may change under
// them: the entry is a node of one of the shard's intrusive doubly linked
// lists. A new value of a key is a new entry that takes the old one's
// place in its list.
//
// The key's hash is not kept (8 bytes an entry): readers find it in the
// table's tags, and the shard recomputes it from the key when it evicts
// or removes an entry, a few nanoseconds on a path that costs hundreds.
type entry[V any] struct {
	key      string
	value    V
	deadline int64 // store.now() at or after which the entry is expired; 0: never

	prev, next *entry[V]
	meta       uint32 // size<<2 | list
	gen        uint32 // its list's gen when it was linked at the head
}

func (e *entry[V]) list() uint8     { return uint8(e.meta & 3) }
func (e *entry[V]) size() int64     { return int64(e.meta >> 2) }
func (e *entry[V]) setList(l uint8) { e.meta = e.meta&^3 | uint32(l) }

// list is one list of a shard: its sentinel's next is the most recent
// entry, its prev the least.
type list[V any] struct {
	head             entry[V]
	len, bytes       int64
	maxLen, maxBytes int64
	gen              uint32 // counts links at the head, wrapping
}

func (l *list[V]) over() bool { return l.len > l.maxLen || l.bytes > l.maxBytes }

type shard[V any] struct {
	// Read by every lookup without the lock: kept on cache lines that the
	// lock and the writers' bookkeeping do not share, so that hits on
	// other cores do not miss on them after each write.
	tab        atomic.Pointer[table[V]]
	tomb       *entry[V]
	sampleMask uint64 // accessSample-1, or 0 for a small shard
	_          [64]byte

	mu          sync.Mutex // serializes writers and the policy state
	lru         bool
	seed        maphash.Seed            // the store's, to hash the key of an entry again
	hashFn      func(key string) uint64 // nil but in tests
	used        int                     // slots of tab not nil: entries and tombstones
	lists       [numLists]list[V]
	count       int64
	bytes       int64
	maxEntries  int64
	maxBytes    int64
	sketch      sketch
	evictions   uint64
	evicted     observe.Counter // evictions, reported to MemoryConfig.Meter
	expirations uint64
	_           [64]byte // keep the next shard's fields off these cache lines
}

// hashOf is the hash of key, as store.hash computes it, unless a test
// forces collisions through hashFn.
func (sh *shard[V]) hashOf(key string) uint64 {
	if sh.hashFn != nil {
		return sh.hashFn(key)
	}
	return maphash.String(sh.seed, key)
}

// holds reports whether e, found without the lock, is still an entry of
// the shard. Under the lock.
func (sh *shard[V]) holds(e *entry[V]) bool { return e.list() != listDead }

func (sh *shard[V]) init(maxEntries, maxBytes int64, p Policy, tomb *entry[V]) {
	sh.maxEntries, sh.maxBytes = maxEntries, maxBytes
	sh.lru = p == PolicyLRU
	sh.tomb = tomb
	if maxEntries >= sampleMinEntries {
		sh.sampleMask = accessSample - 1
	}
	w, pr, pb := &sh.lists[listWindow], &sh.lists[listProtected], &sh.lists[listProbation]
	pb.maxLen, pb.maxBytes = math.MaxInt64, math.MaxInt64
	if sh.lru {
		w.maxLen, w.maxBytes = maxEntries, maxBytes
		pr.maxLen, pr.maxBytes = math.MaxInt64, math.MaxInt64
	} else {
		w.maxLen, w.maxBytes = percent(maxEntries, 1), percent(maxBytes, 1)
		pr.maxLen = percent(maxEntries-w.maxLen, 80)
		pr.maxBytes = percent(maxBytes-w.maxBytes, 80)
		capacity := maxEntries
		if capacity == math.MaxInt64 {
			capacity = maxBytes / 256 // a guess; the sketch grows with the shard
		}
		sh.sketch.init(capacity)
	}
	for i := range sh.lists {
		h := &sh.lists[i].head
		h.prev, h.next = h, h
		h.setList(uint8(i))
	}
	sh.tab.Store(newTable[V](minTableSlots))
}

// reset empties the shard, keeping its counters and limits. The entries
// are marked dead, for readers that still hold them.
func (sh *shard[V]) reset() {
	for i := range sh.lists {
		l := &sh.lists[i]
		for e := l.head.next; e != &l.head; {
			next := e.next
			e.prev, e.next = nil, nil
			e.setList(listDead)
			e = next
		}
		l.head.prev, l.head.next = &l.head, &l.head
		l.len, l.bytes = 0, 0
	}
	sh.tab.Store(newTable[V](minTableSlots))
	sh.used = 0
	sh.count, sh.bytes = 0, 0
}

// percent returns max(1, p% of n) without overflow.
func percent(n, p int64) int64 {
	return max(1, n/100*p+n%100*p/100)
}

// access records a hit on e, whose key hashes to h: its frequency, and its
// move towards the hot end of its list (probation entries move to
// protected).
func (sh *shard[V]) access(h uint64, e *entry[V]) {
	if sh.lru {
		sh.touch(e)
		return
	}
	sh.sketch.increment(h)
	if e.list() != listProbation {
		sh.touch(e)
		return
	}
	sh.unlink(e)
	sh.link(e, listProtected)
	pr := &sh.lists[listProtected]
	for pr.len > 1 && pr.over() {
		t := pr.head.prev
		if t == e {
			break
		}
		sh.unlink(t)
		sh.link(t, listProbation)
	}
}

// touch moves e to the head of its list unless it is already among the
// most recently linked quarter of it: the entries ahead of e were all
// linked after it, so fewer than len/4 links since means e is near the
// head. Skipping the relink keeps most hits on hot keys from writing list
// links. Lists of fewer than 4 entries keep an exact order.
func (sh *shard[V]) touch(e *entry[V]) {
	li := e.list()
	l := &sh.lists[li]
	if int64(l.gen-e.gen) >= l.len>>2 {
		sh.unlink(e)
		sh.link(e, li)
	}
}

// put stores v as the entry of key, replacing old (nil: key has none),
// then reclaims and evicts. The entry just put survives.
func (sh *shard[V]) put(h uint64, key string, v V, size, deadline int64, old *entry[V], s *store[V]) {
	e := &entry[V]{key: key, value: v, deadline: deadline, meta: uint32(size) << 2}
	if old == nil {
		sh.publish(h, e)
		sh.link(e, listWindow)
		sh.count++
		sh.bytes += size
		if !sh.lru {
			sh.sketch.ensure(sh.count)
			sh.sketch.increment(h)
		}
	} else {
		li := old.list()
		e.setList(li)
		e.gen, e.prev, e.next = old.gen, old.prev, old.next
		e.prev.next, e.next.prev = e, e
		old.prev, old.next = nil, nil
		old.setList(listDead)
		sh.publish(h, e)
		d := size - old.size()
		sh.lists[li].bytes += d
		sh.bytes += d
		sh.access(h, e)
	}
	sh.reclaim(e, s)
	sh.evict(e)
}

// reclaim removes a few expired entries from the cold end of each list.
func (sh *shard[V]) reclaim(keep *entry[V], s *store[V]) {
	var now int64 = -1
	for li := range sh.lists {
		head := &sh.lists[li].head
		for range 2 {
			t := head.prev
			if t == head || t == keep || t.deadline == 0 {
				break
			}
			if now < 0 {
				now = s.now()
			}
			if now < t.deadline {
				break
			}
			sh.remove(t)
			sh.expirations++
		}
	}
}

func (sh *shard[V]) over() bool { return sh.count > sh.maxEntries || sh.bytes > sh.maxBytes }

// evict restores the shard's budgets, never evicting keep. Under
// W-TinyLFU, entries overflowing the window move to probation; while the
// shard is over budget, each such candidate competes with the coldest
// entry of the main area, and the one the sketch rates less frequent is
// evicted (the victim survives ties, which resists scans).
func (sh *shard[V]) evict(keep *entry[V]) {
	if !sh.lru {
		w := &sh.lists[listWindow]
		for w.len > 1 && w.over() {
			c := w.head.prev
			if c == keep {
				sh.unlink(c)
				sh.link(c, listWindow)
				continue
			}
			sh.unlink(c)
			sh.link(c, listProbation)
			if !sh.over() {
				continue
			}
			v := sh.victim(c, keep)
			if v == nil || sh.sketch.estimate(sh.hashOf(c.key)) <= sh.sketch.estimate(sh.hashOf(v.key)) {
				v = c
			}
			sh.remove(v)
			sh.evictions++
			sh.evicted.Inc()
		}
	}
	for sh.over() {
		v := sh.victim(keep, keep)
		if v == nil {
			break
		}
		sh.remove(v)
		sh.evictions++
		sh.evicted.Inc()
	}
}

// victim returns the coldest entry of probation, else protected, else the
// window, skipping a and b; nil when there is none.
func (sh *shard[V]) victim(a, b *entry[V]) *entry[V] {
	for _, li := range [...]int{listProbation, listProtected, listWindow} {
		head := &sh.lists[li].head
		for t := head.prev; t != head; t = t.prev {
			if t != a && t != b {
				return t
			}
		}
	}
	return nil
}

// remove unlinks e, unpublishes it and marks it dead.
func (sh *shard[V]) remove(e *entry[V]) {
	sh.unlink(e)
	sh.unpublish(sh.hashOf(e.key), e)
	sh.count--
	sh.bytes -= e.size()
	e.prev, e.next = nil, nil
	e.setList(listDead)
}

// link puts e at the head of list li.
func (sh *shard[V]) link(e *entry[V], li uint8) {
	l := &sh.lists[li]
	l.gen++
	l.len++
	l.bytes += e.size()
	e.gen = l.gen
	e.setList(li)
	e.prev, e.next = &l.head, l.head.next
	l.head.next.prev = e
	l.head.next = e
}

// unlink takes e out of its list.
func (sh *shard[V]) unlink(e *entry[V]) {
	l := &sh.lists[e.list()]
	l.len--
	l.bytes -= e.size()
	e.prev.next = e.next
	e.next.prev = e.prev
}

// stripes counts hits and misses without a shared cache line: a sync.Pool
// hands each P, almost always, the same stripe, which no other goroutine
// writes while it is taken. Every stripe ever made stays in all, so sum
// sees every count; a stripe whose pool handle the garbage collector
// dropped goes back to free, to be handed out again.
type stripes struct {
	pool sync.Pool // of *stripeRef
	reg  *stripeReg
}

type stripeReg struct {
	mu   sync.Mutex
	all  []*stripe
	free []*stripe
}

// stripe is 64 bytes, a cache line of its own (the allocator aligns
// 64-byte objects to 64 bytes).
type stripe struct {
	hits   atomic.Uint64
	misses atomic.Uint64
	n      uint64 // hits since made, for sampling; only the holder uses it
	reg    *stripeReg
	_      [32]byte
}

type stripeRef struct{ s *stripe }

func (ss *stripes) init() {
	reg := &stripeReg{}
	ss.reg = reg
	ss.pool.New = func() any {
		reg.mu.Lock()
		var st *stripe
		if n := len(reg.free); n > 0 {
			st, reg.free = reg.free[n-1], reg.free[:n-1]
		} else {
			st = &stripe{reg: reg}
			reg.all = append(reg.all, st)
		}
		reg.mu.Unlock()
		ref := &stripeRef{st}
		runtime.AddCleanup(ref, releaseStripe, st)
		return ref
	}
}

func releaseStripe(st *stripe) {
	st.reg.mu.Lock()
	st.reg.free = append(st.reg.free, st)
	st.reg.mu.Unlock()
}

func (ss *stripes) get() *stripeRef { return ss.pool.Get().(*stripeRef) }

func (ss *stripes) put(r *stripeRef) { ss.pool.Put(r) }

// sum returns the hits and misses counted so far.
func (ss *stripes) sum() (hits, misses uint64) {
	ss.reg.mu.Lock()
	defer ss.reg.mu.Unlock()
	for _, st := range ss.reg.all {
		hits += st.hits.Load()
		misses += st.misses.Load()
	}
	return hits, misses
}
