// Package failover keeps a service available when a machine dies: one
// leader among many candidates, fenced, and pairs of servers that check
// each other with heartbeats, active-passive or active-active.
//
// # Leader election
//
// An Elector (Memory in this process, failover/rediselector on Redis; both
// pass failover/electortest) elects one leader per role. Campaign blocks
// until the candidate leads and returns a Term; Run keeps campaigning and
// runs a function for each term with a context cancelled when the term
// ends, and hands the function's errors to RunConfig.OnError. The leader
// renews a lease every RenewInterval; a leader that dies,
// hangs or is cut off stops renewing, its lease runs out, and another
// candidate takes over within about Lease + RetryInterval (1.125 s with
// the defaults). Resign hands over at once.
//
// # Fencing
//
// Every change of leader gets a larger fencing token (Term.Token). Two
// guards keep an old leader from acting after a new one was elected:
//
//   - Self-fencing: a Term ends (Err reports it at once; Done closes as
//     soon as the machine runs the timer) at a local monotonic deadline
//     a SafetyMargin before its lease could run out, measured from when the
//     renewal was sent, whether or not the store can be reached. A leader
//     paused by a GC or a SIGSTOP, or partitioned from the store, stops
//     acting before anyone else may start, as long as clocks run at about
//     the same rate (SafetyMargin covers the drift).
//   - Fenced resources: a paused process may still be in the middle of a
//     write when it wakes. Pass the token along with every write, and let
//     the resource refuse a token older than the newest it has seen:
//     rediselector.FenceSet for a Redis key, FenceTx for a PostgreSQL
//     transaction.
//     ErrStaleToken is the refusal.
//
// Tokens survive a restart of the store only if the store does: run Redis
// with its append-only file (see failover/rediselector).
//
// # Heartbeat pairs
//
// A Pair is two (or a few) servers that send each other heartbeats over
// HTTP on their own addresses. Active-passive: the passive promotes itself
// after MissedBeats missed heartbeats and runs OnPromote (take over the
// listening address the active served); a returning former active stays
// passive unless Preempt is set. Active-active: all serve, and
// OnPeerDown/OnPeerUp tell the survivors to take the whole load (for
// example by updating a balance.Balancer).
//
// Heartbeats are signed with the members' shared Secret (required; only
// tests may opt out, with InsecureNoSecret), so a host that reaches the
// heartbeat URL cannot promote or demote anyone. They cannot be replayed
// either: each names the receiver's boot nonce, new with each process,
// and carries a sequence number larger than the last one accepted, so a
// heartbeat captured before a restart is refused however old it is,
// without trusting the members' clocks. Epochs beyond any a member
// reaches are refused, so a promotion never wraps the epoch to 0.
//
// What a pair cannot do alone: two nodes cannot tell a dead peer from a
// cut link. Without an Arbiter, a partition between them makes both
// active until the link heals (then the one with the older epoch
// demotes). With an Arbiter (an Elector in a third place), promotion
// requires winning its election, so at most one is active; the price is
// that neither can be active while the arbiter is unreachable.
//
// # Lifecycle
//
// Run and Pair.Run block until their ctx ends and return once every
// goroutine they started has ended; a second Run on the same Elector, or
// a second Pair.Run of the same Pair, while one runs returns
// ErrAlreadyRunning at once. NewPair starts nothing.
//
// An Elector starts goroutines as it campaigns, leads and is observed
// (rediselector's also subscribes at New): Close them. Close resigns a
// live term, returns once the Elector's goroutines have ended, closes its
// Observe channels, and is idempotent; afterwards Campaign, Resign,
// Leader and Observe return ErrClosed. Close never closes what the caller
// passed in (a MemoryStore, a Redis client).
//
// Constructors validate their Config with Config.Validate, whose zero
// fields are the defaults; an invalid one fails with an error wrapping
// ErrInvalidConfig.
package failover
