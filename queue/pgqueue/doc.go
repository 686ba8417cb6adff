// Package pgqueue is a queue.JobQueue on PostgreSQL, shared by any number
// of processes, that can enqueue a job in the same transaction as the
// write that calls for it: EnqueueTx (a *sql.Tx) and EnqueuePgxTx (a pgx
// transaction) store the job only if the transaction commits, so an order
// and its "send the invoice" job exist together or not at all, and no
// crash between COMMIT and Enqueue can lose the job.
//
// It implements queue.JobQueue, Settler, Snoozer, Chainer, BatchEnqueuer,
// DeadLetters, Limiter and Inspector with the semantics of their documentation, and
// passes queue/queuetest. Chainer's AckThen (a Worker's Delivery.Then) is one
// transaction, whose next jobs may be in any queue of the tables.
//
// # Setting up
//
// New takes a DB (a *sql.DB opened with the pgx driver, or a *replica.DB)
// and touches nothing; Migrate creates the tables, indexes, sequence and
// functions, all named with Config.Prefix (default "scaleout_queue_"),
// and may run again at every deploy (it changes nothing that exists).
// Run it at deploy time rather than under load: its CREATE INDEX IF NOT
// EXISTS takes a lock that holds the queue's writes back until it
// commits, a few milliseconds.
//
// Through replica: give New the replica.DB. Every statement of the Queue
// runs on the primary (it marks its contexts with replica.UsePrimary, so
// even its SELECTs, whose answers must include the latest writes, go
// there), the listening connection is a replica.DB Conn, which is the
// primary's, and after a promotion the Queue follows the new primary as
// the replica.DB does. EnqueueTx takes a read-write transaction of the
// replica.DB, which runs on the primary.
//
// # Delivery
//
// Delivery is at least once, as queue.JobQueue says. Dequeue leases with
// one statement per queue, UPDATE … FROM (SELECT … FOR UPDATE SKIP
// LOCKED): concurrent workers never wait for each other's rows. The
// Dequeues of one Queue that come while two of its lease statements for
// a queue are in flight share the next one, which leases a job for each
// of them (LIMIT n); Acks are gathered the same way, one statement for
// the Acks that came meanwhile, each answered as its own (a stale token
// is ErrLeaseLost, a job acked twice at once is acked once).
// AckAndDequeue (queue.AckDequeuer, which queue.Worker uses when it takes
// jobs from one queue) acks a job and leases the next in one statement,
// and is gathered the same way: one statement acks the jobs of the calls
// that came meanwhile and leases one job for each Ack it accepted. A quiet
// queue runs one statement per call, as before; a busy one runs a few
// dozen calls per statement and commit, which is most of what a job
// costs the database. A call waiting for its batch honours its context;
// once its statement runs, the statement's own bound applies. A queue
// with Limits or paused takes its row in <prefix>queues FOR UPDATE first,
// which serializes that queue's leases. Every lease takes a fencing token
// from a sequence, and Ack, Fail, Extend and Release change the job only
// while its token is the delivery's and its lease has not run out, by the
// database's clock (the clocks of the workers do not matter).
//
// A blocked Dequeue waits for a notification on <prefix>ready (sent by
// whatever makes a job ready: EnqueueTx at its transaction's commit,
// Enqueue at or just after its commit, a retry without backoff, Release,
// Requeue, Resume, a slot freed under a concurrency limit), for the next
// scheduled job or lease deadline of its queues, or PollInterval (1 s) at
// most. PostgreSQL commits notifying transactions one at a time, so
// concurrent Enqueues of one Queue do not each notify: one at a time
// notifies in its statement, and the others' jobs are announced by one
// NOTIFY per queue sent after their commits (Close waits for it). Each Queue holds one connection of its DB
// for LISTEN, opened on first use of Dequeue or Wait and reopened after a
// failure (then every waiter looks again, as notifications sent meanwhile
// are lost). Wait marks the job as awaited; the statement that ends an
// awaited job notifies <prefix>ended, so jobs nobody waits for cost no
// notification.
//
// Expired leases are turned into failed attempts by the Dequeue calls of
// any process (when they find no job, or once a second), by
// AckAndDequeue (once a second), by Counts, and
// by Status and Wait for the job they look at. Ended jobs are deleted
// after their Retention by the Dequeue and AckAndDequeue calls, 1,000 at
// a time, once a second per process, or at the next call while a clean
// finds a whole batch to delete (so cleaning keeps up with a queue that
// ends more than 1,000 jobs a second); Status stops knowing them as soon as the
// Retention has passed.
//
// A Dequeue whose context ends (a deadline, a cancellation) does not
// cancel the statement it has in flight: the pgx driver closes the
// connection of a canceled statement (and the server's backend runs on
// until it notices), so Dequeues that often end midway, as a worker's
// polls or a shutdown, would open a connection each and could exhaust
// max_connections. It waits up to 200 ms for the statement, which then
// returns its connection to the pool, and releases a job the statement
// leased meanwhile (its attempt not counted) before it returns the
// context's error. A statement still running after that (a hung server)
// finishes in the background; Close waits for it.
//
// # Faults
//
// Every committed change is as durable as PostgreSQL makes it: with
// synchronous_commit on, a job whose Enqueue returned nil, or whose Ack
// returned nil, survives a crash of the server. A PostgreSQL restart
// fails the calls in flight (a call whose reply was lost may have
// committed: retry an Enqueue with Job.ID set; an Ack whose outcome is
// unknown is at worst a job run again), and blocked Dequeue and Wait calls
// return the error; queue.Worker retries. The listening connection comes
// back on its own. A standby promoted after the primary died has the
// commits the standby received: with asynchronous replication the last
// moments' enqueues and acks may be lost (an acked job runs again, an
// enqueued one is gone); with synchronous replication
// (synchronous_standby_names) none are. The fault tests kill a worker
// process with SIGKILL mid-job, restart PostgreSQL under load, and
// promote a synchronous standby under load, and lose no acknowledged job.
//
// # Tables and vacuum
//
// Every change of a job's state is an UPDATE, so a busy queue makes dead
// row versions quickly: about four per job (enqueue, lease, ack, delete
// after Retention; more with retries and heartbeats), and the same number
// of index entries in the partial indexes of the states it goes through.
// The jobs table has fillfactor 80 so that heartbeats (Extend) and other
// updates that change no indexed column stay HOT. With autovacuum at its
// defaults, a million jobs through the table at 50 workers (bench
// BenchmarkPGQueueBloat) left it at 377 MB for its million done jobs
// (River's: 483 MB), 31% of its row versions dead between vacuums; on a
// queue that moves more, lower autovacuum_vacuum_scale_factor on
// <prefix>jobs (e.g. 0.01) so that vacuum runs before the table and its
// indexes bloat. Done
// jobs are kept for their Retention (default 24 h): a shorter Retention
// keeps the table smaller. The counters of done and canceled jobs live in
// <prefix>totals, spread over 32 rows per queue so that concurrent acks
// do not queue on one row lock.
//
// # Costs
//
// Enqueue of a job without Job.ID or UniqueKey is one INSERT; with either,
// one call of the enqueue function (one round trip, atomic); EnqueueBatch
// is one statement for the whole batch. Dequeue is one statement per queue
// asked when a job is ready. Ack, Fail, Extend, Release and AckAndDequeue
// are one statement each. Status is one indexed read. Counts reads the index
// entries of the queue's pending, active and dead jobs (not its ended
// ones); List reads one page from its cursor; Queues skips through the
// primary key once per queue.
package pgqueue
