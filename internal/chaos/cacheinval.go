package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/scaleout/scaleout/cache"
)

// The cache invalidation model: a source of truth (the "database", an
// in-process versioned map) is read through clones' cache.Loaders, and a
// writer changes a key by bumping its version in the source and then, as
// the cache package tells a user to ("Delete ... Call it after the data
// source has changed"), calling Loader.Delete on its clone, or
// Loader.Refresh ("reloads key now ... and stores the result for ttl").
// The promise
// checked (CheckCacheInval) is that no read is staler than the documented
// bounds allow:
//
//   - a read returns a version the source really held, as the load read it;
//   - a read returns a version that was current at most TTL (plus a
//     scheduling margin) before it began: entries are fresh for the ttl
//     given to Get and, without StaleFor, never served after;
//   - a read that began after a Delete (or Refresh) of version v returned nil returns
//     version v or newer: at once on the clone that deleted, and on other
//     clones at once or within a documented window (their local tiers).

// CacheInvalValue is what the source returns for a key: its version and
// the instant (on the history's clock) the load read it.
type CacheInvalValue struct {
	Version int
	ReadAt  int64
}

// CacheInvalOp is one operation of the workload.
type CacheInvalOp struct {
	Kind    string // "bump" (the source changed), "invalidate" (Delete or Refresh after a bump) or "read" (Get)
	Via     string // invalidate: "delete" or "refresh"
	Key     int
	Clone   int   // the clone whose Loader ran it (bump: none)
	Version int   // bump: the version written; invalidate: the version it announces; read: the version seen
	ReadAt  int64 // read: when the load that produced the value read the source
	OK      bool  // invalidate: Delete or Refresh returned nil
}

// cacheInvalSource is the source of truth: every key starts at version
// 0, written before the history began.
type cacheInvalSource struct {
	mu       sync.Mutex
	versions []int
	h        *History
}

// load reads key's version, and the instant it read it, under the lock
// that bump holds: ReadAt falls between the bump that wrote the version
// and the next one.
func (s *cacheInvalSource) load(key int) CacheInvalValue {
	s.mu.Lock()
	defer s.mu.Unlock()
	return CacheInvalValue{Version: s.versions[key], ReadAt: s.h.Now()}
}

func (s *cacheInvalSource) bump(key int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions[key]++
	return s.versions[key]
}

// CacheInvalWorkload drives writers and readers through the clones'
// Loaders.
type CacheInvalWorkload struct {
	Loaders []*cache.Loader[CacheInvalValue] // one per clone
	Keys    int                              // how many keys (default 8)
	TTL     time.Duration                    // the ttl of every Get
	Writers int                              // default 2
	Readers int                              // default 6
	// ReadPace is how long each reader waits between Gets (default
	// 500µs): a hit on the local tier takes microseconds, and unpaced
	// readers fill a long run's history with millions of the same hit.
	ReadPace time.Duration
	// LoadTime bounds how long a load takes after it read the source
	// (drawn from [0, LoadTime)), as a query answers some time after the
	// snapshot it read: a flight's value is already old when it returns.
	LoadTime time.Duration
	// ReadTimeout and WriteTimeout bound a Get and a Delete.
	ReadTimeout, WriteTimeout time.Duration
	History                   *History

	src   *cacheInvalSource
	rng   *rand.Rand
	rngMu sync.Mutex
}

// NewCacheInvalWorkload returns a workload over loaders, seeded with seed.
func NewCacheInvalWorkload(loaders []*cache.Loader[CacheInvalValue], ttl time.Duration, seed uint64) *CacheInvalWorkload {
	w := &CacheInvalWorkload{Loaders: loaders, Keys: 8, TTL: ttl, Writers: 2, Readers: 6, ReadPace: 500 * time.Microsecond, LoadTime: 3 * time.Millisecond,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, History: NewHistory(),
		rng: rand.New(rand.NewPCG(seed, seed+7))}
	return w
}

func (w *CacheInvalWorkload) intN(n int) int {
	w.rngMu.Lock()
	defer w.rngMu.Unlock()
	return w.rng.IntN(n)
}

func cacheInvalKey(k int) string { return "inval:" + strconv.Itoa(k) }

// Load is the load function of key: what every Get of key passes.
func (w *CacheInvalWorkload) Load(key int) func(context.Context) (CacheInvalValue, error) {
	return func(ctx context.Context) (CacheInvalValue, error) {
		v := w.src.load(key)
		if w.LoadTime > 0 {
			sleep(ctx, time.Duration(w.intN(int(w.LoadTime))))
		}
		return v, nil
	}
}

// Drive runs the writers and readers until ctx ends.
func (w *CacheInvalWorkload) Drive(ctx context.Context) {
	w.src = &cacheInvalSource{versions: make([]int, w.Keys), h: w.History}
	var wg sync.WaitGroup
	client := 0
	for range w.Writers {
		client++
		id := client
		wg.Go(func() {
			for ctx.Err() == nil {
				w.write(id, w.intN(w.Keys), w.intN(len(w.Loaders)))
				sleep(ctx, time.Duration(2+w.intN(10))*time.Millisecond)
			}
		})
	}
	for range w.Readers {
		client++
		id := client
		wg.Go(func() {
			for ctx.Err() == nil {
				w.read(id, w.intN(w.Keys), w.intN(len(w.Loaders)))
				sleep(ctx, w.ReadPace)
			}
		})
	}
	wg.Wait()
}

