package cache

import (
	"context"
	"time"
)

// The Loader's calls to its cache, each bounded by CacheTimeout when it is
// set, so that a slow or unreachable cache costs a request at most that
// much before the Loader fails open to the load function.

// bound returns ctx with the CacheTimeout deadline, if any.
func (l *Loader[T]) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if l.cfg.CacheTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.cfg.CacheTimeout)
}

func (l *Loader[T]) cacheGet(ctx context.Context, key string) ([]byte, error) {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return l.cache.Get(ctx, key)
}

func (l *Loader[T]) cacheSet(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return l.cache.Set(ctx, key, value, ttl)
}

func (l *Loader[T]) cacheAdd(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return l.swap.Add(ctx, key, value, ttl)
}

func (l *Loader[T]) cacheCAS(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return l.swap.CompareAndSwap(ctx, key, old, value, ttl)
}
