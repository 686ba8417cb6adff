// Package chaos runs scaleout's primitives against real servers while a
// seeded fault schedule breaks the network and the servers under them, records
// every operation's invocation and completion, and checks the whole history
// against a model of what the primitive promises — Jepsen's method, on a
// single machine.
//
// # Faults
//
// Every client reaches its server through a testenv.FaultProxy of its own
// (one per client and server, so a fault can cut one clone off while the
// others go on). A Schedule, driven by a seeded random source, injects at
// random intervals: added latency, a lost reply (the request reaches the
// server, its reply is swallowed and the connection reset — the case a
// client's retry turns into a second application), a reset of every
// connection, a blackhole (the server looks hung: requests are never
// answered), a refusal (the server looks gone), and, where the run owns the
// server process, a pause (SIGSTOP) and a kill followed by a restart. The
// seed fixes the schedule and the workload's choices; the interleaving of
// real goroutines and servers is not under its control, so a seed replays a
// run's faults and operations, not its timing.
//
// # Histories and models
//
// A History records each operation as a porcupine.Operation: the client, its
// input, the output it saw and the times it was called and returned (an
// operation whose outcome the client cannot know returns Unknown and may take
// effect at any time after its call). A model states what the primitive
// promises as a porcupine.NondeterministicModel (SessionModel), the
// executable form of the promise; a history is checked against it by a
// checker that needs no search where the model allows one (CheckSessions:
// a session family is an append-only list, checked as Elle checks
// list-append histories, in time quadratic in a family's operations, where
// porcupine's search gave up after minutes on families of a few dozen
// operations with unknown outcomes). Each such checker is tested against
// porcupine on tens of thousands of small random histories, and must agree
// on every one. A violation is reported as a cycle: operations that must
// each come before the next, the last before the first.
//
// The models (each with its checker's clauses in its own file):
//
//   - session (session.go, listappend.go): per family, each request's
//     changes applied exactly once, in an order consistent with real time;
//     a logged-out family never served again under any ID. Memory, Redis
//     with and without persistence, Redis Cluster, Memcached.
//   - queue (queue.go): every acknowledged Enqueue ends; no Ack or Fail
//     accepted from a superseded lease; a done job's result is the newest
//     token's; Wait returns only final states. Memory, Redis, Redis
//     Cluster.
//   - elector (elector.go): tokens strictly increase across terms; a fence
//     (PostgreSQL's FenceTx, rediselector's) accepts the writes of one
//     holder at a time; a term reports itself over by its deadline.
//     Memory, Redis, Redis Cluster, each with the PostgreSQL fence.
//   - replica (replica.go): a tracked read is never older than its
//     session's last write; an untracked one never older than MaxLag; a
//     refused read is a typed error. PostgreSQL primary and standby.
//   - cache invalidation (cacheinval.go): no read returns a value never
//     written, none older than its TTL, and none older than an
//     invalidation (Delete, Refresh) that completed before it began —
//     at once on the clone that invalidated, within LocalTTL on the others
//     where invalidations travel by Redis pub/sub or not at all. Memory
//     with a LocalBus, Redis and Redis Cluster with rediscache's
//     Invalidator, Memcached.
//
// Each checker is unit-tested on synthetic histories that break each
// clause, and each model keeps a broken implementation (a mutant) that its
// checker must catch.
//
// # Running
//
// The tests of this package are the runner: make test runs each model on
// each backend for -chaos.duration (4s) under seed 1; make chaos runs the
// models side by side (-chaos.parallel), each for CHAOS_DURATION shared
// among its backends (-chaos.model-duration), with a random seed, and
// writes the figures to CHAOS.md. -chaos.seed replays a schedule.
package chaos
