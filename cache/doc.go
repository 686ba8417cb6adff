// Package cache puts a key-value cache in RAM between an application and
// its data store: read the cache first, and load from the store only on a
// miss.
//
// # Stores
//
// An ObjectCache holds opaque bytes under string keys with a TTL: Memory
// (this process; bounded by entries and bytes, W-TinyLFU eviction, sharded),
// cache/rediscache (Redis, single or Cluster) and cache/memcachedcache
// (Memcached). All three are also BatchCache (many keys per round trip) and
// SwapCache (Add and CompareAndSwap), and all pass cache/cachetest.
//
// # Cache-aside: Loader
//
// A Loader[T] is the typed reader most code wants:
//
//	users, _ := cache.NewLoader[User](redisCache, cache.LoaderConfig[User]{})
//	u, err := users.Get(ctx, "user:42", time.Minute, func(ctx context.Context) (User, error) {
//		return db.User(ctx, 42)
//	})
//
// A closure made for each call, like the one above, is put on the heap by
// the Go compiler (a miss may run it after Get returned), so such a Get
// costs one allocation even when the local tier answers it. GetWith takes
// the load function and its argument apart; with a load function made
// once, a local hit allocates nothing:
//
//	userByID := func(ctx context.Context, id int) (User, error) { return db.User(ctx, id) } // once
//	u, err := cache.GetWith(users, ctx, "user:42", time.Minute, userByID, 42)
//
// What a Get does, and what it guarantees:
//
//   - Hit: the value is decoded with the Codec (JSON unless T is []byte
//     or string) and returned. One round trip.
//   - Miss, one process: concurrent Gets of a key share one flight
//     (golang.org/x/sync/singleflight). The flight runs on a context that
//     outlives a caller who gives up, bounded by LoadTimeout, so one
//     impatient caller neither fails the others nor wastes the load. A
//     Set, Delete, Expire or Refresh of the key (or one heard from another
//     process through the Invalidator) ends the sharing: a Get that begins
//     after it starts a flight of its own, whose load sees the change.
//   - Miss, many processes: on a SwapCache the flight first takes the key's
//     fill lease (an Add of a lease entry with a random token, the "leases"
//     of Facebook's memcache). The process that wins loads; the others see
//     the lease and wait for the value, polling with backoff, for up to
//     LeaseWait, after which they load without writing. A lease whose
//     holder died expires after LeaseTTL and is taken over.
//   - Write back: the winner writes through its lease with CompareAndSwap.
//     A Delete, Set or Expire during the load replaces the lease entry, so
//     the write fails and a slow filler can never store what it read
//     before a change. Its caller still gets the value it loaded.
//   - Not found: a load returning ErrNotFound is answered with ErrNotFound
//     and, with NegativeTTL, remembered so a missing row is not looked up
//     on every request.
//   - Stale: with StaleFor, entries are kept past their TTL. A stale entry
//     is served when its reload fails (serve-stale-on-error, counted in
//     Stats.StaleServes), and to other processes while one reloads it; with
//     RefreshStale it is served at once and reloaded in the background.
//   - Early refresh: on every hit, XFetch (Vattani et al., VLDB 2015) may
//     decide to reload the entry before it expires, with a probability that
//     rises as expiry nears and with the time the last load took. The
//     reload runs in the background under the lease, so a hot key is
//     recomputed about once per TTL by one process, and no reader waits.
//   - Failures of the cache: a cache that is down or slow makes Get fail
//     open: it calls load and returns its result, writing nothing, and
//     counts Stats.CacheErrors. When the cache comes back, Get uses it
//     again; nothing to restart. How long a slow cache may hold a Get:
//     CacheTimeout when set (on memcached, the client's Timeout if
//     longer), else the caller's context and the client's own timeouts
//     (see LoaderConfig.CacheTimeout).
//   - Failures of the load: the error is returned (or the stale value
//     served), the lease is released at once, and a panic in load is an
//     error wrapping ErrLoadPanic.
//
// GetMany answers many keys at once, each as Get would (local tier, fill
// leases, negative caching, stale serving, early refresh), in one GetMulti
// to the cache and one call of a batch load for the keys it does not
// hold; keys whose lease another caller holds are left to Get, which waits
// for that filler.
//
// Entries are written in a small envelope (freshness, load time, lease),
// so a Loader's keys hold more than the codec's bytes; a value another
// writer stored under a Loader's key is treated as a miss and replaced.
// Times in envelopes are wall-clock: processes whose clocks disagree by d
// see an entry go stale up to d early or late. A Loader reads the wall
// clock when it is made and advances it by the monotonic clock after, so
// a later step of the system clock does not reach it until it is made
// again.
//
// # Two tiers
//
// With LocalTTL, a Loader keeps decoded values in a local tier (a Memory of
// T, no copy or decode on a hit) in front of the remote cache. A local copy
// never outlives its TTL, and lives at most LocalTTL. Set, Delete, Expire
// and Refresh drop the key from this process's local tier and publish it
// through the Invalidator (rediscache.Invalidator: Redis pub/sub), which
// drops it from every other process's. Pub/sub may lose messages while a
// connection is down, so when the Invalidator's connection drops or comes
// back, every local tier is emptied. A local fill that raced an
// invalidation is discarded. Without an Invalidator, a change made by
// another process is seen after at most LocalTTL.
//
// # Lifecycle
//
// The stores hold no goroutines: Memory, rediscache.Cache and
// memcachedcache.Cache have no Close, and never close the client they were
// given. A Loader holds its Invalidator subscription and its background
// refreshes: Close releases the one and waits for the others, and after
// it Get, GetMany and Refresh return ErrClosed; Set, Delete and Expire,
// which need only the cache and the Invalidator, keep working.
//
// # Patterns
//
// Caching database queries (key = a hash of the query) is
// cache/querycache: the key also holds a version of each table the query
// reads, and a writer bumps the versions of the tables it changed after
// commit, so old entries are never read again. Caching assembled objects,
// rebuilt by background workers so that readers almost never touch the
// database, is cache/objects.
//
// # Statistics
//
// Loader.Stats counts hits (local and remote), misses, loads, load errors,
// local evictions, stale serves, lease waits, background refreshes and
// cache errors; Memory.Stats counts its hits, misses, evictions and
// expirations.
package cache
