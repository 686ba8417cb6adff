package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/scaleout/scaleout/observe"
)

// Defaults of LoaderConfig.
const (
	DefaultLeaseTTL    = 5 * time.Second
	DefaultLoadTimeout = 30 * time.Second
)

// LoaderConfig configures NewLoader. Zero values mean the documented
// defaults; negative durations are ErrInvalidConfig.
type LoaderConfig[T any] struct {
	// Codec turns values into bytes and back. Default: BytesCodec for
	// []byte, StringCodec for string, JSONCodec otherwise.
	Codec Codec[T]

	// NegativeTTL, when positive, caches a load's ErrNotFound for that
	// long, so a missing row is not looked up on every request.
	NegativeTTL time.Duration
	// StaleFor keeps entries this long past their TTL. A stale entry is
	// served when its reload fails (serve-stale-on-error) and to callers
	// in other processes while one process reloads it. 0 disables both.
	StaleFor time.Duration
	// RefreshStale answers a stale entry at once, even when no other
	// process is reloading it, and reloads it in the background
	// (stale-while-revalidate): no reader waits for a load while a stale
	// value is at hand.
	RefreshStale bool
	// EarlyRefresh is XFetch's beta: on a hit, an entry is reloaded in the
	// background with a probability that rises towards its expiry, earlier
	// for entries that took long to load, so a hot key is recomputed once
	// before it expires rather than by a herd after. 0 means 1 (the
	// paper's recommendation); a negative value disables early refresh.
	EarlyRefresh float64

	// LeaseTTL bounds a fill lease: a filler that has not written back
	// within it loses the key to the next process. Default
	// DefaultLeaseTTL. Used only on a SwapCache.
	LeaseTTL time.Duration
	// LeaseWait bounds how long a flight waits for another process's fill
	// before loading itself (without writing). Default LeaseTTL. A lease
	// this process wrote and then lost track of (the cache failed during
	// the write or the write-back) is taken over at once, not waited for,
	// so a blip of the cache costs a Get about CacheTimeout, not LeaseWait.
	LeaseWait time.Duration
	// CacheTimeout, when positive, puts a deadline on the context of every
	// call a Get or Refresh makes to the cache, after which the Loader
	// fails open to the load function: against a hung or dead Redis
	// (cache/rediscache), a Get answers from the load function after about
	// CacheTimeout. Set, Delete and Expire are bounded by their caller's
	// context only.
	//
	// By default the Loader adds none: a call is bounded by the caller's
	// context and the client's own timeouts. For a default go-redis client
	// that is, against a hung server, ReadTimeout (3 s) per attempt and,
	// against a dead one, about 1.7 s of dial retries, so a caller whose
	// deadline comes first gets its context's error instead of the loaded
	// value; no caller waits past its own deadline.
	//
	// gomemcache takes no context: against memcached, a call lasts until
	// the round trip in flight ends, at most the client's Timeout (500 ms by
	// default); CacheTimeout is checked between round trips, so the Loader
	// fails open after max(CacheTimeout, Timeout). Set Timeout to the
	// fail-open bound you want (cache/memcachedcache).
	CacheTimeout time.Duration
	// LoadTimeout bounds a load run by a flight that outlives its callers
	// and every background refresh. Default DefaultLoadTimeout.
	LoadTimeout time.Duration

	// LocalTTL, when positive, puts a local tier in this process in front
	// of the cache: decoded values kept for at most LocalTTL (and never
	// past their TTL), answered without a round trip or a decode.
	LocalTTL time.Duration
	// Local bounds the local tier, as for NewMemory.
	Local MemoryConfig
	// Invalidator carries this Loader's Set and Delete to the local tiers
	// of other processes, and theirs to this one. Without it, a local copy
	// may be stale for up to LocalTTL after a change made elsewhere.
	Invalidator Invalidator

	// Meter receives the Loader's metrics (see package observe): hits by
	// tier, misses, loads and their duration, load errors, lease waits,
	// stale serves, refreshes, cache errors and the local tier's
	// evictions; nil means none. Stats counts the same whether or not.
	Meter observe.Meter
}

