package objects

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/observe"
)

// Defaults of Config.
const (
	DefaultTTL        = 5 * time.Minute
	DefaultStaleFor   = 24 * time.Hour
	DefaultWorkers    = 4
	DefaultQueueLen   = 1024
	DefaultMaxTracked = 10_000
	// DefaultIdleFactor: IdleAfter defaults to this many RefreshEvery.
	DefaultIdleFactor = 10
)

// Config configures New. Zero values mean the documented defaults;
// negative values are invalid (an error wrapping cache.ErrInvalidConfig).
type Config[T any] struct {
	// TTL is how long a built object is fresh. Default DefaultTTL.
	TTL time.Duration
	// StaleFor is how long the last good object is kept, and served,
	// after it went stale or was invalidated, while it is rebuilt.
	// Default DefaultStaleFor.
	StaleFor time.Duration

	// RefreshEvery, when positive, rebuilds in the background, this often,
	// every key read through Get in this process within IdleAfter, so hot
	// objects are rebuilt before they go stale. 0 disables refresh-ahead.
	RefreshEvery time.Duration
	// IdleAfter: a key not read for this long is forgotten and no longer
	// refreshed ahead. Default DefaultIdleFactor × RefreshEvery.
	IdleAfter time.Duration
	// MaxTracked bounds the keys tracked for refresh-ahead; beyond it the
	// least recently read are forgotten. Default DefaultMaxTracked.
	MaxTracked int

	// BuildTimeout bounds every build: a rebuild, and a miss's build that
	// outlives its callers. Default cache.DefaultLoadTimeout.
	BuildTimeout time.Duration

	// Runner receives rebuilds (from Invalidate and refresh-ahead). Default:
	// a Pool of Workers goroutines with a queue of QueueLen keys, owned and
	// closed by the Objects. A Runner given here is not closed by Close.
	Runner Runner
	// Workers and QueueLen size the default Pool; they must be zero when
	// Runner is set. Defaults DefaultWorkers and DefaultQueueLen.
	Workers  int
	QueueLen int

	// Passed to the cache.Loader; see cache.LoaderConfig.
	Codec        cache.Codec[T]
	NegativeTTL  time.Duration
	EarlyRefresh float64
	LeaseTTL     time.Duration
	CacheTimeout time.Duration
	LocalTTL     time.Duration
	Local        cache.MemoryConfig
	Invalidator  cache.Invalidator
	Meter        observe.Meter
}

// Stats are the counters of an Objects since it was created.
type Stats struct {
	cache.Stats            // the Loader's counters
	Rebuilds        uint64 // rebuilds whose build succeeded (or found the object gone); a voided one's result was discarded
	RebuildErrors   uint64 // rebuilds whose build failed: the last good object was kept
	RebuildsSkipped uint64 // rebuilds not run because another caller held the key's lease
	SubmitsDropped  uint64 // rebuilds the Runner refused (ErrBusy, ErrClosed, ...)
	Tracked         int    // keys tracked for refresh-ahead now
}

// Objects is a cache of objects assembled by a build function: readers
// get the latest cached object, and rebuilds run in the background. See
// the package documentation.
type Objects[T any] struct {
	loader *cache.Loader[T]
	build  func(ctx context.Context, key string) (T, error)
	cfg    Config[T]
	runner Runner
	pool   *Pool // the default Runner, owned; nil when cfg.Runner was given

	tracked *tracker // nil without refresh-ahead
	stop    context.CancelFunc
	done    sync.WaitGroup

	rebuilds, rebuildErrors, skipped, dropped atomic.Uint64
	closeOnce                                 sync.Once
}

