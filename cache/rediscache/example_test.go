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