// A Loader is a typed cache-aside reader in front of an ObjectCache: Get
// answers from the cache, and on a miss calls a load function once for the
// whole cluster and stores its result. See the package documentation for
// the semantics.
type Loader[T any] struct {
	cache ObjectCache
	swap  SwapCache // cache as a SwapCache, or nil: leases are then per process
	cfg   LoaderConfig[T]
	codec Codec[T]

	flights singleflight.Group
	orphans orphans // leases this Loader may have left in the cache
	stats   counters

	local       *store[localEntry[T]] // nil without a local tier
	epoch       atomic.Uint64         // bumped by every invalidation heard, before it drops keys
	unsubscribe func()

	wallBase int64     // Unix nanoseconds at monoBase
	monoBase time.Time // carries a monotonic reading

	// background counts the background refreshes, which Close waits for.
	// closed is set, and a refresh counted, only under backgroundMu, so
	// that none starts after Close returned.
	background   sync.WaitGroup
	backgroundMu sync.Mutex
	closed       atomic.Bool
}

type localEntry[T any] struct {
	v        T
	notFound bool
}

// NewLoader returns a Loader on c. It fails with an error wrapping
// ErrInvalidConfig for a nil cache or a bad cfg.
func NewLoader[T any](c ObjectCache, cfg LoaderConfig[T]) (*Loader[T], error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil cache", ErrInvalidConfig)
	}
	for _, d := range []time.Duration{cfg.NegativeTTL, cfg.StaleFor, cfg.LeaseTTL, cfg.LeaseWait, cfg.CacheTimeout, cfg.LoadTimeout, cfg.LocalTTL} {
		if d < 0 {
			return nil, fmt.Errorf("%w: negative duration in loader config", ErrInvalidConfig)
		}
	}
	if cfg.Codec == nil {
		cfg.Codec = defaultCodec[T]()
	}
	if cfg.EarlyRefresh == 0 {
		cfg.EarlyRefresh = 1
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseWait == 0 {
		cfg.LeaseWait = cfg.LeaseTTL
	}
	if cfg.LoadTimeout == 0 {
		cfg.LoadTimeout = DefaultLoadTimeout
	}
	start := time.Now()
	l := &Loader[T]{cache: c, cfg: cfg, codec: cfg.Codec, wallBase: start.UnixNano(), monoBase: start}
	l.swap, _ = c.(SwapCache)
	l.stats.bind(cfg.Meter)
	if cfg.LocalTTL > 0 {
		local := cfg.Local
		local.Meter = cfg.Meter // the tier's evictions are the Loader's
		s, err := newStore[localEntry[T]](local)
		if err != nil {
			return nil, err
		}
		l.local = s
		if cfg.Invalidator != nil {
			l.unsubscribe = cfg.Invalidator.Subscribe(l.invalidated)
		}
	}
	return l, nil
}

// Get returns the value of key: from the local tier, else from the cache,
// else from load, whose result is stored for ttl (0: until evicted),
// counted from when the load began, so that nothing a load read is served
// as fresh longer than ttl after it read it, however slow the load or the
// write back (a load that outlasts its ttl answers its caller and stores
// nothing fresh). A
// load that fails with ErrNotFound is answered with ErrNotFound, and
// remembered for NegativeTTL. Concurrent Gets of one key in this process
// share one flight; on a SwapCache one process in the cluster loads while
// the others wait for its result, or take the stale value.
//
// The value is shared by every caller of the flight and by the local tier:
// treat it as immutable. After Close, Get returns ErrClosed.
//
// load is kept past the call on a miss, so a closure made for the call
// escapes to the heap: one allocation per Get, local hits included.
// GetWith avoids it.
func (l *Loader[T]) Get(ctx context.Context, key string, ttl time.Duration, load func(context.Context) (T, error)) (T, error) {
	if v, err, done := l.begin(key, ttl, load == nil); done {
		return v, err
	}
	return l.remote(ctx, key, ttl, load)
}

