// Package memcachedcache is a cache.ObjectCache and cache.BatchCache on
// Memcached, through the caller's github.com/bradfitz/gomemcache client.
//
// # Keys
//
// Memcached keys are at most 250 bytes of printable, non-space ASCII. A cache
// key made only of printable ASCII (0x21-0x7e) that does not begin with '~'
// and fits in 250 bytes together with the prefix is used as is: the memcached
// key is Prefix + key. Any other key (spaces, control or non-ASCII bytes, a
// leading '~', or too long) is hashed, never refused: it is stored under
// Prefix + "~h" + base64url(SHA-256(key)). Direct keys never begin with '~'
// after the prefix and hashed ones always do, so two different keys never
// share a memcached key (short of a SHA-256 collision). Keys longer than
// cache.MaxKeyLength, and the empty key, are cache.ErrInvalidKey.
//
// # Expiry
//
// Memcached takes an expiration in whole seconds, and its clock ticks once a
// second. A TTL is rounded up to the next second and one second is added
// for the tick, so an entry never expires early; it may live up to two
// seconds past its TTL (a Loader's entries carry their own freshness and are
// not served past it). Up to 30 days it
// is sent as relative seconds; beyond, as an absolute Unix time (which then
// depends on the server's clock agreeing with the client's), clamped to the
// int32 limit of the protocol (2038-01-19). A TTL of 0 means no expiry (the
// entry lives until evicted); a negative TTL is cache.ErrInvalidTTL.
//
// # Errors
//
// A missing item (memcache.ErrCacheMiss) is cache.ErrMiss. Any other client
// error, including a server that cannot be reached, is wrapped
// ("memcachedcache: get: ...") and is never ErrMiss, so callers can fail open
// to their data source. A value the server refuses as too large (above its -I
// item size limit, 1 MB by default) is cache.ErrTooLarge; nothing is stored,
// and memcached drops any older value of that key, so a later Get misses
// rather than returning stale data.
//
// # Batches
//
// GetMulti is one round trip per server through client.GetMulti. gomemcache
// has no pipelined multi-set, so SetMulti is a loop of Sets, one round trip
// per item; it validates every key first and stops at the first error.
//
// # Context and time bounds
//
// gomemcache takes no context: each method checks ctx before every round
// trip but cannot interrupt one in flight. What bounds a call is the
// client's Timeout (memcache.DefaultTimeout, 500 ms, when zero), which
// gomemcache applies to the dial and to each round trip: against a hung
// server (one that accepts and never answers) a Get or Set fails after
// Timeout, and against a dead one (refused) at once; a call of several
// round trips (Delete of several keys, SetMulti, GetMulti over several
// servers) may take Timeout for each. A context's deadline, such as a
// cache.Loader's CacheTimeout, does not shorten a round trip: set Timeout
// to the fail-open bound you want (a few round trips, not seconds).
//
// # Lifecycle
//
// A Cache holds no goroutine and no connection of its own, so it has no
// Close, and never closes the caller's client.
package memcachedcache

import (
	"github.com/scaleout/scaleout/internal/mckey"

	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/scaleout/scaleout/cache"
)

// DefaultPrefix is the key prefix used when Config.Prefix is empty.
const DefaultPrefix = "scaleout:cache:"

// hashMarker starts the part after the prefix of every hashed key.
const hashMarker = "~h"

// MaxPrefixLength leaves room after the prefix for a hashed key.
const MaxPrefixLength = mckey.MaxKey - len(hashMarker) - mckey.HashLen

// Config configures a Cache. The zero value is valid.
type Config struct {
	// Prefix starts every key the cache writes (default DefaultPrefix). At
	// most MaxPrefixLength bytes of printable ASCII without spaces.
	Prefix string
}

// Cache is a cache.BatchCache on Memcached. It is safe for concurrent use.
type Cache struct {
	c      *memcache.Client
	prefix string
	now    func() time.Time
}

var _ cache.BatchCache = (*Cache)(nil)

