package cache

import (
	"context"
	"errors"
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

// cacheGetMulti reads keys in one GetMulti on a BatchCache, else one by
// one; absent keys are not in the map, and any other failure fails all.
func (l *Loader[T]) cacheGetMulti(ctx context.Context, keys []string) (map[string][]byte, error) {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	if b, ok := l.cache.(BatchCache); ok {
		return b.GetMulti(ctx, keys)
	}
	raws := make(map[string][]byte, len(keys))
	for _, k := range keys {
		raw, err := l.cache.Get(ctx, k)
		switch {
		case err == nil:
			raws[k] = raw
		case !errors.Is(err, ErrMiss):
			return nil, err
		}
	}
	return raws, nil
}
