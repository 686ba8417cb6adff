package cache

import (
	"sync"
)

// orphans are the fill leases a Loader may have left in its cache (empty,
// or over a stale entry):
// a lease write (Add or CompareAndSwap), or the write-back through a
// lease, that ended in an error other than ErrNotStored may have reached
// the cache all the same (its reply was lost, or came after the
// CacheTimeout deadline), and nobody will fill or release that lease. A
// Get that finds a lease it may not serve stale under waits up to
// LeaseWait for its filler; one
// that finds a lease of this process's own orphans takes it over at once,
// since a process runs one flight per key and that flight is over. Without
// it, a blip of the cache would cost the next Get of every key in flight
// LeaseWait (5 s by default) rather than about CacheTimeout.
//
// Entries last as long as their lease (LeaseTTL), and are swept when the
// map has doubled since the last sweep, so a long outage that orphans a
// lease on every key asked for keeps about one LeaseTTL's worth of keys.
type orphans struct {
	mu      sync.Mutex
	m       map[string]orphan
	sweepAt int // sweep expired entries when the map reaches this size
}

type orphan struct {
	token uint64
	until int64 // Unix nanoseconds, on the Loader's clock
}

// minOrphanSweep is the map size below which orphans are not swept.
const minOrphanSweep = 1024

// add records lease, written under key, as possibly left in the cache.
func (o *orphans) add(key string, lease []byte, now int64) {
	e, ok := parseEnvelope(lease)
	if !ok || !e.leased(now) {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[string]orphan{}
	}
	o.m[key] = orphan{token: e.token, until: e.leaseUntil}
	if len(o.m) >= max(o.sweepAt, minOrphanSweep) {
		for k, v := range o.m {
			if v.until <= now {
				delete(o.m, k)
			}
		}
		o.sweepAt = 2 * len(o.m)
	}
}

// left reports whether e, read under key, is a lease this Loader left.
func (o *orphans) left(key string, e envelope, now int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok := o.m[key]
	if ok && v.until <= now {
		delete(o.m, key)
		return false
	}
	return ok && v.token == e.token
}

// forget drops key's entry once the Loader has taken its lease over.
func (o *orphans) forget(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.m, key)
}
