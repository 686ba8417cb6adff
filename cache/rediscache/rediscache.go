// Package rediscache is a cache.ObjectCache and cache.BatchCache on Redis,
// through the caller's redis.UniversalClient: a single server, a Redis
// Cluster, Sentinel or a Ring all work unchanged. The Cache never closes the
// client.
//
// # Layout
//
// A value lives in one Redis string at
//
//	<prefix><key>
//
// with the key as it is: Redis keys are binary-safe, so no key is encoded,
// hashed or refused except by cache.CheckKey (empty, or longer than
// cache.MaxKeyLength). On a Cluster a key that holds a {hash tag} is placed by
// that tag, as Redis decides; a prefix holding a tag puts every key of the
// Cache in one slot (one node), which is allowed but rarely wanted.
//
// # Round trips
//
// Get is one GET and Set one SET (with PX, or EX for whole seconds, as
// go-redis chooses; a ttl that is not a whole number of milliseconds is
// rounded up, so an entry never expires before its ttl). Delete of one key is
// one DEL; of several keys, a pipeline of single-key DELs. GetMulti and
// SetMulti are a pipeline of GETs and SETs. Pipelines never send a
// multi-key command, so they work on a Cluster, where the client splits them
// by node and sends each node its share in one round trip, all nodes at once.
//
// # Atomicity
//
// A batch is not atomic: SetMulti or Delete may fail part way, having
// written or removed some keys and not others. Calling it again finishes the
// job (both are idempotent).
//
// # Failures
//
// Every failure to reach Redis is an error wrapping the client's
// ("rediscache: get: ..."), never cache.ErrMiss: redis.Nil alone means a
// miss, so a caller can fail open to its data source. The Cache keeps no
// connection state of its own: when the server comes back, the client's pool
// reconnects and the same Cache works again (go-redis, after repeated dial
// failures, answers with the last dial error until its background redial
// succeeds, about a second later).
//
// # Running on replicated Redis
//
// On Sentinel (redis.NewFailoverClient) or a Cluster with replicas, a call
// whose context has a deadline (a Loader's CacheTimeout) rides out the
// errors of a master switch (refused connections, READONLY, LOADING,
// CLUSTERDOWN, TRYAGAIN, MOVED) until that deadline, and a Loader then fails
// open to its load function; a call without a deadline is tried once, as
// before (go-redis's own retries aside), so a cache never holds a caller
// longer than it asked for. Publish retries the same way.
//
// A failover can lose the master's last writes: a Set (the entry reverts to
// an older value until its TTL or the next Set) or a Delete. The
// Invalidator tells its Loaders to drop their local tiers whenever its
// subscription drops and comes back, which a killed master causes at once,
// so no local tier misses an invalidation published before a kill. A
// forced Sentinel failover (SENTINEL FAILOVER) is different: the old master
// keeps running, and a subscription on it hears nothing published on the new
// master until the sentinels demote it and cut its pub/sub clients, a few
// seconds later (TestFailover, 20 switches: reads missed acknowledged
// writes for up to 15 s on a busy machine, none once the switches were
// over). On a Cluster, PUBLISH reaches every node; the one stale key seen
// there was a Set lost with a killed master. There is no durable mode: a
// cache's entries are rebuilt from the source of truth.
//
// # Lifecycle
//
// A Cache holds no goroutine and no connection of its own, so it has no
// Close, and never closes the client. An Invalidator holds a pub/sub
// connection and its goroutine from NewInvalidator: Close releases both
// and waits for the goroutine (close the Loaders on it first).
package rediscache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/internal/redisha"
	"github.com/scaleout/scaleout/internal/redisopt"
)

// DefaultPrefix is the key prefix used when Config.Prefix is empty.
const DefaultPrefix = "scaleout:cache:"

// RedisMaxBytes is Redis's own limit on a string value (proto-max-bulk-len,
// 512 MiB by default), the bound when Config.MaxBytes is 0.
const RedisMaxBytes = 512 << 20

// Config configures a Cache. The zero value is valid.
type Config struct {
	// Prefix starts every key the cache writes; default DefaultPrefix.
	Prefix string
	// MaxBytes, when positive, bounds one value: a larger Set or SetMulti
	// fails with cache.ErrTooLarge and stores nothing. 0 means
	// RedisMaxBytes. Negative is invalid.
	MaxBytes int
}

// Cache is a cache.BatchCache on Redis. It is safe for concurrent use.
type Cache struct {
	c        redis.UniversalClient
	prefix   string
	maxBytes int
}

var (
	_ cache.ObjectCache = (*Cache)(nil)
	_ cache.BatchCache  = (*Cache)(nil)
)

// New returns a Cache on client, which the Cache never closes. A nil client,
// a negative MaxBytes, or a go-redis client whose options leave
// ContextTimeoutEnabled false is an error wrapping cache.ErrInvalidConfig
// (and, for the last, redisopt.ErrContextTimeouts, which names the option):
// such a client ignores the deadline of a call's context on its sockets, so
// a Loader's CacheTimeout and fail-open could not hold.
func New(client redis.UniversalClient, cfg Config) (*Cache, error) {
	if client == nil {
		return nil, fmt.Errorf("rediscache: nil client: %w", cache.ErrInvalidConfig)
	}
	if err := redisopt.Check(client); err != nil {
		return nil, fmt.Errorf("rediscache: %w: %w", cache.ErrInvalidConfig, err)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("rediscache: negative MaxBytes %d: %w", cfg.MaxBytes, cache.ErrInvalidConfig)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = RedisMaxBytes
	}
	return &Cache{c: client, prefix: cfg.Prefix, maxBytes: cfg.MaxBytes}, nil
}

