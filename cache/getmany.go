package cache

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// GetMany returns the values of keys, each answered as Get would answer
// it, in about one round trip for the keys the cache holds and one call
// of load for those it does not:
//
//   - the local tier answers what it holds;
//   - the rest is read in one GetMulti on a BatchCache (key by key
//     otherwise); fresh entries are hits, with early refresh as for Get;
//   - stale entries are served as Get serves them (another process is
//     reloading them, or RefreshStale reloads them in the background);
//   - the other keys (missing, or stale with nobody reloading them) are
//     leased as Get leases a key, and load is called once with every key
//     this call leased, on ctx bounded by LoadTimeout. Its results are
//     written back through the leases; a key load leaves out of its map is
//     not found (remembered for NegativeTTL) and a failed load releases
//     the leases, serving the stale value where there is one.
//   - a key whose lease another caller holds is left to Get, which waits
//     for that filler (up to LeaseWait) or shares this process's flight;
//   - when the cache fails, the keys not yet answered are loaded in that
//     one call and nothing is written (fail open).
//
// The map holds the keys that have a value; keys not found are absent.
// The error, when not nil, is the load's (or ctx's) and the map then
// holds the keys answered all the same (hits and stale values). A key
// listed twice is answered once. After Close, GetMany returns ErrClosed.
//
// Unlike Get, the load runs on the caller's context: no flight outlives
// the caller, so a caller who gives up cancels the load, and the leases
// it held are released for the next reader.
func (l *Loader[T]) GetMany(ctx context.Context, keys []string, ttl time.Duration, load func(ctx context.Context, keys []string) (map[string]T, error)) (map[string]T, error) {
	if ttl < 0 {
		return nil, ErrInvalidTTL
	}
	if load == nil {
		return nil, fmt.Errorf("%w: nil load function", ErrInvalidConfig)
	}
	for _, k := range keys {
		if err := CheckKey(k); err != nil {
			return nil, err
		}
	}
	if l.closed.Load() {
		return nil, ErrClosed
	}
	out := make(map[string]T, len(keys))
	need := make([]string, 0, len(keys))
	seen := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		if l.local != nil {
			if e, ok := l.local.get(k); ok {
				l.stats.localHits.Inc()
				if !e.notFound {
					out[k] = e.v
				}
				continue
			}
		}
		need = append(need, k)
	}
	if len(need) == 0 {
		return out, nil
	}
	m := many[T]{l: l, ttl: ttl, load: load, out: out}
	epoch := l.epoch.Load()
	raws, err := l.cacheGetMulti(ctx, need)
	if err != nil {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		l.stats.cacheErrors.Add(uint64(len(need)))
		m.open = need
		return out, m.loadAll(ctx, epoch)
	}
	now := l.now()
	for _, k := range need {
		raw, ok := raws[k]
		if !ok {
			m.lease(ctx, k, nil, nil, now)
			continue
		}
		if v, e, now, err, ok := l.fresh(k, raw, epoch); ok {
			if l.refreshDue(e, now) {
				l.refreshInBackground(ctx, k, ttl, m.one(k), raw, e, now)
			}
			if err == nil {
				out[k] = v
			}
			continue
		}
		e, ok := parseEnvelope(raw)
		var stale *envelope
		if ok && e.kind != kindLease {
			stale = &e
			reloading := e.leased(now) && now < e.freshUntil+int64(l.cfg.StaleFor) // as Get serves it
			if reloading || (l.cfg.RefreshStale && l.swap != nil && !e.leased(now)) {
				if v, derr := l.decode(e); derr == nil {
					l.stats.hits.Add(1)
					l.stats.staleServes.Add(1)
					if !e.leased(now) {
						l.refreshInBackground(ctx, k, ttl, m.one(k), raw, e, now)
					}
					if e.kind != kindNotFound {
						out[k] = v
					}
					continue
				}
			}
		}
		if ok && e.leased(now) && !l.orphans.left(k, e, now) {
			m.wait = append(m.wait, k) // another caller is filling it
			continue
		}
		m.lease(ctx, k, raw, stale, now)
	}
	err = m.loadAll(ctx, epoch)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, k := range m.wait {
		v, err := l.Get(ctx, k, ttl, m.one(k))
		switch {
		case err == nil:
			out[k] = v
		case !errors.Is(err, ErrNotFound):
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// many is the state of one GetMany: the keys it leased (fill), those it
// loads without writing (open), those left to Get (wait), and its answers.
type many[T any] struct {
	l    *Loader[T]
	ttl  time.Duration
	load func(context.Context, []string) (map[string]T, error)
	out  map[string]T

	fill []leased
	open []string
	wait []string
}

// leased is a key of a GetMany to fill: its lease (nil on a cache that is
// not a SwapCache) and the stale entry under it, if any.
type leased struct {
	key   string
	lease []byte
	stale *envelope
}

// lease takes the fill lease of key over raw (nil: the key is missing)
// and files key where its answer will come from.
func (m *many[T]) lease(ctx context.Context, key string, raw []byte, stale *envelope, now int64) {
	l := m.l
	if l.swap == nil {
		m.fill = append(m.fill, leased{key: key, stale: stale})
		return
	}
	lease := l.newLease(now, stale)
	var err error
	if raw == nil {
		err = l.cacheAdd(ctx, key, lease, l.cfg.LeaseTTL)
	} else {
		err = l.cacheCAS(ctx, key, raw, lease, l.leaseStoreTTL(now, stale))
	}
	switch {
	case err == nil:
		if raw != nil {
			l.orphans.forget(key) // whatever lease was there, it is gone
		}
		m.fill = append(m.fill, leased{key: key, lease: lease, stale: stale})
	case errors.Is(err, ErrNotStored):
		m.wait = append(m.wait, key) // another caller got there first
	default:
		l.orphans.add(key, lease, now) // the write may have landed
		l.stats.cacheErrors.Add(1)
		m.open = append(m.open, key)
	}
}

// loadAll calls load once for the keys leased and those failed open,
// writes the results back through the leases and answers them.
func (m *many[T]) loadAll(ctx context.Context, epoch uint64) error {
	l := m.l
	n := len(m.fill) + len(m.open)
	if n == 0 {
		return nil
	}
	l.stats.misses.Add(uint64(n))
	keys := make([]string, 0, n)
	for _, f := range m.fill {
		keys = append(keys, f.key)
	}
	keys = append(keys, m.open...)
	lctx, cancel := context.WithTimeout(ctx, l.cfg.LoadTimeout)
	start := l.now()
	vals, err := l.callLoadMany(lctx, m.load, keys)
	delta := time.Duration(l.now() - start)
	cancel()
	if err != nil {
		l.stats.loadErrors.Add(1)
	}
	var failed bool
	for _, f := range m.fill {
		v, kerr := m.result(vals, err, f.key)
		v, kerr, _ = l.keep(ctx, f.key, m.ttl, v, kerr, start, delta, f.lease, f.stale, true, epoch)
		switch {
		case kerr == nil:
			m.out[f.key] = v
		case !errors.Is(kerr, ErrNotFound):
			failed = true
		}
	}
	for _, k := range m.open {
		if v, kerr := m.result(vals, err, k); kerr == nil {
			m.out[k] = v
		}
	}
	if err != nil && (failed || len(m.open) > 0) {
		return err
	}
	return nil
}

// result is the answer of the batch load for key: its value, or
// ErrNotFound when the load left it out.
func (m *many[T]) result(vals map[string]T, err error, key string) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	v, ok := vals[key]
	if !ok {
		return zero, ErrNotFound
	}
	return v, nil
}

// one is the load of a single key through the batch load: what an early
// or background refresh, or a Get left a key, calls.
func (m *many[T]) one(key string) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		vals, err := m.load(ctx, []string{key})
		return m.result(vals, err, key)
	}
}

// callLoadMany runs a batch load, turning a panic into an error.
func (l *Loader[T]) callLoadMany(ctx context.Context, load func(context.Context, []string) (map[string]T, error), keys []string) (vals map[string]T, err error) {
	l.stats.loads.Add(1)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: load panicked: %v", ErrLoadPanic, r)
		}
	}()
	return load(ctx, keys)
}
