package querycache_test

import (
	"context"
	"fmt"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/querycache"
)

// Keys carry the versions of the tables a query reads: after a Bump the
// same query has a new key, so what was cached before it is never read
// again. In production the versions and entries live in a shared store
// (cache/rediscache), and a query runs with
//
//	users, err := qc.Query(ctx, db, []string{"users"}, scanUsers,
//		"select id, name from users where team = $1", team)
//
// while writers change the tables through the Versions, which bump after
// the commit:
//
//	_, err := vers.Exec(ctx, db, []string{"users"}, "update users set name = $1 where id = $2", name, id)
func Example() {
	ctx := context.Background()
	store, _ := cache.NewMemory(cache.MemoryConfig{})
	vers, _ := querycache.NewVersions(store, querycache.VersionsConfig{})
	qc, _ := querycache.New(store, vers, querycache.Config[[]string]{})

	const q = "select name from users where team = $1"
	k1, _ := qc.Key(ctx, []string{"users"}, q, 7)
	k2, _ := qc.Key(ctx, []string{"users"}, q, 7)
	k3, _ := qc.Key(ctx, []string{"users"}, q, "7")
	fmt.Println("same query, same key:", k1 == k2)
	fmt.Println("int 7 and string \"7\" differ:", k1 != k3)

	_ = vers.Bump(ctx, "users") // after a committed write to users
	k4, _ := qc.Key(ctx, []string{"users"}, q, 7)
	fmt.Println("new key after Bump:", k4 != k1)

	_, err := qc.Key(ctx, []string{"users"}, q, map[string]int{})
	fmt.Println(err)
	// Output:
	// same query, same key: true
	// int 7 and string "7" differ: true
	// new key after Bump: true
	// querycache: argument 0 of type map[string]int cannot be encoded canonically: a map has no canonical encoding (implement driver.Valuer)
}
