package memcachedstore_test

import (
	"context"
	"log"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/scaleout/scaleout/session/memcachedstore"
)

// Sessions on a memcached every clone reaches. The example only compiles:
// it needs a server.
func Example() {
	client := memcache.New("10.0.0.5:11211", "10.0.0.6:11211")
	store, err := memcachedstore.New(client, memcachedstore.Config{Prefix: "myapp:session:"})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := store.Save(ctx, "session-id", []byte("data"), time.Now().Add(time.Hour)); err != nil {
		log.Fatal(err)
	}
	data, found, err := store.Load(ctx, "session-id")
	log.Println(string(data), found, err)
}
