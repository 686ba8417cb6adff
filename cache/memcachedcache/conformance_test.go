// Real-time tests in this file: TestConformance (the cachetest kit on a
// real memcached: its expiry checks run on memcached's clock).
package memcachedcache

import (
	"testing"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/cachetest"
)

func TestConformance(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cache.ObjectCache {
		c, _ := newCache(t)
		return c
	})
}
