package mckey_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/scaleout/scaleout/internal/mckey"
	"github.com/scaleout/scaleout/internal/testenv"
)

// TestNeverEarlyOnAServer: memcached keeps time in whole seconds, updated
// once a second, and drops an item once its clock reaches the item's
// expiration; an item set late in one of its seconds with a relative
// expiration of n seconds would die after a little more than n-1. Items
// set for one second, at phases spread over a second, must all be there
// 950 ms later.
func TestNeverEarlyOnAServer(t *testing.T) {
	t.Parallel()
	srv := testenv.StartMemcached(t)
	c := memcache.New(srv.Addr())
	c.Timeout = 2 * time.Second
	const items = 10
	set := make([]time.Time, items)
	for i := range items {
		now := time.Now()
		exp, ok := mckey.Expiration(now, now.Add(time.Second))
		if !ok {
			t.Fatal("a deadline a second away is not ok")
		}
		if err := c.Set(&memcache.Item{Key: fmt.Sprint("k", i), Value: []byte("v"), Expiration: exp}); err != nil {
			t.Fatal(err)
		}
		set[i] = time.Now()
		time.Sleep(100 * time.Millisecond)
	}
	for i := range items {
		time.Sleep(time.Until(set[i].Add(950 * time.Millisecond)))
		if _, err := c.Get(fmt.Sprint("k", i)); err != nil {
			t.Errorf("item %d, set for 1 s, gone %v after it was set: %v", i, time.Since(set[i]).Round(time.Millisecond), err)
		}
	}
}