func (c *Cache) key(k string) string { return c.prefix + k }

func checkKey(op, k string) error {
	if err := cache.CheckKey(k); err != nil {
		return fmt.Errorf("rediscache: %s: key of %d bytes: %w", op, len(k), err)
	}
	return nil
}

func (c *Cache) checkValue(op string, v []byte) error {
	if len(v) > c.maxBytes {
		return fmt.Errorf("rediscache: %s: value of %d bytes, limit %d: %w", op, len(v), c.maxBytes, cache.ErrTooLarge)
	}
	return nil
}

// expiry validates ttl and rounds it up to a whole millisecond (0 stays 0:
// no expiry).
func expiry(op string, ttl time.Duration) (time.Duration, error) {
	if ttl < 0 {
		return 0, fmt.Errorf("rediscache: %s: ttl %v: %w", op, ttl, cache.ErrInvalidTTL)
	}
	if r := ttl % time.Millisecond; r != 0 {
		ttl += time.Millisecond - r
	}
	return ttl, nil
}

// Get returns the value of key, or cache.ErrMiss. It is one GET.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey("get", key); err != nil {
		return nil, err
	}
	k := c.key(key)
	v, err := redisha.ValueWithin(ctx, c.c, 0, func(ctx context.Context) ([]byte, error) { return c.c.Get(ctx, k).Bytes() })
	if err != nil {
		if err == redis.Nil {
			return nil, cache.ErrMiss
		}
		return nil, fmt.Errorf("rediscache: get: %w", err)
	}
	return v, nil
}

// Set stores value under key for ttl (0: no expiry). It is one SET.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ttl, err := expiry("set", ttl)
	if err != nil {
		return err
	}
	if err := checkKey("set", key); err != nil {
		return err
	}
	if err := c.checkValue("set", value); err != nil {
		return err
	}
	k := c.key(key)
	if err := redisha.RetryWithin(ctx, c.c, 0, func(ctx context.Context) error { return c.c.Set(ctx, k, value, ttl).Err() }); err != nil {
		return fmt.Errorf("rediscache: set: %w", err)
	}
	return nil
}

// Delete removes keys: one DEL for one key, a pipeline of single-key DELs
// for several (keys may live on different Cluster nodes). Missing keys are
// not an error. Every key is checked before anything is deleted.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		if err := checkKey("delete", k); err != nil {
			return err
		}
	}
	switch len(keys) {
	case 0:
		return nil
	case 1:
		k := c.key(keys[0])
		if err := redisha.RetryWithin(ctx, c.c, 0, func(ctx context.Context) error { return c.c.Del(ctx, k).Err() }); err != nil {
			return fmt.Errorf("rediscache: delete: %w", err)
		}
		return nil
	}
	if err := redisha.RetryWithin(ctx, c.c, 0, func(ctx context.Context) error {
		p := c.c.Pipeline()
		for _, k := range keys {
			p.Del(ctx, c.key(k))
		}
		_, err := p.Exec(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("rediscache: delete %d keys: %w", len(keys), err)
	}
	return nil
}

// GetMulti returns the values of the keys that are present, from a
// pipeline of GETs (one round trip per node). A key listed twice is read
// once. Any failure other than a miss fails the whole call.
func (c *Cache) GetMulti(ctx context.Context, keys []string) (map[string][]byte, error) {
	for _, k := range keys {
		if err := checkKey("get multi", k); err != nil {
			return nil, err
		}
	}
	out := make(map[string][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	names := make([]string, 0, len(keys))
	seen := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		names = append(names, k)
	}
	// Exec reports redis.Nil when any key missed: look at each command. A
	// switch's error sends the whole pipeline again.
	var cmds []*redis.StringCmd
	execErr := redisha.RetryWithin(ctx, c.c, 0, func(ctx context.Context) error {
		p := c.c.Pipeline()
		cmds = cmds[:0]
		for _, k := range names {
			cmds = append(cmds, p.Get(ctx, c.key(k)))
		}
		_, err := p.Exec(ctx)
		for _, cmd := range cmds { // Exec names the first error, perhaps a miss
			if cerr := cmd.Err(); cerr != nil && !errors.Is(cerr, redis.Nil) {
				return cerr
			}
		}
		if errors.Is(err, redis.Nil) {
			return nil
		}
		return err
	})
	for i, cmd := range cmds {
		v, err := cmd.Bytes()
		switch {
		case err == nil:
			out[names[i]] = v
		case errors.Is(err, redis.Nil):
		default:
			return nil, fmt.Errorf("rediscache: get multi %d keys: %w", len(keys), err)
		}
	}
	if execErr != nil && !errors.Is(execErr, redis.Nil) {
		return nil, fmt.Errorf("rediscache: get multi %d keys: %w", len(keys), execErr)
	}
	return out, nil
}

// SetMulti stores every item for ttl with a pipeline of SETs. Every key and
// value is checked before anything is written.
func (c *Cache) SetMulti(ctx context.Context, items map[string][]byte, ttl time.Duration) error {
	ttl, err := expiry("set multi", ttl)
	if err != nil {
		return err
	}
	for k, v := range items {
		if err := checkKey("set multi", k); err != nil {
			return err
		}
		if err := c.checkValue("set multi", v); err != nil {
			return err
		}
	}
	if len(items) == 0 {
		return nil
	}
	if err := redisha.RetryWithin(ctx, c.c, 0, func(ctx context.Context) error {
		p := c.c.Pipeline()
		for k, v := range items {
			p.Set(ctx, c.key(k), v, ttl)
		}
		_, err := p.Exec(ctx)
		return err
	}); err != nil {
		return fmt.Errorf("rediscache: set multi %d keys: %w", len(items), err)
	}
	return nil
}
