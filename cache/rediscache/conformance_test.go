package rediscache_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/cachetest"
	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/internal/testenv"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, b := range testenv.RedisTopologiesWithSentinel {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			cachetest.Run(t, func(t *testing.T) cache.ObjectCache {
				c, err := rediscache.New(b.Client(t), rediscache.Config{Prefix: testenv.Prefix(t)})
				require.NoError(t, err)
				return c
			})
		})
	}
}
