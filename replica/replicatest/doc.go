// Package replicatest is the test kit of package replica: a simulated
// primary-with-replicas Topology, and Run, the conformance kit every
// replica.ReplicaRouter passes (replica.Router does, in this package's
// tests) and that authors of other routers can run on their own.
//
// # Topology
//
// A Topology is an in-memory set of named nodes, each with a *sql.DB on
// an in-memory driver that answers every statement with one row holding
// the node's name, so a test sees where a statement ran. The Topology is
// also the replica.Probe (and replica.PositionProbe) of those pools: it
// reports the roles, generations, lags, positions and failures the test
// sets with SetLag, SetDown, SetDetached, Pause and Resume, Promote,
// Claim and Demote. It asks the node through the replica.Querier it is
// given, as a real probe does, so SetLatency (slow answers) and
// SetDialLatency (slow new connections) slow probes as they slow
// statements, and Connections counts the connections opened to a node.
// Writes on a primary advance a write position that replicas follow
// unless paused. Timers are the Router's, not the
// Topology's, so tests run in a testing/synctest bubble take no real time.
//
// # The kit
//
// Run builds a Router with the factory for each clause, over a fresh
// Topology of a primary "p" and replicas "r1" and "r2", with a Config
// whose Probe is the Topology, ProbeInterval is ProbeInterval (100 ms)
// and MaxLag is MaxLag (1 s); FailAfter and ReadmitAfter are left to
// their defaults (replica.DefaultFailAfter, replica.DefaultReadmitAfter).
// Each clause runs in a synctest bubble: the factory is called inside it,
// and the Router's goroutines must end (by t.Cleanup) inside it too. A
// factory that skips is reported SKIP. The clauses, as
// replica.ReplicaRouter's doc states them:
//
//   - WritesGoToThePrimary: Writer returns p's pool.
//   - ReadsSpreadOverReplicas: 100 reads all go to replicas, and both r1
//     and r2 serve some.
//   - UsePrimaryReadsThePrimary: reads with replica.UsePrimary go to p.
//   - TrackedReadsSeeTheirWrites: with r1 paused before a write, reads of
//     a replica.TrackFrom context whose Mark.Position is that write's
//     go to r2 only; with both paused before a later write, to p; once
//     both resumed, to the replicas again.
//   - TrackWindowReadsThePrimary: reads of a context whose Mark.Until is
//     ahead go to p; after Until, to the replicas.
//   - WithKeyWritesGoToTheKeysPrimary: with r1 claiming to be a second
//     primary of p's generation and a Config.WriteSharder, Writer with
//     replica.WithKey returns the pool of Shard(key); without a key, p's;
//     with r1 down, a key of r1 fails with replica.ErrNoPrimary.
//   - LaggingReplicaGetsNoReads: r1 lagging beyond MaxLag gets no read one
//     probe interval later, and is readmitted once its lag is back within
//     MaxLag.
//   - DownReplicaIsEjectedAndReadmitted: r1 failing its probes gets no
//     read, and serves again once it answers.
//   - AllReplicasUnfitFallsBackToThePrimary: r1 down and r2 lagging, reads
//     go to p.
//   - DeadPrimaryFailsWritesFast: p down, Writer fails with
//     replica.ErrNoPrimary without waiting; reads carry on on r1 and r2.
//   - PromotedReplicaTakesWrites: p down and r1 promoted, Writer returns
//     r1's pool within one probe interval, and reads go to r2 only.
//   - OldPrimaryIsFencedAfterPromotion: p back up after r1's promotion,
//     still claiming to be primary on an older generation, gets neither
//     writes nor reads.
//
// A router written elsewhere reads the context options through
// replica.UsesPrimary, replica.KeyOf and replica.MarkOf. The kit's own
// tests run each clause against a replica.Router broken in that clause,
// by wrappers written with exported API only, and require the clause to
// fail.
package replicatest