// write bumps key in the source, then deletes it through clone's Loader
// or, one time in two, refreshes it (Refresh: "reloads key now ... and
// stores the result for ttl; ... every local tier drops its copy
// afterwards").
func (w *CacheInvalWorkload) write(client, key, clone int) {
	call := w.History.Now()
	v := w.src.bump(key)
	w.History.Add(client, CacheInvalOp{Kind: "bump", Key: key, Version: v}, nil, call, w.History.Now())
	ctx, cancel := context.WithTimeout(context.Background(), w.WriteTimeout)
	defer cancel()
	via := "delete"
	if w.intN(2) == 0 {
		via = "refresh"
	}
	call = w.History.Now()
	var err error
	if via == "delete" {
		err = w.Loaders[clone].Delete(ctx, cacheInvalKey(key))
	} else {
		_, err = w.Loaders[clone].Refresh(ctx, cacheInvalKey(key), w.TTL, w.Load(key))
	}
	ret := w.History.Now()
	if err != nil {
		ret = Unknown // it may have reached the cache, and the other clones, or not
	}
	w.History.Add(client, CacheInvalOp{Kind: "invalidate", Via: via, Key: key, Clone: clone, Version: v, OK: err == nil}, nil, call, ret)
}

// read Gets key through clone's Loader; a failed Get tells nothing.
func (w *CacheInvalWorkload) read(client, key, clone int) {
	ctx, cancel := context.WithTimeout(context.Background(), w.ReadTimeout)
	defer cancel()
	call := w.History.Now()
	v, err := w.Loaders[clone].Get(ctx, cacheInvalKey(key), w.TTL, w.Load(key))
	ret := w.History.Now()
	if err != nil {
		return
	}
	w.History.Add(client, CacheInvalOp{Kind: "read", Key: key, Clone: clone, Version: v.Version, ReadAt: v.ReadAt}, nil, call, ret)
}

// CacheInvalBounds are the staleness bounds the cache package documents
// for the run's configuration.
type CacheInvalBounds struct {
	// TTL is the ttl of every Get: an entry is fresh that long after its
	// load (freshUntil is taken just after load returns) and, with
	// StaleFor 0, never served after. A local copy "never outlives its
	// TTL" (package doc, Two tiers).
	TTL time.Duration
	// OtherClones is how long after a successful Delete on one clone a
	// read on another clone may still return the old version: 0 where
	// invalidations reach every local tier before Delete returns
	// (cache.LocalBus: Publish calls every subscriber synchronously).
	// Where they travel asynchronously (Redis pub/sub), or not at all (no
	// Invalidator), the documented bound is the local tier's: "A local
	// copy ... lives at most LocalTTL", "Without an Invalidator, a change
	// made by another process is seen after at most LocalTTL"; a copy is
	// kept from a cache read that may have begun before the Delete and
	// lasted up to CacheTimeout, so the window is LocalTTL + CacheTimeout
	// (plus Margin).
	OtherClones time.Duration
	// Margin covers the workload's LoadTime and scheduling: the time
	// between a load's read of the source and the Loader's next clock read
	// on the same goroutine.
	Margin time.Duration
}

