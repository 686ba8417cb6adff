package memcachedcache_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/memcachedcache"
)

// A cache on the memcached servers every clone reaches. The example only
// compiles: it needs a server.
func Example() {
	client := memcache.New("10.0.0.5:11211", "10.0.0.6:11211")
	client.Timeout = 100 * time.Millisecond
	c, err := memcachedcache.New(client, memcachedcache.Config{Prefix: "myapp:cache:"})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	// Keys memcached would reject (spaces, over 250 bytes) are hashed.
	if err := c.Set(ctx, "user 42 profile", []byte("data"), 10*time.Minute); err != nil {
		log.Print(err) // errors.Is(err, cache.ErrTooLarge) for values above the item limit
	}
	v, err := c.Get(ctx, "user 42 profile")
	switch {
	case errors.Is(err, cache.ErrMiss):
		// load from the database
	case err != nil:
		// the cache is down: fail open to the database
	default:
		log.Println(string(v))
	}
}
