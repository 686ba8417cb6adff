package shard_test

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/shard"
)

var _ memcache.ServerSelector = (*shard.AddrSelector)(nil)

func TestAddrSelectorRefusesNonAddresses(t *testing.T) {
	r, err := shard.NewRendezvous(shard.Members("127.0.0.1:11211", "not an address"))
	require.NoError(t, err)
	_, err = shard.NewAddrSelector(r)
	require.ErrorIs(t, err, shard.ErrInvalidConfig)
	_, err = shard.NewAddrSelector(nil)
	require.ErrorIs(t, err, shard.ErrNoShards)

	good, err := shard.NewRendezvous(shard.Members("127.0.0.1:1", "127.0.0.1:2", "/tmp/mc.sock"))
	require.NoError(t, err)
	sel, err := shard.NewAddrSelector(good)
	require.NoError(t, err)
	require.ErrorIs(t, sel.Set(r), shard.ErrInvalidConfig)

	// The failed Set left the previous sharder in place.
	var listed []string
	require.NoError(t, sel.Each(func(a net.Addr) error { listed = append(listed, a.String()); return nil }))
	require.Equal(t, []string{"127.0.0.1:1", "127.0.0.1:2", "/tmp/mc.sock"}, listed)
	for _, k := range keys(100) {
		a, err := sel.PickServer(k)
		require.NoError(t, err)
		require.Equal(t, good.Shard(k), a.String())
	}
	stop := errors.New("stop")
	n := 0
	require.ErrorIs(t, sel.Each(func(net.Addr) error { n++; return stop }), stop)
	require.Equal(t, 1, n)
}

// TestMemcachedPoolWithConsistentHashing runs a gomemcache client over
// three real memcached servers with a ketama ring, checks that every item
// is stored on the server the ring names, then adds a fourth server: only
// the keys the plan moves become misses, where gomemcache's default
// CRC32-mod-N selector would lose about three quarters of them.
func TestMemcachedPoolWithConsistentHashing(t *testing.T) {
	servers := []*testenv.MemcachedServer{testenv.StartMemcached(t), testenv.StartMemcached(t), testenv.StartMemcached(t)}
	addrs := []string{servers[0].Addr(), servers[1].Addr(), servers[2].Addr()}
	three, err := shard.NewRing(shard.Members(addrs...), shard.RingConfig{Ketama: true})
	require.NoError(t, err)
	sel, err := shard.NewAddrSelector(three)
	require.NoError(t, err)
	mc := memcache.NewFromSelector(sel)

	const n = 600
	for i := range n {
		require.NoError(t, mc.Set(&memcache.Item{Key: fmt.Sprintf("k%d", i), Value: []byte("v")}))
	}
	direct := map[string]*memcache.Client{}
	for _, a := range addrs {
		direct[a] = memcache.New(a)
	}
	perServer := map[string]int{}
	for i := range n {
		k := fmt.Sprintf("k%d", i)
		owner := three.Shard(k)
		_, err := direct[owner].Get(k)
		require.NoError(t, err, "key %s not on %s", k, owner)
		perServer[owner]++
	}
	require.Len(t, perServer, 3)

	fourth := testenv.StartMemcached(t)
	four, err := shard.NewRing(shard.Members(append(addrs, fourth.Addr())...), shard.RingConfig{Ketama: true})
	require.NoError(t, err)
	plan, err := shard.PlanMoves(three, four)
	require.NoError(t, err)
	require.NoError(t, sel.Set(four))

	hits, planned := 0, 0
	for i := range n {
		k := fmt.Sprintf("k%d", i)
		_, _, moved := plan.Moved(k)
		_, err := mc.Get(k)
		if moved {
			planned++
			require.ErrorIs(t, err, memcache.ErrCacheMiss, k)
			continue
		}
		require.NoError(t, err, k)
		hits++
	}
	require.Equal(t, n, hits+planned)
	require.Greater(t, hits, n*6/10, "consistent hashing keeps most keys when a server joins")
	t.Logf("after a 4th server joined: %d of %d keys still hit (%d moved by plan)", hits, n, planned)
}
