// Package querycache caches the results of database queries under a key
// that is a hash of the query, made safe against stale reads by table
// generation counters.
//
// # Keys
//
// A Cache keeps the result of a query, scanned into a T, under
//
//	Prefix + hex(SHA-256(namespace, T, mode, query, args, tables and their versions))
//
// where each argument has a canonical, typed, self-delimiting encoding:
// int 1 and string "1", nil and "", a []byte and a string of the same
// bytes, time.Duration(1) and int64(1) all give different keys. Integers
// of different Go widths with the same value give the same key, as they
// mean the same to the database. A defined type is keyed by its package
// path and name plus its value; a driver.Valuer by its type and the result
// of its Value method, which must therefore be a deterministic function of
// what the database sees. Pointers, slices and arrays of encodable values
// are encodable (PostgreSQL arrays). Anything else (maps, structs other
// than time.Time, channels, functions, complex numbers) is refused with an
// *ArgError before any query runs: it is never guessed at.
//
// The scan function is not part of the key: within a Cache (and its
// Config.Namespace) one query text must always be scanned the same way.
//
// # Versions
//
// Every table has a version, a random 128-bit value kept in an ObjectCache
// under VersionsConfig.Prefix + table ("qv:orders"). Bump gives a table a
// fresh random version after a write, and every key that included the old
// one is never computed again: there are no entries to find and delete,
// and no race with a slow filler, which stores what it read under the
// versions it read before it ran the query, where no later reader looks.
// A version is never reused, unlike a counter that an eviction could reset
// to a value seen before. A missing version (never set, evicted, expired)
// is created at the next read, with Add on a cache.SwapCache so that
// concurrent creators agree: losing a version costs misses, never stale
// reads. The one thing that can resurrect an old version is a store that
// rolls back acknowledged writes (a Redis failover with asynchronous
// replication, a restart from an older snapshot); there the lost Bump can
// let readers see results from before it until their TTL.
//
// The versions must live in a store that every process reading or writing
// the tables shares (the same Redis or memcached, the same prefix): a Bump
// in a process-local cache.Memory invalidates nothing elsewhere. The
// entries themselves may be in any cache, a Loader's local tier included,
// since their keys carry the versions.
//
// Table names are compared as given ("Orders" and "orders" are two
// tables); write them the same way everywhere.
//
// # Consistency
//
// A reader that starts after a Bump of one of its tables has returned
// never gets a result read before that Bump: Query reads the versions
// before it runs the query, so a result read from the database before the
// write was committed is stored under versions the Bump has replaced. A
// read that races a write (starts before its Bump returns) may return the
// pre-write data, once, as any read racing a write may.
//
// This holds only if Bump runs after the commit. A Bump before the commit
// lets a reader that starts in between read the pre-commit rows, store
// them under the new versions, and serve them to every later reader until
// their TTL. Versions.Exec (for an autocommit statement), CommitAndBump
// and WithTx bump in the right order, bump even if the caller's context
// is done (the write may be in the database), and report a failed Bump as
// a *BumpError with Committed set: the caller may, and should, call Bump
// again; until it succeeds readers may get results cached before the
// write.
//
// Listing the tables a query reads, and the tables a write changes, is
// the caller's duty: a query over a table it does not list is not
// invalidated by writes to it, views and triggers included. Writes that do
// not go through this package (another service, a migration, psql) must
// Bump too, or be left to the TTL.
//
// # Failures
//
// A Cache fails open to the database: when the versions cannot be read
// (the cache is down or slower than VersionsConfig.Timeout), Query runs
// the query and caches nothing; when the entries' cache fails, the
// cache.Loader answers from the database (see its documentation: single
// flight, cluster-wide fill leases, negative caching, stale-on-error,
// local tier). Errors of the database and of scan are returned as they
// are and not cached; QueryRow's no-row answer is cached for
// LoaderConfig.NegativeTTL when that is set.
//
// # Garbage
//
// Entries under old versions are never deleted; they are never read
// either, and go when their TTL expires or the cache evicts them.
// Config.TTL (DefaultTTL by default) is therefore the bound on garbage as
// well as on staleness from writes that do not Bump.
//
// # Lifecycle
//
// A Cache holds a cache.Loader, whose Close it forwards: after Close,
// Query and QueryRow return ErrClosed. Versions holds nothing but its
// store and has no Close.
package querycache