// GetWith is Get with a load function that takes its argument apart:
// load(ctx, arg) is called where Get would call load(ctx). A hit answered
// by the local tier then allocates nothing, where Get is handed a closure
// made for the call (func(ctx context.Context) (T, error) { return
// db.Product(ctx, id) }) that the Go compiler allocates on the heap, hit or
// miss, because a miss may run it after Get returned (the flight outlives
// an impatient caller, a refresh runs in the background). Give GetWith a
// load function made once (a top-level function, a method expression or a
// func literal stored in a variable) and the per-call values as arg:
//
//	byID := func(ctx context.Context, id int) (Product, error) { return db.Product(ctx, id) }
//	p, err := cache.GetWith(products, ctx, "product:"+strconv.Itoa(id), time.Minute, byID, id)
//
// arg is copied to the heap only on a miss.
func GetWith[T, A any](l *Loader[T], ctx context.Context, key string, ttl time.Duration, load func(context.Context, A) (T, error), arg A) (T, error) {
	if v, err, done := l.begin(key, ttl, load == nil); done {
		return v, err
	}
	return getWithMiss(l, ctx, key, ttl, load, arg)
}

// getWithMiss is GetWith past the local tier: the closure binding arg, and
// with it arg's copy on the heap, is made here, not on the hit path.
func getWithMiss[T, A any](l *Loader[T], ctx context.Context, key string, ttl time.Duration, load func(context.Context, A) (T, error), arg A) (T, error) {
	return l.remote(ctx, key, ttl, func(ctx context.Context) (T, error) { return load(ctx, arg) })
}

// begin does what precedes a round trip for Get and GetWith: it checks the
// arguments and the Loader, and answers from the local tier. done is false
// when the remote cache is to be asked.
func (l *Loader[T]) begin(key string, ttl time.Duration, nilLoad bool) (v T, err error, done bool) {
	if err := checkLoad(key, ttl, nilLoad); err != nil {
		return v, err, true
	}
	if l.closed.Load() {
		return v, ErrClosed, true
	}
	if l.local != nil {
		if e, ok := l.local.get(key); ok { // counted by the local store, off any shared cache line
			l.stats.localHits.Inc()
			if e.notFound {
				return v, ErrNotFound, true
			}
			return e.v, nil, true
		}
	}
	return v, nil, false
}

// remote is Get past the local tier.
func (l *Loader[T]) remote(ctx context.Context, key string, ttl time.Duration, load func(context.Context) (T, error)) (T, error) {
	var zero T
	// A hit is answered on the caller's goroutine: concurrent hits of a
	// hot key each make their own round trip, and none waits for another.
	epoch := l.epoch.Load()
	raw, err := l.cacheGet(ctx, key)
	if err == nil {
		if v, err, ok := l.hit(ctx, key, ttl, load, raw, epoch); ok {
			return v, err
		}
	}
	if ctx.Err() != nil {
		return zero, ctx.Err()
	}
	// Anything else is a flight, shared by the process's callers of key.
	// It runs on a context that outlives this caller, so that one
	// impatient caller cannot fail the others or waste a load half done.
	ch := l.flights.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.LoadTimeout)
		defer cancel()
		v, err := l.flight(fctx, key, ttl, load, epoch, read{raw: raw, err: err})
		return v, err
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// checkLoad validates the arguments of Get and Refresh.
func checkLoad(key string, ttl time.Duration, nilLoad bool) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if ttl < 0 {
		return ErrInvalidTTL
	}
	if nilLoad {
		return fmt.Errorf("%w: nil load function", ErrInvalidConfig)
	}
	return nil
}

// Set stores v under key for ttl in the cache, voiding any fill lease on
// it, and drops key from every local tier.
func (l *Loader[T]) Set(ctx context.Context, key string, v T, ttl time.Duration) error {
	if ttl < 0 {
		return ErrInvalidTTL
	}
	payload, err := l.codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("cache: encode %q: %w", key, err)
	}
	e := envelope{kind: kindValue, freshUntil: freshFrom(l.now(), ttl), payload: payload}
	err = l.cache.Set(ctx, key, e.marshal(), l.storeTTL(ttl))
	return errors.Join(err, l.invalidate(ctx, []string{key}))
}

// Delete removes keys from the cache, voiding any fill in progress so that
// a slow filler cannot write back what it read before the change, and
// drops them from every local tier. Call it after the data source has
// changed.
func (l *Loader[T]) Delete(ctx context.Context, keys ...string) error {
	err := l.cache.Delete(ctx, keys...)
	return errors.Join(err, l.invalidate(ctx, keys))
}

// Stats returns the Loader's counters.
func (l *Loader[T]) Stats() Stats {
	st := l.stats.snapshot()
	if l.local != nil {
		ls := l.local.stats()
		st.LocalHits = ls.Hits
		st.Hits += ls.Hits
		st.Evictions = ls.Evictions
	}
	return st
}

