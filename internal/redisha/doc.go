// Package redisha is what scaleout's Redis-backed primitives share to run on a
// replicated Redis (Sentinel, or a Cluster with replicas): telling the errors of a
// master switch from real failures, riding them out within the caller's deadline,
// and waiting for replicas to confirm a write.
//
// # What a switch looks like to a client
//
// While a master is failed over, a go-redis client meets, for a few seconds (the
// sentinels' down-after-milliseconds or the Cluster's node timeout, then an election):
// refused connections and broken ones (EOF, reset) to the dead master; READONLY from
// an old master turned replica (also inside a script's error); LOADING from a replica
// reloading its dataset; MASTERDOWN from a replica whose link is down; on a Cluster
// CLUSTERDOWN, TRYAGAIN, and MOVED or ASK past go-redis's own redirections. go-redis
// retries some of these itself, MaxRetries (3) times within about a second, which a
// switch outlasts. Transient says which errors pass on their own; Retry calls an
// operation again, with backoff, while they last and the caller's deadline allows.
//
// go-redis's ClusterClient learns that a killed master was replaced only when it
// reloads its slot map (every 10 seconds, or at a MOVED or READONLY reply, which a
// dead node never sends): until then every call for the dead master's slots goes to
// it and is refused. Retry reloads the map itself after a connection error on a
// ClusterClient, so such calls find the new master as soon as the Cluster has one.
//
// # Waiting for replicas
//
// Replication is asynchronous: a master acknowledges a write before any replica has
// it, and a failover to a replica that missed it loses it. WAIT n timeout makes the
// master hold the reply until n replicas confirm every write of the connection so
// far. Durable sends the caller's commands and a WAIT in one pipeline on the
// connection of the key's master (on a Cluster, the node serving the key's slot) and
// fails with ErrNotReplicated when fewer replicas confirmed: the write is then on the
// master and may or may not survive a failover. WAIT does not make Redis strongly
// consistent: a write that n replicas have is lost only if the failover promotes a
// replica that was not among them; with n equal to the number of replicas, every
// replica the sentinels (or the Cluster) can promote has it.
//
// # Users
//
// session/redisstore, failover/rediselector, the Redis cache and queue/redisqueue
// (every script through Value and DurableScript, Status through MasterRead with
// WaitReplicas) use this package; Durable's error says how many replicas confirmed
// (NotReplicatedError).
package redisha