// CheckCacheInval checks a history of the workload against the bounds
// and returns the first violation found, described, or "".
func CheckCacheInval(ops []porcupine.Operation, b CacheInvalBounds) string {
	type bump struct{ call, ret int64 }
	bumps := map[int]map[int]bump{} // key → version → its bump
	type inval struct {
		ret     int64
		version int
		clone   int
		op      porcupine.Operation
	}
	invals := map[int][]inval{} // key → successful invalidations
	var reads []porcupine.Operation
	for _, op := range ops {
		in := op.Input.(CacheInvalOp)
		switch in.Kind {
		case "bump":
			if bumps[in.Key] == nil {
				bumps[in.Key] = map[int]bump{}
			}
			bumps[in.Key][in.Version] = bump{op.Call, op.Return}
		case "invalidate":
			if in.OK && op.Return != Unknown {
				invals[in.Key] = append(invals[in.Key], inval{op.Return, in.Version, in.Clone, op})
			}
		case "read":
			reads = append(reads, op)
		}
	}
	// Per key, successful invalidations by return time, with the highest
	// version announced so far, so that a read's requirement is a binary
	// search.
	type prefix struct {
		ret []int64
		max []int
		op  []porcupine.Operation // the invalidation that set max
	}
	build := func(list []inval) prefix {
		slices.SortFunc(list, func(a, b inval) int { return cmpInt64(a.ret, b.ret) })
		var p prefix
		best, bestOp := 0, porcupine.Operation{}
		for _, iv := range list {
			if iv.version > best {
				best, bestOp = iv.version, iv.op
			}
			p.ret, p.max, p.op = append(p.ret, iv.ret), append(p.max, best), append(p.op, bestOp)
		}
		return p
	}
	// required returns the highest version announced by an invalidation
	// that returned strictly before t, and that invalidation.
	required := func(p prefix, t int64) (int, porcupine.Operation) {
		i := sort.Search(len(p.ret), func(i int) bool { return p.ret[i] >= t })
		if i == 0 {
			return 0, porcupine.Operation{}
		}
		return p.max[i-1], p.op[i-1]
	}
	all := map[int]prefix{}
	byClone := map[[2]int]prefix{}
	for key, list := range invals {
		all[key] = build(slices.Clone(list))
		perClone := map[int][]inval{}
		for _, iv := range list {
			perClone[iv.clone] = append(perClone[iv.clone], iv)
		}
		for c, l := range perClone {
			byClone[[2]int{key, c}] = build(l)
		}
	}
	slices.SortFunc(reads, func(a, b porcupine.Operation) int { return cmpInt64(a.Call, b.Call) })
	for _, r := range reads {
		in := r.Input.(CacheInvalOp)
		// Clause 1: the version was written, and the load read it while it
		// was current (ReadAt is taken under the source's lock, between the
		// bump of the version and the next), before the read returned. A
		// read that returns anything else returns a value no load produced.
		var wrote, next bump
		wroteOK := in.Version == 0
		if in.Version > 0 {
			wrote, wroteOK = bumps[in.Key][in.Version]
		}
		nxt, hasNext := bumps[in.Key][in.Version+1]
		next = nxt
		switch {
		case in.Version < 0 || !wroteOK:
			return fmt.Sprintf("read of key %d on clone %d [%s] returned version %d, which was never written",
				in.Key, in.Clone, cacheInvalSpan(r), in.Version)
		case in.Version > 0 && in.ReadAt < wrote.call, hasNext && in.ReadAt > next.ret, in.ReadAt > r.Return:
			return fmt.Sprintf("read of key %d on clone %d [%s] returned version %d as read from the source at %s, "+
				"when the source did not hold it (or after the read returned): a value no load produced",
				in.Key, in.Clone, cacheInvalSpan(r), in.Version, cacheInvalAt(in.ReadAt))
		}
		// Clause 2 (LoaderConfig, Get: "whose result is stored for ttl";
		// package doc: "A local copy never outlives its TTL"; StaleFor 0:
		// nothing is served past its TTL): the value was loaded at most
		// TTL (+ Margin) before the read began.
		if in.ReadAt < r.Call-int64(b.TTL+b.Margin) {
			return fmt.Sprintf("read of key %d on clone %d [%s] returned version %d, loaded at %s: %v before the read began, "+
				"more than the ttl %v (+ margin %v)", in.Key, in.Clone, cacheInvalSpan(r), in.Version,
				cacheInvalAt(in.ReadAt), time.Duration(r.Call-in.ReadAt), b.TTL, b.Margin)
		}
		// Clause 3 (Loader.Delete: "removes keys from the cache, voiding any
		// fill in progress so that a slow filler cannot write back what it
		// read before the change, and drops them from every local tier. Call
		// it after the data source has changed"; Loader.Refresh: "reloads
		// key now ... and stores the result for ttl; ... every local tier
		// drops its copy afterwards"): a read that began after a Delete or
		// Refresh of version v returned nil sees v or newer, on the clone
		// that deleted at once, and on the others once OtherClones has
		// passed (see CacheInvalBounds.OtherClones).
		need, by := required(byClone[[2]int{in.Key, in.Clone}], r.Call)
		if v, op := required(all[in.Key], r.Call-int64(b.OtherClones)); v > need {
			need, by = v, op
		}
		if in.Version < need {
			bin := by.Input.(CacheInvalOp)
			where := "the same clone"
			if bin.Clone != in.Clone {
				where = fmt.Sprintf("clone %d, %v before the read began (other clones may lag %v)",
					bin.Clone, time.Duration(r.Call-by.Return), b.OtherClones)
			}
			return fmt.Sprintf("read of key %d on clone %d [%s] returned version %d (loaded at %s), but a %s of key %d "+
				"after version %d was written [%s] had returned nil on %s", in.Key, in.Clone, cacheInvalSpan(r), in.Version,
				cacheInvalAt(in.ReadAt), cacheInvalVerb(bin.Via), in.Key, need, cacheInvalSpan(by), where)
		}
	}
	return ""
}

func cacheInvalVerb(via string) string {
	if via == "refresh" {
		return "Refresh"
	}
	return "Delete"
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cacheInvalAt(t int64) string { return time.Duration(t).String() }

func cacheInvalSpan(op porcupine.Operation) string {
	ret := "?"
	if op.Return != Unknown {
		ret = cacheInvalAt(op.Return)
	}
	return strings.Join([]string{cacheInvalAt(op.Call), ret}, "–")
}
