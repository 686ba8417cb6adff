package objects_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/objects"
)

// Profile is an object assembled from several tables.
type Profile struct {
	Name   string
	Orders int
}

func Example() {
	// The "database".
	var mu sync.Mutex
	names := map[string]string{"u1": "Ada"}
	orders := map[string]int{"u1": 3}
	build := func(ctx context.Context, id string) (Profile, error) {
		mu.Lock()
		defer mu.Unlock()
		name, ok := names[id]
		if !ok {
			return Profile{}, cache.ErrNotFound
		}
		return Profile{Name: name, Orders: orders[id]}, nil
	}

	mem, _ := cache.NewMemory(cache.MemoryConfig{})
	profiles, err := objects.New(mem, build, objects.Config[Profile]{TTL: time.Hour})
	if err != nil {
		panic(err)
	}
	defer profiles.Close()

	ctx := context.Background()
	p, _ := profiles.Get(ctx, "u1") // a miss: built once
	fmt.Printf("%s has %d orders\n", p.Name, p.Orders)

	// The source changes: invalidate, and a worker rebuilds the object
	// while readers keep getting the previous one.
	mu.Lock()
	orders["u1"] = 4
	mu.Unlock()
	_ = profiles.Invalidate(ctx, "u1")
	for p.Orders != 4 {
		time.Sleep(time.Millisecond)
		p, _ = profiles.Get(ctx, "u1")
	}
	fmt.Printf("%s has %d orders\n", p.Name, p.Orders)

	_, err = profiles.Get(ctx, "u2")
	fmt.Println(strings.TrimPrefix(err.Error(), "cache: "))
	// Output:
	// Ada has 3 orders
	// Ada has 4 orders
	// not found in the data source
}
