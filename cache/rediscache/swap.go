package rediscache

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/internal/redisha"
)

var _ cache.SwapCache = (*Cache)(nil)

// Add stores value under key only if key holds nothing: one SET NX.
func (c *Cache) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := expiry("add", ttl)
	if err != nil {
		return err
	}
	if err := checkKey("add", key); err != nil {
		return err
	}
	if err := c.checkValue("add", value); err != nil {
		return err
	}
	k := c.key(key)
	ok, err := redisha.ValueWithin(ctx, c.c, 0, func(ctx context.Context) (bool, error) { return c.c.SetNX(ctx, k, value, ttl).Result() })
	if err != nil {
		return fmt.Errorf("rediscache: add: %w", err)
	}
	if !ok {
		return cache.ErrNotStored
	}
	return nil
}

// compareAndSwap replaces KEYS[1] by ARGV[2] (for ARGV[3] milliseconds, 0:
// no expiry) only if it holds exactly ARGV[1]. One key, so it runs on a
// Cluster.
var compareAndSwap = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
	return 0
end
if ARGV[3] == '0' then
	redis.call('SET', KEYS[1], ARGV[2])
else
	redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
`)

// CompareAndSwap stores value under key only if key holds exactly old: one
// script call (EVALSHA), atomic on the server.
func (c *Cache) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	ttl, err := expiry("compare and swap", ttl)
	if err != nil {
		return err
	}
	if err := checkKey("compare and swap", key); err != nil {
		return err
	}
	if err := c.checkValue("compare and swap", value); err != nil {
		return err
	}
	keys, ms := []string{c.key(key)}, strconv.FormatInt(ttl.Milliseconds(), 10)
	n, err := redisha.ValueWithin(ctx, c.c, 0, func(ctx context.Context) (int, error) {
		return compareAndSwap.Run(ctx, c.c, keys, old, value, ms).Int()
	})
	if err != nil {
		return fmt.Errorf("rediscache: compare and swap: %w", err)
	}
	if n == 0 {
		return cache.ErrNotStored
	}
	return nil
}
