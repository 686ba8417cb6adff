package cache

import "sync/atomic"

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

type counters struct {
	hits, misses, loads, loadErrors, staleServes, leaseWaits, refreshes, cacheErrors atomic.Uint64
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
