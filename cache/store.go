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
// table of atomic pointers to immutable entries (table), which writers,
// serialized by the shard's mutex, replace rather than mutate. Hits and
// misses are counted in per-P stripes (stripes); a hit is reported to the
// shard's eviction policy (sketch frequency, list order) only for one hit
// in accessSample of each stripe, and only when the shard's lock is free,
// as Caffeine's lossy read buffers do.
//
// It is kept rather than built on github.com/maypok86/otter/v2 because,
// measured side by side (bench/impls/localtier.go, BENCHMARKS.md "Local
// tier"), it has the higher hit ratio on Zipf and scan traces and the
// faster serial hit and miss + set; otter holds an entry in about half
// the memory. Otter also cannot bound entries and bytes at once, has no LRU,
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
				sh.access(e.node)
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
			sh.remove(e.node)
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
// when size exceeds the per-shard byte budget.
func (s *store[V]) set(key string, v V, size int64, ttl time.Duration) bool {
	h, sh := s.hash(key)
	if size > sh.maxBytes {
		sh.mu.Lock()
		if i := sh.find(h, key); i != 0 {
			sh.remove(i)
		}
		sh.mu.Unlock()
		return false
	}
	d := s.deadline(ttl)
	sh.mu.Lock()
	sh.put(h, key, v, size, d, sh.find(h, key), s)
	sh.mu.Unlock()
	return true
}

// add stores v only when key holds no live value; it returns false
// otherwise, or when size exceeds the per-shard byte budget.
func (s *store[V]) add(key string, v V, size int64, ttl time.Duration) bool {
	h, sh := s.hash(key)
	if size > sh.maxBytes {
		return false
	}
	d := s.deadline(ttl)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.lookup(h, key); e != nil {
		if e.deadline == 0 || s.now() < e.deadline {
			return false
		}
		sh.remove(e.node)
		sh.expirations++
	}
	sh.put(h, key, v, size, d, 0, s)
	return true
}

// compareAndSwap stores v only when key holds a live value for which
// same(old) is true; it returns false otherwise, or when size exceeds the
// per-shard byte budget (the old value is then kept). same is called
// under the shard's lock and must not use s.
func (s *store[V]) compareAndSwap(key string, same func(old V) bool, v V, size int64, ttl time.Duration) bool {
	h, sh := s.hash(key)
	if size > sh.maxBytes {
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
		sh.remove(e.node)
		sh.expirations++
		return false
	}
	if !same(e.value) {
		return false
	}
	sh.put(h, key, v, size, d, e.node, s)
	return true
}

func (s *store[V]) delete(key string) {
	h, sh := s.hash(key)
	sh.mu.Lock()
	if i := sh.find(h, key); i != 0 {
		sh.remove(i)
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

// The lists of a shard. Their sentinels are nodes[0:numLists]; real nodes
// have indices >= numLists, so index 0 also means "none".
const (
	listWindow    = 0 // W-TinyLFU's admission window; PolicyLRU's only list
	listProbation = 1
	listProtected = 2
	numLists      = 3
)

// entry is a stored value. Entries are immutable once published in a
// table: readers use them without a lock.
type entry[V any] struct {
	key      string
	hash     uint64
	value    V
	deadline int64  // store.now() at or after which the entry is expired; 0: never
	ver      uint64 // its node's ver when published
	node     int32  // the shard's node of the key
}

// node is the policy state of an entry, guarded by the shard's lock,
// linked by index into one of the shard's intrusive doubly linked lists:
// no allocation per node beyond the slice growing, and freed nodes are
// reused through a free list (linked by next). Nodes hold no pointer, so
// the garbage collector does not scan them: the entry of node i is the
// one in the table with node i and the node's ver.
type node[V any] struct {
	hash     uint64
	deadline int64
	size     int64
	ver      uint64 // from shard.vers, 0 when free: never reused
	gen      uint64 // its list's gen when the node was linked at the head
	prev     int32
	next     int32
	list     uint8
}

// list is the bookkeeping of one list of a shard: its sentinel's next is
// the most recent node, its prev the least.
type list struct {
	len, bytes       int64
	maxLen, maxBytes int64
	gen              uint64 // counts links at the head
}

func (l *list) over() bool { return l.len > l.maxLen || l.bytes > l.maxBytes }

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
	used        int // slots of tab not nil: entries and tombstones
	nodes       []node[V]
	free        int32
	lists       [numLists]list
	vers        uint64 // last node ver handed out
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

// table is an open-addressing hash table with linear probing, indexed by
// the key hash. Readers load slots atomically without a lock; writers,
// under the shard's lock, store new entries, the store's tomb for a
// deletion in the middle of a probe chain (nil at its end), and replace the
// whole table to grow or drop tombstones. At most 3/4 of the slots are
// used, so every probe ends at a nil slot. A slot keeps the hash of its
// entry beside the pointer, so that probing past other keys reads no
// entry; the hash is only a hint (it may be stale while a writer replaces
// the slot), the entry's own hash and key decide.
type table[V any] struct {
	slots []slot[V]
	mask  uint64
}

type slot[V any] struct {
	hash atomic.Uint64
	e    atomic.Pointer[entry[V]]
}

func (sl *slot[V]) store(e *entry[V]) {
	sl.hash.Store(e.hash)
	sl.e.Store(e)
}

func newTable[V any](n int) *table[V] {
	return &table[V]{slots: make([]slot[V], n), mask: uint64(n - 1)}
}

// lookup returns the entry of key, expired or not, or nil.
func (sh *shard[V]) lookup(h uint64, key string) *entry[V] {
	t := sh.tab.Load()
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		sl := &t.slots[i]
		e := sl.e.Load()
		if e == nil {
			return nil
		}
		if sl.hash.Load() == h && e.hash == h && e != sh.tomb && e.key == key {
			return e
		}
	}
}

// slot returns the slot index of key in tab, or -1. Under the lock.
func (sh *shard[V]) slot(h uint64, key string) int {
	t := sh.tab.Load()
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		e := t.slots[i].e.Load()
		if e == nil {
			return -1
		}
		if e.hash == h && e != sh.tomb && e.key == key {
			return int(i)
		}
	}
}

