// Package objects caches whole objects: code assembles a dataset from the
// database into one object, stores the complete object in the cache, and
// the application consumes the latest cached object, nearly never touching
// the database. An army of workers (a local Pool, or a job queue's
// workers in any process) rebuilds objects when their source changes and,
// optionally, ahead of their expiry.
//
// Objects is built on cache.Loader, with one entry per key holding the
// object, its freshness and its fill lease, in any cache.SwapCache (Redis,
// Memcached, memory).
//
// # Readers
//
// Get answers the cached object, fresh or stale, without waiting for a
// build: a stale object (past TTL, or invalidated) is answered at once
// while one rebuild runs in the background, for the whole cluster. Only a
// miss (the key was never built, or its last good object is older than
// TTL+StaleFor, or was evicted) makes Get build synchronously, once for
// all the concurrent callers of the cluster: the others wait for it. A
// reader never sees a half-built object, and during a rebuild it sees the
// previous object until the new one is stored.
//
// # Invalidation
//
// Call Invalidate after the source of keys changed. When it returns
// without error:
//
//   - no rebuild that started before it (in any process) can store its
//     result: their leases are void;
//   - readers keep getting the last good object, now stale, until a
//     rebuild lands;
//   - the next rebuild that completes read the source after the call, so
//     the change is reflected; a rebuild is submitted to the Runner, and
//     a reader of the stale object starts one itself if none is running.
//
// Rebuilds of one key are serialized by its lease: a Rebuild finding
// another one in progress (a live lease) returns at once without building.
// Each invalidation therefore costs about one build, whatever the number
// of processes and readers: exactly one when the submitted rebuild takes
// the lease before any reader; when a reader's background rebuild wins and
// completes before the submitted one starts, the submitted one builds the
// now fresh object once more (Rebuild always rebuilds).
//
// # Failures
//
// When a build fails, the last good object is kept and served (until
// TTL+StaleFor after it was built), the error is counted
// (Stats.RebuildErrors, Stats.LoadErrors) and the next reader or
// refresh tries again. A build returning cache.ErrNotFound removes the
// object (or caches the absence for NegativeTTL): Get then answers
// cache.ErrNotFound. A cache that cannot be reached is failed open by the
// Loader: Get builds from the source without caching.
//
// # Delivery
//
// The default Runner, a Pool, is in process and best effort: a full queue
// refuses rebuilds (ErrBusy, counted in Stats.SubmitsDropped) and a crash
// or Close loses the rebuilds still queued. Nothing is lost for good: the
// invalidated object is stale, so the next reader has it rebuilt, and
// after StaleFor it is gone and rebuilt on demand. A job queue Runner
// gives durable delivery; its workers call Rebuild.
//
// # Refresh-ahead
//
// With RefreshEvery, Objects remembers the keys read through Get in this
// process (at most MaxTracked) and submits a rebuild of each key read
// within IdleAfter every RefreshEvery, so hot objects are rebuilt before
// they go stale; keys idle longer are forgotten and are rebuilt only on
// demand again. With RefreshEvery below TTL, readers of hot keys never see
// a stale object.
//
// # Lifecycle
//
// New starts the default Pool's workers and, with RefreshEvery, the
// refresh-ahead goroutine; Close stops them and waits for them. After
// Close, Get and Rebuild return ErrClosed (which is cache.ErrClosed);
// Invalidate still marks objects stale. A Pool made with NewPool is
// closed the same way: Submit returns ErrClosed after its Close.
package objects
