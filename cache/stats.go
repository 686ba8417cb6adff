package cache

import (
	"sync/atomic"

	"github.com/scaleout/scaleout/observe"
)

// Stats are the counters of a Loader since it was created.
type Stats struct {
	Hits        uint64 // answered from a tier of the cache, not-found entries and stale serves included
	LocalHits   uint64 // of Hits, answered by the local tier without a round trip
	Misses      uint64 // found nothing fresh and usable
	Loads       uint64 // calls of a load function, background refreshes included
	LoadErrors  uint64 // loads that failed with an error other than ErrNotFound
	Evictions   uint64 // local-tier entries dropped to respect its bounds
	StaleServes uint64 // answered with a value past its TTL: a load failed, or another process was refreshing it
	LeaseWaits  uint64 // flights that waited for another process to fill the key
	Refreshes   uint64 // background reloads started: early (XFetch) refreshes and RefreshStale
	CacheErrors uint64 // calls to the cache that failed and were answered by the loader (fail open)
}

// counters are a Loader's figures: each kept for Stats and reported to
// the Loader's Meter by the same Add.
type counters struct {
	hits, misses, loads, loadErrors, staleServes, leaseWaits, refreshes, cacheErrors counter

	localHits    observe.Counter // the local tier counts them itself, for Stats
	loadDuration observe.Histogram
}

// counter is one of a Loader's counters.
type counter struct {
	n atomic.Uint64
	c observe.Counter
}

func (c *counter) Add(n uint64) {
	c.n.Add(n)
	c.c.Add(int64(n))
}

func (c *counter) Load() uint64 { return c.n.Load() }

// bind makes the counters' instruments from m (nil: none).
func (c *counters) bind(m observe.Meter) {
	c.hits.c = observe.NewCounter(m, observe.CacheHits, "shared")
	c.localHits = observe.NewCounter(m, observe.CacheHits, "local")
	c.misses.c = observe.NewCounter(m, observe.CacheMisses)
	c.loads.c = observe.NewCounter(m, observe.CacheLoads)
	c.loadErrors.c = observe.NewCounter(m, observe.CacheLoadErrors)
	c.staleServes.c = observe.NewCounter(m, observe.CacheStaleServed)
	c.leaseWaits.c = observe.NewCounter(m, observe.CacheLeaseWaits)
	c.refreshes.c = observe.NewCounter(m, observe.CacheRefreshes)
	c.cacheErrors.c = observe.NewCounter(m, observe.CacheErrors)
	c.loadDuration = observe.NewHistogram(m, observe.CacheLoadDuration)
}

func (c *counters) snapshot() Stats {
	return Stats{
		Hits:        c.hits.Load(),
		Misses:      c.misses.Load(),
		Loads:       c.loads.Load(),
		LoadErrors:  c.loadErrors.Load(),
		StaleServes: c.staleServes.Load(),
		LeaseWaits:  c.leaseWaits.Load(),
		Refreshes:   c.refreshes.Load(),
		CacheErrors: c.cacheErrors.Load(),
	}
}