// holds reports whether e, found without the lock, is still the current
// entry of its key: its node may have been freed and reused since, or
// the shard cleared. Under the lock.
func (sh *shard[V]) holds(e *entry[V]) bool {
	return int(e.node) < len(sh.nodes) && sh.nodes[e.node].ver == e.ver
}

// find returns the node of key, or 0. Under the lock.
func (sh *shard[V]) find(h uint64, key string) int32 {
	if e := sh.lookup(h, key); e != nil {
		return e.node
	}
	return 0
}

// publish puts e in tab, replacing the entry of its key if there is one.
func (sh *shard[V]) publish(e *entry[V]) {
	t := sh.tab.Load()
	if i := sh.slot(e.hash, e.key); i >= 0 {
		t.slots[i].store(e)
		return
	}
	if (sh.used+1)*4 > len(t.slots)*3 {
		t = sh.rehash(int(sh.count) + 1)
	}
	for i := e.hash & t.mask; ; i = (i + 1) & t.mask {
		switch t.slots[i].e.Load() {
		case nil:
			sh.used++
			fallthrough
		case sh.tomb:
			t.slots[i].store(e)
			return
		}
	}
}

// unpublish removes the entry of node i from tab.
func (sh *shard[V]) unpublish(h uint64, i int32) {
	t := sh.tab.Load()
	j := h & t.mask
	for {
		e := t.slots[j].e.Load()
		if e == nil {
			return
		}
		if e.node == i && e.hash == h && e != sh.tomb {
			break
		}
		j = (j + 1) & t.mask
	}
	if t.slots[(j+1)&t.mask].e.Load() != nil {
		t.slots[j].store(sh.tomb)
		return
	}
	// The end of a probe chain: no key is found through this slot, nor
	// through the tombstones just before it.
	t.slots[j].e.Store(nil)
	sh.used--
	for k := (j - 1) & t.mask; t.slots[k].e.Load() == sh.tomb; k = (k - 1) & t.mask {
		t.slots[k].e.Store(nil)
		sh.used--
	}
}

// rehash publishes a table with the live entries of tab, sized for n
// entries at half load or less, and returns it.
func (sh *shard[V]) rehash(n int) *table[V] {
	old := sh.tab.Load()
	t := newTable[V](int(max(8, ceilPow2(int64(2*n)))))
	used := 0
	for i := range old.slots {
		e := old.slots[i].e.Load()
		if e == nil || e == sh.tomb {
			continue
		}
		j := e.hash & t.mask
		for t.slots[j].e.Load() != nil {
			j = (j + 1) & t.mask
		}
		t.slots[j].store(e)
		used++
	}
	sh.used = used
	sh.tab.Store(t)
	return t
}

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
	sh.reset()
}

// reset empties the shard, keeping its counters and limits.
func (sh *shard[V]) reset() {
	sh.tab.Store(newTable[V](8))
	sh.used = 0
	sh.nodes = make([]node[V], numLists, 16)
	for i := range numLists {
		sh.nodes[i].prev, sh.nodes[i].next = int32(i), int32(i)
		l := &sh.lists[i]
		l.len, l.bytes = 0, 0
	}
	sh.free, sh.count, sh.bytes = 0, 0, 0
}

// percent returns max(1, p% of n) without overflow.
func percent(n, p int64) int64 {
	return max(1, n/100*p+n%100*p/100)
}

