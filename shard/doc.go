// Package shard partitions keys across shards — databases, cache nodes,
// queues — by hash or by range, and plans the data moves when shards come
// and go.
//
// A Sharder maps a key to the name of the shard that owns it. Strategies,
// one per file:
//
//   - Range: ordered boundaries ("users A–M on db1, N–Z on db2"), with Split,
//     Merge and Assign of ranges. Keeps neighbouring keys together.
//   - Jump: Lamping–Veach jump hash; no tables, perfectly even. Any shard can
//     be removed (its bucket becomes a hole), not only the last.
//   - Rendezvous: highest random weight; weighted; a preference list per
//     key for replicated placement. O(shards) per lookup.
//   - Ring: the classic consistent-hash ring with virtual nodes; weighted;
//     ketama-compatible with other memcached clients (RingConfig.Ketama).
//   - Maglev: a prime-sized lookup table; O(1) lookups; weighted.
//   - Bounded: consistent hashing with bounded loads (Mirrokni, Thorup and
//     Zadimoghaddam): no shard owns more than ⌈(1+ε)·mean⌉ partitions.
//
// # Semantics
//
// Lookups never fail and never allocate: every string, including "" and
// invalid UTF-8, maps to one of Shards(), the same one in every process that
// built the Sharder from the same members. Invalid membership (no shards,
// empty or duplicate names, weights below 1, impossible configurations) is
// refused by the constructor with an error wrapping one of this package's
// sentinel errors. Sharders are immutable and safe for concurrent use; a
// membership change builds a new Sharder.
//
// Every hash strategy hashes a key's Redis Cluster hash tag when it has one:
// "{user42}:profile" and "{user42}:orders" always share a shard, and Slot
// gives the key's Redis Cluster slot.
//
// When shards are added, removed or reweighted, the hash strategies move
// close to the minimum share of keys (1/n of them when an nth shard joins),
// and PlanMoves(old, new) lists exactly what changes owner — partitions,
// ring arcs or key ranges — so only that data is migrated. Owners places a
// key on several shards for replication, where the strategy can.
//
// # Choosing a strategy
//
// Use Range when you need ordered scans or control over placement; Maglev
// or Bounded for the fastest lookups at any size, with PlanMoves by
// partition; Jump for an even spread with no memory; Rendezvous for weights
// and replica placement with up to a few hundred shards; Ring with Ketama to
// share a memcached pool with non-Go clients.
//
// AddrSelector plugs any Sharder into gomemcache (memcache.NewFromSelector);
// package redisring plugs one into go-redis's Ring.
package shard
