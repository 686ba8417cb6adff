package rediscache_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/rediscache"
)

// A Cache on a Redis Cluster: the same code runs on a single server or
// Sentinel, since New takes any redis.UniversalClient. The caller owns the
// client and closes it.
func Example() {
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"},
		// Required: without it go-redis ignores context deadlines on its
		// sockets, and New refuses the client.
		ContextTimeoutEnabled: true,
	})
	defer client.Close()

	c, err := rediscache.New(client, rediscache.Config{Prefix: "myapp:cache:", MaxBytes: 1 << 20})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	v, err := c.Get(ctx, "user:42")
	switch {
	case errors.Is(err, cache.ErrMiss):
		v = []byte("loaded from the database")
		_ = c.Set(ctx, "user:42", v, 10*time.Minute)
	case err != nil:
		// Redis is down: fail open to the database, do not write back.
		v = []byte("loaded from the database")
	}
	fmt.Println(string(v))

	// Many keys in one round trip per node.
	found, err := c.GetMulti(ctx, []string{"user:1", "user:2", "user:3"})
	fmt.Println(len(found), err)
}

// Two tiers for every instance of a service: a local tier of decoded
// values in front of a shared Redis, kept honest across instances by an
// Invalidator on Redis pub/sub, and one load per missing key across the
// whole fleet thanks to the fill lease.
func ExampleNewInvalidator() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer client.Close()

	remote, err := rediscache.New(client, rediscache.Config{Prefix: "myapp:cache:"})
	if err != nil {
		panic(err)
	}
	inv, err := rediscache.NewInvalidator(ctx, client, rediscache.InvalidatorConfig{Channel: "myapp:cache:invalidate"})
	if err != nil {
		panic(err) // Redis unreachable at start-up
	}
	defer inv.Close()

	type user struct{ Name string }
	users, err := cache.NewLoader(remote, cache.LoaderConfig[user]{
		LocalTTL:    30 * time.Second,
		Invalidator: inv,
		StaleFor:    time.Hour,
	})
	if err != nil {
		panic(err)
	}
	defer users.Close()

	u, err := users.Get(ctx, "user:42", 10*time.Minute, func(ctx context.Context) (user, error) {
		return user{Name: "ada"}, nil // SELECT ... FROM users WHERE id = 42
	})
	fmt.Println(u.Name, err)

	// After UPDATE users ... WHERE id = 42 commits:
	_ = users.Delete(ctx, "user:42")
}
