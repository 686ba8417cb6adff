package memcachedcache_test

import (
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache/cachetest"
	"github.com/scaleout/scaleout/cache/memcachedcache"
	"github.com/scaleout/scaleout/internal/testenv"
)

// TestLoaderSurvivesMemcachedRestart stops a real memcached under a
// running Loader: it fails open, then hits again once memcached is back.
func TestLoaderSurvivesMemcachedRestart(t *testing.T) {
	srv := testenv.StartMemcached(t)
	mc := memcache.New(srv.Addr())
	mc.Timeout = 300 * time.Millisecond
	c, err := memcachedcache.New(mc, memcachedcache.Config{Prefix: "fault:"})
	require.NoError(t, err)
	cachetest.FailOpen(t, c, srv.Kill, srv.Restart)
}
