package memcachedcache

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/scaleout/scaleout/cache"
)

var _ cache.SwapCache = (*Cache)(nil)

// Add stores value under key only if key holds nothing: one memcached add.
func (c *Cache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := check(ctx, "add", key); err != nil {
		return err
	}
	if err := checkTTL("add", ttl); err != nil {
		return err
	}
	if value == nil {
		value = []byte{}
	}
	err := c.c.Add(&memcache.Item{Key: c.key(key), Value: value, Expiration: expiration(c.now(), ttl)})
	if errors.Is(err, memcache.ErrNotStored) {
		return cache.ErrNotStored
	}
	if err != nil {
		return translate("add", err)
	}
	return nil
}

// CompareAndSwap stores value under key only if key holds exactly old: a
// gets, a comparison here, and a cas with the unique the gets returned, so
// a change by anyone between the two round trips makes the cas fail.
func (c *Cache) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	if err := check(ctx, "compare and swap", key); err != nil {
		return err
	}
	if err := checkTTL("compare and swap", ttl); err != nil {
		return err
	}
	it, err := c.c.Get(c.key(key))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return cache.ErrNotStored
	}
	if err != nil {
		return translate("compare and swap", err)
	}
	if !bytes.Equal(it.Value, old) {
		return cache.ErrNotStored
	}
	if value == nil {
		value = []byte{}
	}
	it.Value, it.Expiration = value, expiration(c.now(), ttl)
	err = c.c.CompareAndSwap(it)
	if errors.Is(err, memcache.ErrCASConflict) || errors.Is(err, memcache.ErrNotStored) || errors.Is(err, memcache.ErrCacheMiss) {
		return cache.ErrNotStored
	}
	if err != nil {
		return translate("compare and swap", err)
	}
	return nil
}
