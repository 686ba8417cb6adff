package cache

import (
	"math"
	"sync/atomic"
)

// table is the index of a shard: an open-addressing hash table with
// linear probing. Readers load slots atomically without a lock; writers,
// under the shard's lock, store new entries, the store's tomb for a
// deletion in the middle of a probe chain (nil at its end), and replace
// the whole table to grow or drop tombstones. At most 3/4 of the slots are
// used, so every probe ends at a nil slot.
//
// A slot is 12 bytes: a pointer, and beside it in an array of their own
// the low 32 bits of the key's hash (its tag), so that probing past other
// keys reads neither their entries nor their keys. The tag is only a hint
// to readers (it may be stale while a writer replaces the slot): the
// entry's key decides. The table has any number of slots, not a power of
// two: a key's home slot is its tag scaled to the slot count (Lemire's
// fastrange), so that a bounded shard's table is sized to its bound
// (boundedSlots) rather than to the next power of two, which left up to
// 40 bytes of slots an entry; and a rehash finds the new home of an entry
// from its tag, without hashing its key again.
type table[V any] struct {
	tags []atomic.Uint32
	ptrs []atomic.Pointer[entry[V]]
	n    uint64
}

// minTableSlots is the size of an empty shard's table.
const minTableSlots = 8

func newTable[V any](n int) *table[V] {
	return &table[V]{tags: make([]atomic.Uint32, n), ptrs: make([]atomic.Pointer[entry[V]], n), n: uint64(n)}
}

// home is the first slot probed for hash h.
func (t *table[V]) home(h uint64) uint64 { return t.homeOf(tag(h)) }

func (t *table[V]) homeOf(tg uint32) uint64 { return uint64(tg) * t.n >> 32 }

func (t *table[V]) next(i uint64) uint64 {
	if i++; i == t.n {
		return 0
	}
	return i
}

func (t *table[V]) prev(i uint64) uint64 {
	if i == 0 {
		return t.n - 1
	}
	return i - 1
}

// tag is the part of a hash kept beside its slot: the low 32 bits, which
// choose the home slot (the shard is chosen by the top 16).
func tag(h uint64) uint32 { return uint32(h) }

func (t *table[V]) store(i uint64, tg uint32, e *entry[V]) {
	t.tags[i].Store(tg)
	t.ptrs[i].Store(e)
}

// lookup returns the entry of key, expired or not, or nil.
func (sh *shard[V]) lookup(h uint64, key string) *entry[V] {
	t := sh.tab.Load()
	tg := tag(h)
	for i := t.home(h); ; i = t.next(i) {
		e := t.ptrs[i].Load()
		if e == nil {
			return nil
		}
		if t.tags[i].Load() == tg && e != sh.tomb && e.key == key {
			return e
		}
	}
}

// slotOf returns the slot of e, whose key hashes to h, or -1. Under the
// lock.
func (sh *shard[V]) slotOf(h uint64, e *entry[V]) int64 {
	t := sh.tab.Load()
	for i := t.home(h); ; i = t.next(i) {
		switch t.ptrs[i].Load() {
		case nil:
			return -1
		case e:
			return int64(i)
		}
	}
}

// publish puts e in tab, replacing the entry of its key if there is one.
// Under the lock.
func (sh *shard[V]) publish(h uint64, e *entry[V]) {
	t := sh.tab.Load()
	tg := tag(h)
	for i := t.home(h); ; i = t.next(i) {
		old := t.ptrs[i].Load()
		if old == nil {
			break
		}
		if t.tags[i].Load() == tg && old != sh.tomb && old.key == e.key {
			t.store(i, tg, e)
			return
		}
	}
	if (sh.used+1)*4 > int(t.n)*3 {
		t = sh.rehash(int64(sh.count) + 1)
	}
	for i := t.home(h); ; i = t.next(i) {
		switch t.ptrs[i].Load() {
		case nil:
			sh.used++
			fallthrough
		case sh.tomb:
			t.store(i, tg, e)
			return
		}
	}
}

// unpublish removes e, whose key hashes to h, from tab. Under the lock.
func (sh *shard[V]) unpublish(h uint64, e *entry[V]) {
	j := sh.slotOf(h, e)
	if j < 0 {
		return
	}
	t := sh.tab.Load()
	i := uint64(j)
	if t.ptrs[t.next(i)].Load() != nil {
		t.ptrs[i].Store(sh.tomb)
		return
	}
	// The end of a probe chain: no key is found through this slot, nor
	// through the tombstones just before it.
	t.ptrs[i].Store(nil)
	sh.used--
	for k := t.prev(i); t.ptrs[k].Load() == sh.tomb; k = t.prev(k) {
		t.ptrs[k].Store(nil)
		sh.used--
	}
}

// rehash publishes a table with the live entries of tab, sized for n
// entries, and returns it.
func (sh *shard[V]) rehash(n int64) *table[V] {
	old := sh.tab.Load()
	t := newTable[V](sh.tableSlots(n))
	used := 0
	for i := range old.ptrs {
		e := old.ptrs[i].Load()
		if e == nil || e == sh.tomb {
			continue
		}
		tg := old.tags[i].Load() // the tag of a slot is stale only while a writer, who holds the lock, replaces it
		j := t.homeOf(tg)
		for t.ptrs[j].Load() != nil {
			j = t.next(j)
		}
		t.store(j, tg, e)
		used++
	}
	sh.used = used
	sh.tab.Store(t)
	return t
}

// tableSlots is the size of a table for n entries: twice n, so that it
// fills by n more before it grows again, but no more than boundedSlots
// for a shard bounded by entries, which it never outgrows.
func (sh *shard[V]) tableSlots(n int64) int {
	slots := max(minTableSlots, 2*n)
	if sh.maxEntries < math.MaxInt32 {
		slots = min(slots, boundedSlots(sh.maxEntries))
	}
	return int(slots)
}

// boundedSlots is the table size of a shard of at most max entries: at
// most 2/3 full, a little under the 3/4 that makes it rehash, so that
// tombstones left by deletions and replacements take max/8 writes or more
// to fill the slack (each rehash drops them), and a full table costs 18
// bytes an entry. A shard holds max+1 entries for a moment while it
// evicts for the entry just written.
func boundedSlots(max int64) int64 { return (max+1)*3/2 + minTableSlots }
