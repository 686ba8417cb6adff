package redisstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/session/redisstore"
)

// A Store on a Redis Cluster: the same code runs on a single server or
// Sentinel, since New takes any redis.UniversalClient. The caller owns the
// client and closes it.
func Example() {
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"},
		ContextTimeoutEnabled: true, // required: the store's time bounds rest on it
	})
	defer client.Close()

	store, err := redisstore.New(client, redisstore.Config{Prefix: "myapp:session:", MaxBytes: 64 << 10})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	id := "k3Jb0Yt1_wq9r8Ue3wPZc1O7a5l0x2YQmVn8uKdS4hE" // issued by session.Manager
	if err := store.Save(ctx, id, []byte("data"), time.Now().Add(24*time.Hour)); err != nil {
		fmt.Println("store down:", err)
		return
	}
	data, found, err := store.Load(ctx, id)
	fmt.Println(string(data), found, err)
}
