package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/memcachedcache"
	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/internal/testenv"
)

// The Loaders' configuration in every run: entries fresh for
// cacheInvalTTL, local copies for cacheInvalLocalTTL, every cache call cut
// off after cacheInvalCacheTimeout (memcached's client Timeout is the
// same: gomemcache ignores contexts, see LoaderConfig.CacheTimeout).
const (
	cacheInvalTTL          = 2 * time.Second
	cacheInvalLocalTTL     = 500 * time.Millisecond
	cacheInvalCacheTimeout = 300 * time.Millisecond
	// cacheInvalMargin is the scheduling margin of every bound: a loaded
	// machine may hold a goroutine that long between two steps.
	cacheInvalMargin = 250 * time.Millisecond
)

// A cacheInvalBackend is one Loader per clone, each over its own client
// through its own links, with the processes the run may pause and kill.
type cacheInvalBackend struct {
	name    string
	loaders []*cache.Loader[CacheInvalValue]
	links   []*testenv.FaultProxy
	procs   []Process
	request func([]byte) bool
	// otherClones is how long another clone's local tier may lag a
	// Delete (see CacheInvalBounds.OtherClones).
	otherClones time.Duration
}

func cacheInvalLoader(t *testing.T, c cache.ObjectCache, inv cache.Invalidator) *cache.Loader[CacheInvalValue] {
	l, err := cache.NewLoader[CacheInvalValue](c, cache.LoaderConfig[CacheInvalValue]{
		LocalTTL:     cacheInvalLocalTTL,
		CacheTimeout: cacheInvalCacheTimeout,
		LeaseTTL:     time.Second, // a lease lost in a fault holds its key no longer
		Invalidator:  inv,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// cacheInvalMemory is clones sharing one cache.Memory and one LocalBus,
// with c wrapping the Memory (the identity for the real run).
func cacheInvalMemory(t *testing.T, name string, wrap func(cache.SwapCache) cache.SwapCache) cacheInvalBackend {
	m, err := cache.NewMemory(cache.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	bus := &cache.LocalBus{}
	b := cacheInvalBackend{name: name}
	for range clones {
		b.loaders = append(b.loaders, cacheInvalLoader(t, wrap(m), bus))
	}
	return b
}

// cacheInvalRedis puts a rediscache.Cache and a rediscache.Invalidator on
// each clone's client; the invalidations travel by pub/sub, so another
// clone's local tier lags by up to LocalTTL (see OtherClones).
func cacheInvalRedis(t *testing.T, b *cacheInvalBackend, clients []redis.UniversalClient, prefix string) {
	b.otherClones = cacheInvalLocalTTL + cacheInvalCacheTimeout + cacheInvalMargin
	for _, c := range clients {
		rc, err := rediscache.New(c, rediscache.Config{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		inv, err := rediscache.NewInvalidator(ctx, c, rediscache.InvalidatorConfig{Channel: prefix + "invalidate"})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		// Cleanups run last first: the Loader closes before its Invalidator.
		t.Cleanup(func() { _ = inv.Close() })
		b.loaders = append(b.loaders, cacheInvalLoader(t, rc, inv))
	}
}

func cacheInvalBackends() []func(t *testing.T) cacheInvalBackend {
	return []func(t *testing.T) cacheInvalBackend{
		func(t *testing.T) cacheInvalBackend {
			return cacheInvalMemory(t, "memory", func(c cache.SwapCache) cache.SwapCache { return c })
		},
		func(t *testing.T) cacheInvalBackend {
			srv := testenv.StartRedis(t, testenv.RedisOptions{})
			cs, links := redisClients(t, srv.Addr())
			b := cacheInvalBackend{name: "redis", links: links, procs: []Process{srv}, request: redisCommand}
			var ucs []redis.UniversalClient
			for _, c := range cs {
				ucs = append(ucs, c)
			}
			cacheInvalRedis(t, &b, ucs, "chaos:cacheinval:")
			return b
		},
		func(t *testing.T) cacheInvalBackend {
			addrs := testenv.RedisClusterAddrs(t)
			testenv.RedisClusterClient(t) // deletes Prefix(t) at the end
			b := cacheInvalBackend{name: "redis-cluster", request: redisCommand}
			var ucs []redis.UniversalClient
			cs, links := clusterClients(t, addrs)
			b.links = links
			for _, c := range cs {
				ucs = append(ucs, c)
			}
			cacheInvalRedis(t, &b, ucs, testenv.Prefix(t))
			return b
		},
		func(t *testing.T) cacheInvalBackend {
			srv := testenv.StartMemcached(t)
			// No Invalidator for memcached: another clone's local copy
			// lags by up to LocalTTL, as documented.
			b := cacheInvalBackend{name: "memcached", procs: []Process{srv},
				otherClones: cacheInvalLocalTTL + cacheInvalCacheTimeout + cacheInvalMargin}
			for range clones {
				p := testenv.StartFaultProxy(t, srv.Addr())
				mc := memcache.New(p.Addr())
				mc.Timeout = cacheInvalCacheTimeout
				c, err := memcachedcache.New(mc, memcachedcache.Config{})
				if err != nil {
					t.Fatal(err)
				}
				b.links = append(b.links, p)
				b.loaders = append(b.loaders, cacheInvalLoader(t, c, nil))
			}
			return b
		},
	}
}

// cacheInvalRun drives the workload on b under its fault schedule for
// d and checks the history.
func cacheInvalRun(t *testing.T, b cacheInvalBackend, s uint64, d time.Duration) (ops int, faults, violation string) {
	w := NewCacheInvalWorkload(b.loaders, cacheInvalTTL, s)
	sched := NewSchedule(s, b.links, b.procs, b.request)
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	driven := make(chan struct{})
	go func() { defer close(driven); w.Drive(ctx) }()
	sched.Run(ctx) // on the test's goroutine: it restarts servers
	<-driven
	h := w.History.Ops()
	return len(h), sched.String(), CheckCacheInval(h, CacheInvalBounds{TTL: cacheInvalTTL, OtherClones: b.otherClones, Margin: cacheInvalMargin})
}

// TestCacheInvalChaos runs the cache invalidation model on every cache:
// writers change the source and Delete through a clone's Loader, readers
// Get through every clone's, while the schedule breaks links and servers;
// no read may be staler than the documented bounds.
func TestCacheInvalChaos(t *testing.T) {
	runModel(t, "cache invalidation", cacheInvalBackends(), func(b cacheInvalBackend) string { return b.name },
		func(t *testing.T, b cacheInvalBackend, s uint64, d time.Duration) modelRun {
			ops, faults, violation := cacheInvalRun(t, b, s, d)
			return modelRun{ops, faults, violation}
		})
}

// cacheInvalLosesDeletes is a broken cache: Delete reports success and
// removes nothing.
type cacheInvalLosesDeletes struct{ cache.SwapCache }

func (cacheInvalLosesDeletes) Delete(context.Context, ...string) error { return nil }

// TestCacheInvalChaosCatchesLostDeletes runs the workload on a Memory
// whose Deletes are lost (the local tiers are still invalidated): readers
// then get the old value from the shared cache after a Delete returned,
// and the checker must say so.
func TestCacheInvalChaosCatchesLostDeletes(t *testing.T) {
	b := cacheInvalMemory(t, "memory losing deletes", func(c cache.SwapCache) cache.SwapCache { return cacheInvalLosesDeletes{c} })
	ops, _, violation := cacheInvalRun(t, b, 1, time.Second)
	t.Logf("%d operations: %s", ops, violation)
	if !strings.Contains(violation, "but a Delete of key") {
		t.Fatalf("a cache that loses Deletes passed the checker: %q", violation)
	}
}
