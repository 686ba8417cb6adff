// Package scaleout is a library of the primitives a Go service needs when it
// outgrows one machine. Each concept of horizontal scaling lives in its own
// package, with a small interface, an in-memory implementation and real
// backends:
//
//   - Horizontal scaling and clones: every package keeps shared state out of
//     the process, so identical clones can run behind a load balancer.
//   - Database partitioning (sharding by key or pattern, "users A–M on one
//     database, N–Z on another"): package shard — shard.Sharder with
//     shard.Range, shard.Jump, shard.Rendezvous, shard.Ring, shard.Maglev and
//     shard.Bounded; shard.PlanMoves lists the data to migrate when shards
//     change; shard.Slot gives Redis Cluster hash slots.
//
// Still to come, each in its own package (see README.md for their status):
// load balancing with round robin, load-based, DNS and zone-aware strategies
// (balance); sessions every clone can read (session); cache-aside in RAM
// stores, cached queries and cached objects (cache); reads to replicas and
// writes to the primary (replica); background jobs and scheduled precompute
// (queue); and high availability with leader election and heartbeat pairs
// (failover).
package scaleout