// Close ends the Loader's invalidation subscription and waits for its
// background refreshes, each bounded by LoadTimeout; none starts after
// Close returned. Close is idempotent, and never closes the cache or the
// Invalidator.
//
// After Close, Get, GetMany and Refresh return ErrClosed: they would fill
// a local tier no longer told of changes and start refreshes nobody waits
// for. Set, Delete and Expire keep working, since they need only the cache
// and the Invalidator, which the caller owns: a process shutting down can
// still invalidate what it changed. Stats keeps counting what was done.
func (l *Loader[T]) Close() error {
	l.backgroundMu.Lock()
	wasClosed := l.closed.Swap(true)
	l.backgroundMu.Unlock()
	if wasClosed {
		return nil
	}
	if l.unsubscribe != nil {
		l.unsubscribe()
		if l.local != nil {
			l.local.clear() // no longer told of changes: keep nothing
		}
	}
	l.background.Wait()
	return nil
}

// invalidate drops keys from this process's local tier and publishes them
// to the others. It also ends the sharing of the keys' flights in
// progress: their loads may have read the source before the change, so a
// Get from now on starts a flight of its own rather than join one.
func (l *Loader[T]) invalidate(ctx context.Context, keys []string) error {
	l.forgetFlights(keys)
	if l.local == nil {
		return nil
	}
	l.invalidated(keys)
	if l.cfg.Invalidator == nil || len(keys) == 0 {
		return nil
	}
	return l.cfg.Invalidator.Publish(ctx, keys)
}

// invalidated is the subscription callback: nil keys drop the whole tier.
// The epoch moves first, so a fill that read the cache before this call
// either sees the new epoch or is dropped by it (see fillLocal).
func (l *Loader[T]) invalidated(keys []string) {
	l.epoch.Add(1)
	if keys == nil {
		l.local.clear()
		return
	}
	l.forgetFlights(keys)
	for _, k := range keys {
		l.local.delete(k)
	}
}

// forgetFlights lets the flights of keys in progress finish for the
// callers they have, and makes every later Get of keys start a new one.
func (l *Loader[T]) forgetFlights(keys []string) {
	for _, k := range keys {
		l.flights.Forget(k)
	}
}

// fillLocal keeps a fresh value in the local tier, unless an invalidation
// arrived since epoch was read before the cache was.
func (l *Loader[T]) fillLocal(key string, epoch uint64, e localEntry[T], size int, freshUntil int64) {
	if l.local == nil || l.closed.Load() {
		return
	}
	ttl := l.cfg.LocalTTL
	if freshUntil != 0 {
		ttl = min(ttl, time.Duration(freshUntil-l.now()))
	}
	if ttl <= 0 || l.epoch.Load() != epoch {
		return
	}
	l.local.set(key, e, int64(len(key)+size), ttl)
	if l.epoch.Load() != epoch {
		l.local.delete(key) // an invalidation raced the set
	}
}

// now is the wall clock in Unix nanoseconds, as envelopes hold it, read
// from the monotonic clock since the Loader was made: one clock read on
// the hit path instead of the two of time.Now.
func (l *Loader[T]) now() int64 { return l.wallBase + int64(time.Since(l.monoBase)) }

// freshFrom is when an entry loaded (or set) at t stops being fresh; 0,
// never, for a ttl of 0.
func freshFrom(t int64, ttl time.Duration) int64 {
	if ttl == 0 {
		return 0
	}
	return t + int64(ttl)
}

// storeTTLUntil is how long the cache keeps an entry fresh until
// freshUntil: the time left plus the stale window; 0 (no expiry) for
// freshUntil 0, negative when even the stale window has passed.
func (l *Loader[T]) storeTTLUntil(freshUntil int64) time.Duration {
	if freshUntil == 0 {
		return 0
	}
	left := time.Duration(freshUntil-l.now()) + l.cfg.StaleFor
	if left == 0 {
		return -1
	}
	return left
}

// storeTTL is how long the cache keeps an entry fresh for ttl: its TTL
// plus the stale window.
func (l *Loader[T]) storeTTL(ttl time.Duration) time.Duration {
	if ttl == 0 {
		return 0
	}
	return ttl + l.cfg.StaleFor
}
