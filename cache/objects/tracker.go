package objects

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const trackerShards = 32

// A tracker remembers when keys were last read, for refresh-ahead: at most
// max keys (the least recently read dropped beyond), sharded so that
// concurrent reads of different keys rarely share a lock. A read of a
// tracked key takes a read lock and, at most once per granularity, stores
// the time; it allocates nothing.
type tracker struct {
	max    int64
	gran   int64 // ns: a read within gran of the last stored time stores nothing
	seed   maphash.Seed
	n      atomic.Int64
	trim   sync.Mutex
	shards [trackerShards]trackerShard
}

type trackerShard struct {
	mu   sync.RWMutex
	last map[string]*atomic.Int64 // key → last read, Unix ns
}

func newTracker(maxKeys int, gran time.Duration) *tracker {
	t := &tracker{max: int64(maxKeys), gran: int64(gran), seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].last = make(map[string]*atomic.Int64)
	}
	return t
}

func (t *tracker) shard(key string) *trackerShard {
	return &t.shards[maphash.String(t.seed, key)%trackerShards]
}

// touch records a read of key at now.
func (t *tracker) touch(key string, now int64) {
	sh := t.shard(key)
	sh.mu.RLock()
	a := sh.last[key]
	sh.mu.RUnlock()
	if a != nil {
		if now-a.Load() >= t.gran {
			a.Store(now)
		}
		return
	}
	sh.mu.Lock()
	if a = sh.last[key]; a != nil {
		sh.mu.Unlock()
		a.Store(now)
		return
	}
	a = new(atomic.Int64)
	a.Store(now)
	sh.last[key] = a
	sh.mu.Unlock()
	if t.n.Add(1) > t.max {
		t.dropOldest()
	}
}

// dropOldest forgets the least recently read keys until at most 7/8 of max
// remain, so that the scan is paid once per max/8 new keys.
func (t *tracker) dropOldest() {
	if !t.trim.TryLock() {
		return // another reader is trimming
	}
	defer t.trim.Unlock()
	n := t.n.Load()
	if n <= t.max {
		return
	}
	type kt struct {
		key  string
		last int64
	}
	all := make([]kt, 0, n)
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		for k, a := range sh.last {
			all = append(all, kt{k, a.Load()})
		}
		sh.mu.RUnlock()
	}
	slices.SortFunc(all, func(a, b kt) int {
		switch {
		case a.last < b.last:
			return -1
		case a.last > b.last:
			return 1
		}
		return 0
	})
	drop := int64(len(all)) - t.max*7/8
	for _, e := range all[:max(drop, 0)] {
		t.forget(e.key)
	}
}

func (t *tracker) forget(key string) {
	sh := t.shard(key)
	sh.mu.Lock()
	if _, ok := sh.last[key]; ok {
		delete(sh.last, key)
		t.n.Add(-1)
	}
	sh.mu.Unlock()
}

// sweep forgets the keys last read before idleBefore and returns the
// others.
func (t *tracker) sweep(idleBefore int64) []string {
	var hot []string
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for k, a := range sh.last {
			if a.Load() < idleBefore {
				delete(sh.last, k)
				t.n.Add(-1)
				continue
			}
			hot = append(hot, k)
		}
		sh.mu.Unlock()
	}
	return hot
}

func (t *tracker) len() int { return int(t.n.Load()) }