// access records a hit on node i: its frequency, and its move towards
// the hot end of its list (probation entries move to protected).
func (sh *shard[V]) access(i int32) {
	if sh.lru {
		sh.touch(i)
		return
	}
	n := &sh.nodes[i]
	sh.sketch.increment(n.hash)
	if n.list != listProbation {
		sh.touch(i)
		return
	}
	sh.unlink(i)
	sh.link(i, listProtected)
	pr := &sh.lists[listProtected]
	for pr.len > 1 && pr.over() {
		t := sh.nodes[listProtected].prev
		if t == i {
			break
		}
		sh.unlink(t)
		sh.link(t, listProbation)
	}
}

// touch moves node i to the head of its list unless it is already among
// the most recently linked quarter of it: the nodes ahead of i were all
// linked after it, so fewer than len/4 links since means i is near the
// head. Skipping the relink keeps most hits on hot keys from writing list
// nodes. Lists of fewer than 4 nodes keep an exact order.
func (sh *shard[V]) touch(i int32) {
	n := &sh.nodes[i]
	l := &sh.lists[n.list]
	if l.gen-n.gen >= uint64(l.len>>2) {
		li := n.list
		sh.unlink(i)
		sh.link(i, li)
	}
}

// put stores v as the node i of key (a new node when i is 0), then
// reclaims and evicts. The node just put survives.
func (sh *shard[V]) put(h uint64, key string, v V, size, deadline int64, i int32, s *store[V]) {
	fresh := i == 0
	if fresh {
		i = sh.alloc()
	}
	n := &sh.nodes[i]
	sh.vers++
	n.hash, n.deadline, n.ver = h, deadline, sh.vers
	sh.publish(&entry[V]{key: key, hash: h, value: v, deadline: deadline, ver: n.ver, node: i})
	if fresh {
		n.size = size
		sh.link(i, listWindow)
		sh.count++
		sh.bytes += size
		if !sh.lru {
			sh.sketch.ensure(sh.count)
			sh.sketch.increment(h)
		}
	} else {
		d := size - n.size
		sh.lists[n.list].bytes += d
		sh.bytes += d
		n.size = size
		sh.access(i)
	}
	sh.reclaim(i, s)
	sh.evict(i)
}

// reclaim removes a few expired entries from the cold end of each list.
func (sh *shard[V]) reclaim(keep int32, s *store[V]) {
	var now int64 = -1
	for li := range int32(numLists) {
		for range 2 {
			t := sh.nodes[li].prev
			if t < numLists || t == keep {
				break
			}
			d := sh.nodes[t].deadline
			if d == 0 {
				break
			}
			if now < 0 {
				now = s.now()
			}
			if now < d {
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
func (sh *shard[V]) evict(keep int32) {
	if !sh.lru {
		w := &sh.lists[listWindow]
		for w.len > 1 && w.over() {
			c := sh.nodes[listWindow].prev
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
			if v == 0 || sh.sketch.estimate(sh.nodes[c].hash) <= sh.sketch.estimate(sh.nodes[v].hash) {
				v = c
			}
			sh.remove(v)
			sh.evictions++
			sh.evicted.Inc()
		}
	}
	for sh.over() {
		v := sh.victim(keep, keep)
		if v == 0 {
			break
		}
		sh.remove(v)
		sh.evictions++
		sh.evicted.Inc()
	}
}

// victim returns the coldest node of probation, else protected, else the
// window, skipping a and b; 0 when there is none.
func (sh *shard[V]) victim(a, b int32) int32 {
	for _, li := range [...]int32{listProbation, listProtected, listWindow} {
		for t := sh.nodes[li].prev; t >= numLists; t = sh.nodes[t].prev {
			if t != a && t != b {
				return t
			}
		}
	}
	return 0
}

func (sh *shard[V]) alloc() int32 {
	if i := sh.free; i != 0 {
		sh.free = sh.nodes[i].next
		return i
	}
	if len(sh.nodes) >= math.MaxInt32 {
		panic("cache: memory shard over 2^31 entries")
	}
	var zero node[V]
	sh.nodes = append(sh.nodes, zero)
	return int32(len(sh.nodes) - 1)
}

// remove unlinks node i, unpublishes its entry and frees it.
func (sh *shard[V]) remove(i int32) {
	n := &sh.nodes[i]
	sh.unlink(i)
	sh.unpublish(n.hash, i)
	sh.count--
	sh.bytes -= n.size
	*n = node[V]{next: sh.free}
	sh.free = i
}

// link puts node i at the head of list li.
func (sh *shard[V]) link(i int32, li uint8) {
	l := &sh.lists[li]
	head := &sh.nodes[li]
	n := &sh.nodes[i]
	l.gen++
	l.len++
	l.bytes += n.size
	n.gen, n.list = l.gen, li
	n.prev, n.next = int32(li), head.next
	sh.nodes[head.next].prev = i
	head.next = i
}

// unlink takes node i out of its list.
func (sh *shard[V]) unlink(i int32) {
	n := &sh.nodes[i]
	l := &sh.lists[n.list]
	l.len--
	l.bytes -= n.size
	sh.nodes[n.prev].next = n.next
	sh.nodes[n.next].prev = n.prev
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
