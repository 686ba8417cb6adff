package cache

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"time"
)

// flight answers one Get for the whole process: it reads the cache, and on
// a miss or a stale entry takes the key's fill lease (on a SwapCache),
// loads, and writes back through the lease.
//
// first is what the caller's own read of the cache found; epoch is the
// local tier's epoch before that read.
func (l *Loader[T]) flight(ctx context.Context, key string, ttl time.Duration, load func(context.Context) (T, error), epoch uint64, first read) (T, error) {
	var zero T
	waitStart := time.Time{}
	backoff := time.Millisecond
	for {
		raw, err := first.raw, first.err
		if first.done {
			raw, err = l.cacheGet(ctx, key)
		}
		first.done = true
		now := l.now()
		switch {
		case errors.Is(err, ErrMiss):
			if l.swap == nil {
				l.stats.misses.Add(1)
				return l.fill(ctx, key, ttl, load, nil, nil, epoch)
			}
			lease := l.newLease(now, nil)
			switch err := l.cacheAdd(ctx, key, lease, l.cfg.LeaseTTL); {
			case err == nil:
				l.stats.misses.Add(1)
				return l.fill(ctx, key, ttl, load, lease, nil, epoch)
			case errors.Is(err, ErrNotStored):
				continue // another process took it first: read its lease
			default:
				l.orphans.add(key, lease, now) // the Add may have landed
				return l.failOpen(ctx, load)
			}
		case err != nil:
			return l.failOpen(ctx, load)
		}

		if v, err, ok := l.hit(ctx, key, ttl, load, raw, epoch); ok {
			return v, err
		}
		e, ok := parseEnvelope(raw)
		switch {
		case ok && e.kind != kindLease && e.leased(now) && now < e.freshUntil+int64(l.cfg.StaleFor):
			// Stale within StaleFor, and another process is reloading it:
			// take the stale value rather than wait.
			if v, derr := l.decode(e); derr == nil {
				l.stats.hits.Add(1)
				l.stats.staleServes.Add(1)
				return v, notFoundErr(e)
			}
		case ok && e.leased(now) && !l.orphans.left(key, e, now):
			// Another process fills the key (over a stale entry that is
			// past StaleFor, or over nothing): wait for its fill.
			if waitStart.IsZero() {
				waitStart = time.Now()
				l.stats.leaseWaits.Add(1)
			}
			if time.Since(waitStart) >= l.cfg.LeaseWait {
				// The filler is too slow: answer from the source, and leave
				// the key to its lease holder.
				l.stats.misses.Add(1)
				return l.loadOnly(ctx, load)
			}
			if err := sleep(ctx, backoff); err != nil {
				return zero, err
			}
			backoff = min(2*backoff, 50*time.Millisecond)
			continue
		}

		// A stale entry nobody is reloading, an expired lease, a lease this
		// Loader left behind, or bytes a Loader did not write: take the
		// lease over them.
		var stale *envelope
		if ok && e.kind != kindLease {
			stale = &e
		}
		if stale != nil && l.cfg.RefreshStale && l.swap != nil {
			if v, derr := l.decode(e); derr == nil {
				l.stats.hits.Add(1)
				l.stats.staleServes.Add(1)
				l.refreshInBackground(ctx, key, ttl, load, raw, e, now)
				return v, notFoundErr(e)
			}
		}
		if l.swap == nil {
			l.stats.misses.Add(1)
			return l.fill(ctx, key, ttl, load, nil, stale, epoch)
		}
		lease := l.newLease(now, stale)
		switch err := l.cacheCAS(ctx, key, raw, lease, l.leaseStoreTTL(now, stale)); {
		case err == nil:
			if ok && e.token != 0 {
				l.orphans.forget(key) // whatever lease was left, it is gone
			}
			l.stats.misses.Add(1)
			return l.fill(ctx, key, ttl, load, lease, stale, epoch)
		case errors.Is(err, ErrNotStored):
			continue // the entry changed under us: read it again
		default:
			l.orphans.add(key, lease, now) // the swap may have landed
			return l.failOpen(ctx, load)
		}
	}
}