// New returns an Objects on c, which must be a cache.SwapCache (every
// store of this module is one): leases are what keep an invalidated
// rebuild from storing old data. build assembles the object of a key from
// the data source; returning cache.ErrNotFound means there is none.
func New[T any](c cache.ObjectCache, build func(ctx context.Context, key string) (T, error), cfg Config[T]) (*Objects[T], error) {
	if build == nil {
		return nil, fmt.Errorf("objects: nil build function: %w", cache.ErrInvalidConfig)
	}
	if _, ok := c.(cache.SwapCache); !ok {
		return nil, fmt.Errorf("objects: the cache must be a cache.SwapCache, got %T: %w", c, cache.ErrInvalidConfig)
	}
	for _, d := range []time.Duration{cfg.TTL, cfg.StaleFor, cfg.RefreshEvery, cfg.IdleAfter, cfg.BuildTimeout} {
		if d < 0 {
			return nil, fmt.Errorf("objects: negative duration %v: %w", d, cache.ErrInvalidConfig)
		}
	}
	if cfg.MaxTracked < 0 || cfg.Workers < 0 || cfg.QueueLen < 0 {
		return nil, fmt.Errorf("objects: negative MaxTracked, Workers or QueueLen: %w", cache.ErrInvalidConfig)
	}
	if cfg.Runner != nil && (cfg.Workers != 0 || cfg.QueueLen != 0) {
		return nil, fmt.Errorf("objects: Workers and QueueLen size the default pool and must be zero with a Runner: %w", cache.ErrInvalidConfig)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.StaleFor == 0 {
		cfg.StaleFor = DefaultStaleFor
	}
	if cfg.IdleAfter == 0 {
		cfg.IdleAfter = DefaultIdleFactor * cfg.RefreshEvery
	}
	if cfg.MaxTracked == 0 {
		cfg.MaxTracked = DefaultMaxTracked
	}
	if cfg.BuildTimeout == 0 {
		cfg.BuildTimeout = cache.DefaultLoadTimeout
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	l, err := cache.NewLoader(c, cache.LoaderConfig[T]{
		Codec:        cfg.Codec,
		NegativeTTL:  cfg.NegativeTTL,
		StaleFor:     cfg.StaleFor,
		RefreshStale: true,
		EarlyRefresh: cfg.EarlyRefresh,
		LeaseTTL:     cfg.LeaseTTL,
		CacheTimeout: cfg.CacheTimeout,
		LoadTimeout:  cfg.BuildTimeout,
		LocalTTL:     cfg.LocalTTL,
		Local:        cfg.Local,
		Invalidator:  cfg.Invalidator,
		Meter:        cfg.Meter,
	})
	if err != nil {
		return nil, fmt.Errorf("objects: %w", err)
	}
	o := &Objects[T]{loader: l, build: build, cfg: cfg, runner: cfg.Runner}
	if o.runner == nil {
		o.pool, err = NewPool(func(ctx context.Context, key string) {
			_ = o.Rebuild(ctx, key) // counted in Stats
		}, PoolConfig{Workers: cfg.Workers, QueueLen: cfg.QueueLen})
		if err != nil {
			_ = l.Close()
			return nil, err
		}
		o.runner = o.pool
	}
	if cfg.RefreshEvery > 0 {
		o.tracked = newTracker(cfg.MaxTracked, cfg.RefreshEvery/16)
		ctx, cancel := context.WithCancel(context.Background())
		o.stop = cancel
		o.done.Add(1)
		go o.refreshAhead(ctx)
	}
	return o, nil
}

// Get returns the object of key: the cached one when there is one, fresh
// or stale (a stale object is answered at once and rebuilt in the
// background); on a miss it is built once, for the whole cluster, while
// the other callers wait. A build's cache.ErrNotFound is answered as
// cache.ErrNotFound. The object is shared: treat it as immutable. After
// Close, Get returns ErrClosed.
func (o *Objects[T]) Get(ctx context.Context, key string) (T, error) {
	v, err := o.loader.Get(ctx, key, o.cfg.TTL, func(ctx context.Context) (T, error) {
		return o.build(ctx, key)
	})
	if err == nil && o.tracked != nil {
		o.tracked.touch(key, time.Now().UnixNano())
	}
	return v, err
}

// Invalidate says the source of keys changed. It marks their objects
// stale, which voids every rebuild in progress (none of them can store
// its result), and submits a rebuild of each to the Runner. Readers keep
// getting the last good object until the rebuild lands.
//
// An error means the invalidation of some key may not have taken effect.
// A rebuild the Runner refuses is not an error (it is counted in
// Stats.SubmitsDropped): the object is stale, so the next reader has it
// rebuilt.
func (o *Objects[T]) Invalidate(ctx context.Context, keys ...string) error {
	err := o.loader.Expire(ctx, keys...)
	for _, k := range keys {
		o.submit(ctx, k)
	}
	return err
}

// Rebuild builds the object of key now and stores it, under the key's
// lease, replacing the cached one; readers keep the previous object until
// then. It is what the Runner's workers run, exported for workers of a job
// queue in other processes.
//
// When another caller holds the lease (it is rebuilding the key already)
// Rebuild does nothing and returns nil. When the build fails, the last
// good object is kept and the error returned. When the build returns
// cache.ErrNotFound the object is removed (or, with NegativeTTL, the
// absence cached) and Rebuild returns nil. After Close it returns
// ErrClosed.
func (o *Objects[T]) Rebuild(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.BuildTimeout)
	defer cancel()
	_, err := o.loader.Refresh(ctx, key, o.cfg.TTL, func(ctx context.Context) (T, error) {
		return o.build(ctx, key)
	})
	switch {
	case err == nil:
		o.rebuilds.Add(1)
		return nil
	case errors.Is(err, cache.ErrClosed):
		return err
	case errors.Is(err, cache.ErrRefreshing):
		o.skipped.Add(1)
		return nil
	case errors.Is(err, cache.ErrNotFound):
		o.rebuilds.Add(1)
		if o.cfg.NegativeTTL == 0 {
			// Refresh restored the old object: the source has none now.
			return o.loader.Delete(ctx, key)
		}
		return nil
	default:
		o.rebuildErrors.Add(1)
		return err
	}
}

// Stats returns the counters.
func (o *Objects[T]) Stats() Stats {
	st := Stats{
		Stats:           o.loader.Stats(),
		Rebuilds:        o.rebuilds.Load(),
		RebuildErrors:   o.rebuildErrors.Load(),
		RebuildsSkipped: o.skipped.Load(),
		SubmitsDropped:  o.dropped.Load(),
	}
	if o.tracked != nil {
		st.Tracked = o.tracked.len()
	}
	return st
}

// Close stops refresh-ahead, closes the default Pool (dropping the
// rebuilds still queued and cancelling those running) and the Loader, and
// waits for all their goroutines. It never closes the cache, a Runner
// given in Config, or the Invalidator. Close is idempotent.
//
// After Close, Get and Rebuild return ErrClosed. Invalidate keeps working
// (it needs only the cache): it marks the objects stale, and the rebuilds
// it submits to the closed default Pool are dropped, as its doc says of
// any refused rebuild; a Runner given in Config still receives them.
func (o *Objects[T]) Close() error {
	o.closeOnce.Do(func() {
		if o.stop != nil {
			o.stop()
			o.done.Wait()
		}
		if o.pool != nil {
			_ = o.pool.Close()
		}
		_ = o.loader.Close()
	})
	return nil
}

func (o *Objects[T]) submit(ctx context.Context, key string) {
	if err := o.runner.Submit(ctx, key); err != nil {
		o.dropped.Add(1)
	}
}

// refreshAhead submits, every RefreshEvery, a rebuild of each key read
// within IdleAfter, and forgets the others.
func (o *Objects[T]) refreshAhead(ctx context.Context) {
	defer o.done.Done()
	t := time.NewTicker(o.cfg.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		idleBefore := time.Now().UnixNano() - int64(o.cfg.IdleAfter)
		for _, key := range o.tracked.sweep(idleBefore) {
			if ctx.Err() != nil {
				return
			}
			o.submit(ctx, key)
		}
	}
}
