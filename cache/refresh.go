package cache

import (
	"context"
	"errors"
	"time"
)

// ErrRefreshing is Refresh's answer when another caller, in this process
// or another, holds the key's lease and is reloading it already.
var ErrRefreshing = errors.New("cache: another caller is reloading the key")

// Expire marks keys stale without removing their values: readers get the
// stale value (within StaleFor, or at once with RefreshStale) while one of
// them reloads it, and any fill in progress loses its lease, so it cannot
// write back what it read before the change. Without StaleFor, or on a
// cache that is not a SwapCache, Expire deletes.
func (l *Loader[T]) Expire(ctx context.Context, keys ...string) error {
	if l.swap == nil || l.cfg.StaleFor == 0 {
		return l.Delete(ctx, keys...)
	}
	var errs []error
	for _, k := range keys {
		if err := l.expire(ctx, k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errors.Join(errs...), l.invalidate(ctx, keys))
}

func (l *Loader[T]) expire(ctx context.Context, key string) error {
	for range 8 {
		raw, err := l.cache.Get(ctx, key)
		if errors.Is(err, ErrMiss) {
			return nil
		}
		if err != nil {
			return err
		}
		e, ok := parseEnvelope(raw)
		if !ok || e.kind == kindLease {
			return l.cache.Delete(ctx, key) // nothing worth keeping; voids the lease
		}
		now := l.now()
		e.freshUntil, e.token, e.leaseUntil = now-1, 0, 0
		err = l.swap.CompareAndSwap(ctx, key, raw, e.marshal(), l.cfg.StaleFor)
		if !errors.Is(err, ErrNotStored) {
			return err
		}
	}
	// The key keeps changing under us: deleting is always safe.
	return l.cache.Delete(ctx, key)
}

// Refresh reloads key now, under its lease, and stores the result for
// ttl; readers keep the current value until it is replaced, and every
// local tier drops its copy afterwards. It fails with ErrRefreshing when
// another caller holds a live lease on the key, with ErrClosed after
// Close, and with an error when the result could not be stored (readers
// may then keep the old value until its TTL: Delete the key to be sure);
// it answers the loaded value either way.
func (l *Loader[T]) Refresh(ctx context.Context, key string, ttl time.Duration, load func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := checkLoad(key, ttl, load == nil); err != nil {
		return zero, err
	}
	if l.closed.Load() {
		return zero, ErrClosed
	}
	if l.swap == nil {
		v, err, notStored := l.fillOr(ctx, key, ttl, load, nil, nil, false, noLocal)
		return v, errors.Join(err, notStored, l.invalidate(ctx, []string{key}))
	}
	raw, err := l.cacheGet(ctx, key)
	now := l.now()
	var lease []byte
	var stale *envelope
	switch {
	case errors.Is(err, ErrMiss):
		lease = l.newLease(now, nil)
		err = l.cacheAdd(ctx, key, lease, l.cfg.LeaseTTL)
	case err != nil:
		return zero, err
	default:
		e, ok := parseEnvelope(raw)
		if ok && e.leased(now) {
			return zero, ErrRefreshing
		}
		if ok && e.kind != kindLease {
			stale = &e
		}
		lease = l.newLease(now, stale)
		err = l.cacheCAS(ctx, key, raw, lease, l.leaseStoreTTL(now, stale))
	}
	if errors.Is(err, ErrNotStored) {
		return zero, ErrRefreshing
	}
	if err != nil {
		return zero, err
	}
	v, err, notStored := l.fillOr(ctx, key, ttl, load, lease, stale, false, noLocal)
	// Even a failed load may have stored something (a not-found entry):
	// local copies of the old value must go either way. A result that
	// could not be stored is an error: the cache may still hold the old
	// value, fresh, and its readers read it.
	return v, errors.Join(err, notStored, l.invalidate(ctx, []string{key}))
}