// read is a result of cacheGet; done marks one already used.
type read struct {
	raw  []byte
	err  error
	done bool
}

// hit answers from raw when it holds a fresh, decodable entry (ok true),
// and then may start an early refresh and fill the local tier.
func (l *Loader[T]) hit(ctx context.Context, key string, ttl time.Duration, load func(context.Context) (T, error), raw []byte, epoch uint64) (v T, err error, ok bool) {
	v, e, now, err, ok := l.fresh(key, raw, epoch)
	if ok && l.refreshDue(e, now) {
		l.refreshInBackground(ctx, key, ttl, load, raw, e, now)
	}
	return v, err, ok
}

// fresh is hit without the early refresh, which it leaves to its caller
// (refreshDue): it answers from raw when it holds a fresh, decodable
// entry (ok true), and fills the local tier.
func (l *Loader[T]) fresh(key string, raw []byte, epoch uint64) (v T, e envelope, now int64, err error, ok bool) {
	e, parsed := parseEnvelope(raw)
	now = l.now()
	if !parsed || e.kind == kindLease || !e.fresh(now) {
		return v, e, now, nil, false
	}
	v, derr := l.decode(e)
	if derr != nil {
		return v, e, now, nil, false // undecodable (the type changed): reload over it
	}
	l.stats.hits.Add(1)
	if e.kind == kindNotFound {
		l.fillLocal(key, epoch, localEntry[T]{notFound: true}, 0, e.freshUntil)
		return v, e, now, ErrNotFound, true
	}
	l.fillLocal(key, epoch, localEntry[T]{v: v}, len(e.payload), e.freshUntil)
	return v, e, now, nil, true
}

// fill loads the value and writes it back: through the lease when there
// is one, so that a Delete or Set during the load, which replaces the
// lease, makes the write fail instead of storing what the load read before
// the change. stale, when not nil, is restored if the load fails, and
// answers in its place.
func (l *Loader[T]) fill(ctx context.Context, key string, ttl time.Duration, load func(context.Context) (T, error), lease []byte, stale *envelope, epoch uint64) (T, error) {
	v, err, _ := l.fillOr(ctx, key, ttl, load, lease, stale, true, epoch)
	return v, err
}

// noLocal is the epoch of fills whose result stays out of the local tier.
const noLocal = ^uint64(0)

// fillOr is fill; serveStale says whether a failed load is answered with
// the stale entry or with its error. A stored result also goes into the
// local tier, unless epoch is noLocal (see fillLocal). notStored is why a
// loaded result was not stored, when the cache may still hold what was
// there before (an encoding or cache error; not a voided lease, which
// means a change replaced the entry): Get ignores it, Refresh reports it.
func (l *Loader[T]) fillOr(ctx context.Context, key string, ttl time.Duration, load func(context.Context) (T, error), lease []byte, stale *envelope, serveStale bool, epoch uint64) (_ T, _ error, notStored error) {
	start := l.now()
	v, err := l.callLoad(ctx, load)
	if err != nil && !errors.Is(err, ErrNotFound) {
		l.stats.loadErrors.Add(1)
	}
	return l.keep(ctx, key, ttl, v, err, start, time.Duration(l.now()-start), lease, stale, serveStale, epoch)
}