// New returns a Cache using client, which it never closes.
func New(client *memcache.Client, cfg Config) (*Cache, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: memcachedcache: nil client", cache.ErrInvalidConfig)
	}
	p := cfg.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	if len(p) > MaxPrefixLength || !mckey.Safe(p) {
		return nil, fmt.Errorf("%w: memcachedcache: prefix must be at most %d bytes of printable ASCII without spaces",
			cache.ErrInvalidConfig, MaxPrefixLength)
	}
	return &Cache{c: client, prefix: p, now: time.Now}, nil
}

// key returns the memcached key of a cache key. See the package doc.
func (c *Cache) key(k string) string { return mckey.Key(c.prefix, k, hashMarker) }

// expiration converts ttl into memcached's expiration. See the package doc.
func expiration(now time.Time, ttl time.Duration) int32 {
	exp, _ := mckey.Expiration(now, now.Add(ttl)) // ttl 0 gives 0: no expiry
	return exp
}

// translate maps a client error: a refused large item becomes
// cache.ErrTooLarge, a missing item cache.ErrMiss; everything else is wrapped.
func translate(op string, err error) error {
	if errors.Is(err, memcache.ErrCacheMiss) {
		return cache.ErrMiss
	}
	if mckey.TooLarge(err) {
		return fmt.Errorf("memcachedcache: %s: %w (%v)", op, cache.ErrTooLarge, err)
	}
	return fmt.Errorf("memcachedcache: %s: %w", op, err)
}

func check(ctx context.Context, op, key string) error {
	if err := cache.CheckKey(key); err != nil {
		return fmt.Errorf("memcachedcache: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcachedcache: %s: %w", op, err)
	}
	return nil
}

func checkTTL(op string, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("memcachedcache: %s: %w", op, cache.ErrInvalidTTL)
	}
	return nil
}

// Get implements cache.ObjectCache.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	if err := check(ctx, "get", key); err != nil {
		return nil, err
	}
	it, err := c.c.Get(c.key(key))
	if err != nil {
		return nil, translate("get", err)
	}
	return it.Value, nil
}

// Set implements cache.ObjectCache.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := check(ctx, "set", key); err != nil {
		return err
	}
	if err := checkTTL("set", ttl); err != nil {
		return err
	}
	return c.set(c.key(key), value, expiration(c.now(), ttl))
}

func (c *Cache) set(mkey string, value []byte, exp int32) error {
	if value == nil {
		value = []byte{}
	}
	if err := c.c.Set(&memcache.Item{Key: mkey, Value: value, Expiration: exp}); err != nil {
		return translate("set", err)
	}
	return nil
}

// Delete implements cache.ObjectCache. It is one round trip per key.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		if err := check(ctx, "delete", k); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memcachedcache: delete: %w", err)
		}
		if err := c.c.Delete(c.key(k)); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
			return translate("delete", err)
		}
	}
	return nil
}

// GetMulti implements cache.BatchCache with one client.GetMulti.
func (c *Cache) GetMulti(ctx context.Context, keys []string) (map[string][]byte, error) {
	for _, k := range keys {
		if err := check(ctx, "getmulti", k); err != nil {
			return nil, err
		}
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memcachedcache: getmulti: %w", err)
	}
	back := make(map[string][]string, len(keys)) // memcached key -> caller keys
	mkeys := make([]string, 0, len(keys))
	for _, k := range keys {
		mk := c.key(k)
		if _, seen := back[mk]; !seen {
			mkeys = append(mkeys, mk)
		}
		back[mk] = append(back[mk], k)
	}
	items, err := c.c.GetMulti(mkeys)
	if err != nil {
		return nil, translate("getmulti", err)
	}
	for mk, it := range items {
		for _, k := range back[mk] {
			out[k] = it.Value
		}
	}
	return out, nil
}

// SetMulti implements cache.BatchCache. gomemcache has no pipelined
// multi-set, so this is one Set (one round trip) per item; every key and the
// TTL are checked before anything is written, and the first error stops the
// loop (items already written stay).
func (c *Cache) SetMulti(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	for k := range items {
		if err := check(ctx, "setmulti", k); err != nil {
			return err
		}
	}
	if err := checkTTL("setmulti", ttl); err != nil {
		return err
	}
	exp := expiration(c.now(), ttl)
	for k, v := range items {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memcachedcache: setmulti: %w", err)
		}
		if err := c.set(c.key(k), v, exp); err != nil {
			return err
		}
	}
	return nil
}
