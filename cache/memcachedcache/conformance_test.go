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