// keep stores what a load of key returned (v, err; the load began at
// loadedAt, in l.now's clock, and took delta) as fillOr says, and answers
// the caller as fillOr does. The entry is fresh for ttl from loadedAt, not
// from now: the load may have read the source at its start, and a slow
// load (or a slow store, or a busy machine) must not make what it read
// live longer than ttl.
func (l *Loader[T]) keep(ctx context.Context, key string, ttl time.Duration, v T, err error, loadedAt int64, delta time.Duration, lease []byte, stale *envelope, serveStale bool, epoch uint64) (_ T, _ error, notStored error) {
	var zero T
	var e envelope
	var storeTTL time.Duration
	switch {
	case err == nil:
		payload, merr := l.codec.Marshal(v)
		if merr != nil {
			l.release(ctx, key, lease, stale)
			return v, nil, fmt.Errorf("cache: encode %q: %w", key, merr) // the caller still gets its value; only caching failed
		}
		e = envelope{kind: kindValue, freshUntil: freshFrom(loadedAt, ttl), delta: delta, payload: payload}
		storeTTL = l.storeTTLUntil(e.freshUntil)
	case errors.Is(err, ErrNotFound) && l.cfg.NegativeTTL > 0:
		e = envelope{kind: kindNotFound, freshUntil: freshFrom(loadedAt, l.cfg.NegativeTTL), delta: delta}
		storeTTL = l.storeTTLUntil(e.freshUntil)
	case errors.Is(err, ErrNotFound):
		l.release(ctx, key, lease, stale)
		return zero, err, nil
	default: // counted in LoadErrors by the caller, once per call of load
		l.release(ctx, key, lease, stale)
		if stale != nil && serveStale {
			if sv, derr := l.decode(*stale); derr == nil {
				l.stats.staleServes.Add(1)
				return sv, notFoundErr(*stale), nil
			}
		}
		return zero, err, nil
	}
	if storeTTL < 0 { // the load outlasted its ttl (and the stale window): nothing fresh to keep
		l.release(ctx, key, lease, stale)
		return v, err, nil
	}
	b := e.marshal()
	var serr error
	if lease != nil {
		serr = l.cacheCAS(ctx, key, lease, b, storeTTL) // ErrNotStored: the lease was voided; the caller still gets what it loaded
		if serr != nil && !errors.Is(serr, ErrNotStored) {
			l.orphans.add(key, lease, l.now()) // the lease may still be there
		}
	} else {
		serr = l.cacheSet(ctx, key, b, storeTTL)
	}
	if serr == nil && epoch != noLocal {
		l.fillLocal(key, epoch, localEntry[T]{v: v, notFound: err != nil}, len(e.payload), e.freshUntil)
	}
	if serr != nil && !errors.Is(serr, ErrNotStored) {
		return v, err, fmt.Errorf("cache: store %q: %w", key, serr)
	}
	return v, err, nil
}

// release gives a lease back after a failed load. With no value to serve,
// the lease is expired at once so that a waiter retries the load. Over a
// stale entry, the lease is kept for retryAfter: readers keep getting the
// stale value, and a failing source sees about one retry per key per
// retryAfter from the whole cluster, not one per request.
func (l *Loader[T]) release(ctx context.Context, key string, lease []byte, stale *envelope) {
	if lease == nil {
		return
	}
	ctx, cancel := l.bound(context.WithoutCancel(ctx)) // give back even if the caller is gone
	defer cancel()
	now := l.now()
	back := envelope{kind: kindLease, token: 1, leaseUntil: now} // expired: anyone may take it
	if stale != nil {
		back = *stale
		back.token, back.leaseUntil = 1, now+int64(min(retryAfter, l.cfg.LeaseTTL))
	}
	if err := l.cacheCAS(ctx, key, lease, back.marshal(), l.leaseStoreTTL(now, stale)); err != nil && !errors.Is(err, ErrNotStored) {
		l.orphans.add(key, lease, now) // the lease may still be there
	}
}

// retryAfter spaces the reloads of a stale entry whose source fails.
const retryAfter = time.Second

// refreshDue runs XFetch on a fresh hit of e: it says, with probability
// rising as expiry nears, to reload the entry in the background while
// every reader keeps the current value.
func (l *Loader[T]) refreshDue(e envelope, now int64) bool {
	if l.cfg.EarlyRefresh < 0 || e.freshUntil == 0 || e.delta <= 0 || e.leased(now) {
		return false
	}
	scale := float64(e.delta) * l.cfg.EarlyRefresh
	left := float64(e.freshUntil - now)
	if left > 40*scale {
		return false // P(refresh) = e^-40: skip the logarithm on most hits
	}
	gap := -scale * math.Log(1-mrand.Float64()) // 1-x is in (0, 1]
	return gap >= left
}

