package cache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/scaleout/scaleout/cache"
)

// A Loader reads through the cache: the database is asked once, later Gets
// are hits. In production the cache would be a rediscache.Cache or a
// memcachedcache.Cache shared by every instance.
func ExampleLoader() {
	type Product struct {
		ID    int
		Name  string
		Price int
	}

	store, _ := cache.NewMemory(cache.MemoryConfig{})
	products, _ := cache.NewLoader(store, cache.LoaderConfig[Product]{
		NegativeTTL: time.Minute, // remember "no such product" too
		StaleFor:    time.Hour,   // serve the last good copy if the database fails
	})
	defer products.Close()

	queries := 0
	// Made once: GetWith passes each call's id, so a hit allocates nothing
	// (a closure made per call would be one allocation on every Get).
	byID := func(_ context.Context, id int) (Product, error) {
		queries++
		if id != 7 {
			return Product{}, cache.ErrNotFound
		}
		return Product{ID: 7, Name: "lamp", Price: 1999}, nil
	}
	ctx := context.Background()
	for range 3 {
		p, _ := cache.GetWith(products, ctx, "product:7", 10*time.Minute, byID, 7)
		fmt.Println(p.Name, p.Price)
	}
	_, err := cache.GetWith(products, ctx, "product:8", 10*time.Minute, byID, 8)
	fmt.Println(err)
	_, err = cache.GetWith(products, ctx, "product:8", 10*time.Minute, byID, 8)
	fmt.Println(err)
	fmt.Println("database queries:", queries)

	// The product changed: drop it everywhere, and the next Get reloads.
	_ = products.Delete(ctx, "product:7")
	_, _ = cache.GetWith(products, ctx, "product:7", 10*time.Minute, byID, 7)
	fmt.Println("database queries:", queries)
	// Output:
	// lamp 1999
	// lamp 1999
	// lamp 1999
	// cache: not found in the data source
	// cache: not found in the data source
	// database queries: 2
	// database queries: 3
}

// A local tier answers hot keys from this process's memory, with no round
// trip and no decoding; an Invalidator (rediscache.Invalidator across
// processes) drops a changed key from every local tier.
func ExampleLoader_localTier() {
	remote, _ := cache.NewMemory(cache.MemoryConfig{}) // stands for Redis
	bus := &cache.LocalBus{}                           // stands for rediscache.Invalidator
	cfg := cache.LoaderConfig[string]{LocalTTL: time.Minute, Invalidator: bus}
	web1, _ := cache.NewLoader(remote, cfg)
	web2, _ := cache.NewLoader(remote, cfg)
	defer web1.Close()
	defer web2.Close()

	ctx := context.Background()
	load := func(context.Context) (string, error) { return "v1", nil }
	for range 3 {
		_, _ = web1.Get(ctx, "greeting", time.Hour, load)
	}
	fmt.Printf("%+v\n", web1.Stats().LocalHits)

	_ = web2.Set(ctx, "greeting", "v2", time.Hour) // web1's local copy is dropped
	v, _ := web1.Get(ctx, "greeting", time.Hour, load)
	fmt.Println(v)
	// Output:
	// 2
	// v2
}

// GetMany reads a page of products in one round trip to the cache, and
// asks the database, in one query, only for those it does not hold.
func ExampleLoader_GetMany() {
	type Product struct {
		ID    int
		Name  string
		Price int
	}

	store, _ := cache.NewMemory(cache.MemoryConfig{}) // stands for Redis or Memcached
	products, _ := cache.NewLoader(store, cache.LoaderConfig[Product]{NegativeTTL: time.Minute})
	defer products.Close()

	db := map[string]Product{
		"product:1": {ID: 1, Name: "desk", Price: 12900},
		"product:2": {ID: 2, Name: "chair", Price: 4900},
		"product:3": {ID: 3, Name: "lamp", Price: 1999},
	}
	byIDs := func(_ context.Context, keys []string) (map[string]Product, error) {
		fmt.Println("SELECT ... WHERE id IN", keys) // keys left out of the map are not found
		found := map[string]Product{}
		for _, k := range keys {
			if p, ok := db[k]; ok {
				found[k] = p
			}
		}
		return found, nil
	}
	ctx := context.Background()
	_, _ = products.Get(ctx, "product:1", 10*time.Minute, func(context.Context) (Product, error) { return db["product:1"], nil })

	page := []string{"product:1", "product:2", "product:3", "product:9"}
	for range 2 {
		got, err := products.GetMany(ctx, page, 10*time.Minute, byIDs)
		fmt.Println(len(got), got["product:3"].Name, err)
	}
	// Output:
	// SELECT ... WHERE id IN [product:2 product:3 product:9]
	// 3 lamp <nil>
	// 3 lamp <nil>
}
