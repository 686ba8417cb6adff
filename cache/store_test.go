package cache

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// TestStoreTable checks the lock-free index against a map under random
// sets and deletes with forced hash collisions (a handful of hash values
// for many keys), which exercises probing, tombstones, their clean-up at
// the end of probe chains, and rehashing.
func TestStoreTable(t *testing.T) {
	s, err := newStore[int](MemoryConfig{MaxEntries: 1 << 20, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	sh := &s.shards[0]
	hashOf := func(k int) uint64 { return uint64(k%5) * 0x1_0000_0001 }
	sh.hashFn = func(key string) uint64 {
		k, err := strconv.Atoi(key)
		if err != nil {
			t.Fatal(err)
		}
		return hashOf(k)
	}
	model := map[int]int{}
	r := rand.New(rand.NewPCG(1, 2))
	for op := range 20_000 {
		k := r.IntN(300)
		key, h := strconv.Itoa(k), hashOf(k)
		sh.mu.Lock()
		if r.IntN(3) == 0 {
			if e := sh.lookup(h, key); e != nil {
				sh.remove(e)
			}
			delete(model, k)
		} else {
			sh.put(h, key, op, 1, 0, sh.lookup(h, key), s)
			model[k] = op
		}
		sh.mu.Unlock()
		if op%97 != 0 {
			continue
		}
		for k := range 300 {
			e := sh.lookup(hashOf(k), strconv.Itoa(k))
			want, ok := model[k]
			if (e != nil) != ok || (ok && e.value != want) {
				t.Fatalf("op %d: key %d: entry %v, want %d, %v", op, k, e, want, ok)
			}
		}
		tab := sh.tab.Load()
		if int(sh.count) != len(model) || sh.used*4 > int(tab.n)*3 || sh.used < len(model) {
			t.Fatalf("op %d: count %d, used %d of %d slots, model %d", op, sh.count, sh.used, tab.n, len(model))
		}
	}
}

// TestStoreGetAllocs checks that a hit of a small value allocates nothing.
func TestStoreGetAllocs(t *testing.T) {
	if StoreRaceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	s, err := newStore[int](MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s.set("key", 42, 11, 0)
	allocs := testing.AllocsPerRun(1000, func() {
		if v, ok := s.get("key"); !ok || v != 42 {
			t.Fatal(v, ok)
		}
	})
	if allocs != 0 {
		t.Errorf("store.get hit: %v allocations", allocs)
	}
	if allocs := testing.AllocsPerRun(1000, func() { s.get("absent") }); allocs != 0 {
		t.Errorf("store.get miss: %v allocations", allocs)
	}
}

// TestStoreConcurrent races lock-free readers against writers replacing,
// deleting, evicting and clearing the same keys, and checks that a reader only ever
// sees a value that was stored under its key.
func TestStoreConcurrent(t *testing.T) {
	s, err := newStore[[2]int](MemoryConfig{MaxEntries: 64, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 3))
			for i := range 20_000 {
				k := r.IntN(200)
				key := strconv.Itoa(k)
				if i%5000 == 4999 {
					s.clear()
				}
				switch r.IntN(8) {
				case 0:
					s.delete(key)
				case 1:
					s.set(key, [2]int{k, i}, 8, time.Duration(r.IntN(2))*time.Hour)
				case 2:
					s.add(key, [2]int{k, i}, 8, 0)
				case 3:
					s.compareAndSwap(key, func(old [2]int) bool { return old[1]%2 == 0 }, [2]int{k, i}, 8, 0)
				default:
					if v, ok := s.get(key); ok && v[0] != k {
						t.Errorf("get %d = %v", k, v)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	st := s.stats()
	if st.Entries > 64 || st.Entries < 0 {
		t.Errorf("stats %+v", st)
	}
	n := 0
	for k := range 200 {
		if _, ok := s.get(strconv.Itoa(k)); ok {
			n++
		}
	}
	if n != s.stats().Entries {
		t.Errorf("%d keys found, %d entries", n, s.stats().Entries)
	}
}

// TestStoreEntrySize guards the memory per entry: Memory's entry, its
// policy node included, is one 64-byte allocation (beside the value's
// copy), and an entry of maxEntrySize bytes or more is refused, since its
// size must fit beside its list in entry.meta.
func TestStoreEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(entry[string]{}); n != 64 {
		t.Errorf("entry[string] is %d bytes, want 64", n)
	}
	s, err := newStore[string](MemoryConfig{MaxBytes: 1 << 40, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !s.set("k", "v", maxEntrySize, 0) {
		t.Fatal("an entry of maxEntrySize bytes refused")
	}
	if s.set("k", "w", maxEntrySize+1, 0) {
		t.Fatal("an entry over maxEntrySize bytes stored")
	}
	if _, ok := s.get("k"); ok {
		t.Fatal("the older value of a key survived a refused set")
	}
	if st := s.stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("stats %+v after the refused set", st)
	}
}