// refreshInBackground takes the lease over the entry raw (one reader in
// the cluster wins it; the entry stays readable) and reloads it on a
// goroutine that Close waits for.
func (l *Loader[T]) refreshInBackground(ctx context.Context, key string, ttl time.Duration, load func(context.Context) (T, error), raw []byte, e envelope, now int64) {
	if l.swap == nil || !l.countBackground() {
		return
	}
	lease := l.newLease(now, &e)
	if l.cacheCAS(ctx, key, raw, lease, l.leaseStoreTTL(now, &e)) != nil {
		l.background.Done()
		return // another reader took it
	}
	l.stats.refreshes.Add(1)
	go func() {
		defer l.background.Done()
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.LoadTimeout)
		defer cancel()
		_, _ = l.fill(bctx, key, ttl, load, lease, &e, noLocal)
	}()
}

// countBackground counts a background refresh about to start, unless the
// Loader is closed. The check and the count are under one lock with
// Close's, so a refresh either is counted before Close waits or never
// starts.
func (l *Loader[T]) countBackground() bool {
	l.backgroundMu.Lock()
	defer l.backgroundMu.Unlock()
	if l.closed.Load() {
		return false
	}
	l.background.Add(1)
	return true
}

// failOpen answers from the source when the cache cannot be reached, and
// writes nothing: the Loader recovers on its own when the cache returns.
func (l *Loader[T]) failOpen(ctx context.Context, load func(context.Context) (T, error)) (T, error) {
	l.stats.cacheErrors.Add(1)
	l.stats.misses.Add(1)
	return l.loadOnly(ctx, load)
}

// loadOnly calls load without caching its result.
func (l *Loader[T]) loadOnly(ctx context.Context, load func(context.Context) (T, error)) (T, error) {
	v, err := l.callLoad(ctx, load)
	if err != nil && !errors.Is(err, ErrNotFound) {
		l.stats.loadErrors.Add(1)
	}
	return v, err
}

// callLoad runs load, turning a panic into an error so that the flight's
// other callers get an answer and the lease is released.
func (l *Loader[T]) callLoad(ctx context.Context, load func(context.Context) (T, error)) (v T, err error) {
	l.stats.loads.Add(1)
	var start time.Time
	if l.stats.loadDuration.Enabled() {
		start = time.Now()
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: load panicked: %v", ErrLoadPanic, r)
		}
		if l.stats.loadDuration.Enabled() {
			l.stats.loadDuration.ObserveDuration(time.Since(start))
		}
	}()
	return load(ctx)
}

func (l *Loader[T]) decode(e envelope) (T, error) {
	if e.kind == kindNotFound {
		var zero T
		return zero, nil
	}
	return l.codec.Unmarshal(e.payload)
}

func notFoundErr(e envelope) error {
	if e.kind == kindNotFound {
		return ErrNotFound
	}
	return nil
}

// newLease returns a lease envelope with a fresh random token: over stale,
// the stale entry with the lease added (readers keep being served it),
// else an empty lease.
func (l *Loader[T]) newLease(now int64, stale *envelope) []byte {
	var t [8]byte
	_, _ = rand.Read(t[:])
	e := envelope{kind: kindLease}
	if stale != nil {
		e = *stale
	}
	e.token = binary.BigEndian.Uint64(t[:]) | 1 // never 0, which means "no lease"
	e.leaseUntil = now + int64(l.cfg.LeaseTTL)
	return e.marshal()
}

// leaseStoreTTL is how long the cache keeps a leased entry: an empty lease
// for LeaseTTL; a stale entry for what is left of its stale window, but at
// least LeaseTTL so the lease cannot vanish under its holder.
func (l *Loader[T]) leaseStoreTTL(now int64, stale *envelope) time.Duration {
	if stale == nil {
		return l.cfg.LeaseTTL
	}
	if stale.freshUntil == 0 {
		return 0
	}
	left := time.Duration(stale.freshUntil-now) + l.cfg.StaleFor
	return max(left, l.cfg.LeaseTTL)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
