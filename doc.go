// Package scaleout is a library of the primitives a Go service needs when it
// outgrows one machine. Each concept of horizontal scaling lives in its own
// package, with a small interface, an in-memory implementation and real
// backends:
//
//   - Horizontal scaling and clones: every package keeps shared state out of
//     the process, so identical clones can run behind a load balancer.
//   - Load balancing over clones (round robin, load-based by asking servers
//     how busy they are, DNS round robin, zone-aware/geographic): package
//     balance — balance.Balancer with balance.RoundRobin,
//     balance.WeightedRoundRobin, balance.Random, balance.LeastLoaded,
//     balance.P2C, balance.ConsistentHash and balance.ZoneAware;
//     balance.Health for active and passive health checks;
//     balance.LoadReporter and balance.LoadProber for reported load;
//     balance.DNS for DNS-fed backend sets. Private backends behind one
//     public entry point: balance/httpproxy.Proxy. Balancing on the
//     client side, the caller calling the clones directly:
//     balance/httpclient.Transport, an http.RoundTripper.
//   - Sticky sessions by cookie: httpproxy.Config.StickyCookie (a keyed
//     hash of the backend, never its address).
//   - Sessions every clone can read, kept in a shared store: package session —
//     session.SessionStore with session.Memory, session/redisstore and
//     session/memcachedstore; session.Manager, the HTTP middleware.
//   - Database partitioning (sharding by key or pattern, "users A–M on one
//     database, N–Z on another"): package shard — shard.Sharder with
//     shard.Range, shard.Jump, shard.Rendezvous, shard.Ring, shard.Maglev and
//     shard.Bounded; shard.PlanMoves lists the data to migrate when shards
//     change; shard.Slot gives Redis Cluster hash slots.
//   - A cache in RAM between the application and its data store, read
//     first, loaded on a miss: package cache — cache.ObjectCache with
//     cache.Memory, cache/rediscache and cache/memcachedcache; cache.Loader
//     for cache-aside with fill leases, negative caching, stale serving,
//     XFetch and a local tier (cache.Invalidator, rediscache.Invalidator);
//     caching database queries, a hash of the query as the key, in
//     package cache/querycache, invalidated by table versions; cached
//     objects assembled from the database and rebuilt by workers in
//     package cache/objects.
//   - Asynchronism: slow work done in the background by workers, the user
//     told at once that it is in progress and later that it is done, and
//     work precomputed on a schedule: package queue — queue.JobQueue with
//     queue.Memory and queue/redisqueue; queue.Worker; queue.Scheduler for
//     periodic jobs; JobQueue.Wait for completion.
//   - High availability: one leader among many, fenced, and pairs of
//     servers checking each other with heartbeats: package failover —
//     failover.Elector with failover.Memory and failover/rediselector;
//     failover.Run; rediselector.FenceSet and failover.FenceTx; failover.Pair,
//     active-passive (the passive takes over the active's address) and
//     active-active.
//   - Database replication, master-slave and master-master, and a load
//     balancer that splits reads from writes: package replica —
//     replica.ReplicaRouter and replica.Router over database/sql, with
//     replica.DB routing each statement; replica.PostgreSQL and
//     replica.MySQL learn roles and lag; Router.AutoPromote elects a new
//     master with a failover.Elector; Config.WriteSharder for
//     master-master writes by key; replica/replicatest fakes a topology.
//
// Package admin is an operator's page for them, an http.Handler to mount
// in a service: queues, elections, balancers, replicas and caches, live,
// from the metrics they report, with buttons to requeue dead jobs and
// pause queues.
//
// examples/webfarm runs all of them together: a balancer pair in front of
// clones, shared sessions, sharded data on replicas behind a cache, a job
// queue, an elected migrator, and a live dashboard to break it from.
//
// # Lifecycle
//
// One rule for every type of the library:
//
//   - A type whose work is a loop the caller starts has Run(ctx) error
//     (queue.Worker, queue.Scheduler, queue.DepthReporter, balance.Health,
//     balance.DNS, balance.LoadProber, failover.Pair, admin.Handler;
//     failover.Run is the function form). Run blocks until ctx ends and
//     returns only when every goroutine it started has ended; a second Run
//     while one runs returns at once the package's ErrAlreadyRunning. Its
//     constructor starts nothing.
//   - A type that holds goroutines, connections or subscriptions from its
//     constructor has Close() error (the in-memory stores with a janitor,
//     queue and elector backends, cache.Loader, rediscache.Invalidator,
//     replica.Router, objects.Pool). Close releases them and returns once
//     every goroutine the type started has ended; none starts after it.
//     Close is idempotent. After Close, every method that needs what Close
//     released returns the package's ErrClosed; Close never closes what
//     the caller passed in (a client, a store, a *sql.DB).
//   - A type that holds neither has no Close (cache.Memory, the
//     balancers, the sharders).
//
// # Logging and metrics
//
// One rule for every package that logs: it takes a *slog.Logger in its
// Config (Logger; httpproxy.Config.ErrorLog), and nil means slog.Default(),
// read when the type is built. The default is slog.Default rather than
// silence because what the library logs is what an operator must not miss
// (a store failing behind a 503, a backend ejected, a lost lease, a
// worker's handler panicking), and a service that set up slog has already
// said where that goes; a program that wants silence passes
// slog.New(slog.DiscardHandler). Nothing the library logs contains a
// session ID, a secret, or a key or error that holds one: records name the
// request by method and path, the backend by address, the job by ID.
//
// Metrics go through package observe: a Config's Meter (nil: off, at the
// cost of a nil check) gets instruments bound once, so that a hot path
// allocates nothing with metrics off or on; observe's documentation lists
// every metric. Events are counted there and told in one log record.
//
// # Fakes and conformance kits
//
// Every interface has an in-memory implementation that is a product in its
// own right, held to the same conformance kit as the real backends, so a
// service's unit tests can use it as a fake: balance/balancetest,
// session/sessiontest, cache/cachetest, queue/queuetest,
// failover/electortest and replica/replicatest (which also fakes a
// primary and its replicas for database/sql). A third party's
// implementation passes the same kit.
package scaleout
