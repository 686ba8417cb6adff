// Package replica routes database/sql statements over a primary and its
// replicas: writes to the primary, reads to replicas that are up and
// recent enough, read-your-writes, and a new primary picked up without a
// restart when a replica is promoted. It puts into the process what
// otherwise takes a proxy (ProxySQL, pgpool-II, Vitess) in front of the
// databases.
//
//	r, err := replica.New(replica.Config{Probe: new(replica.PostgreSQL), MaxLag: 5 * time.Second},
//		replica.Node{Name: "pg-a", DB: a}, replica.Node{Name: "pg-b", DB: b})
//	db := r.DB() // a drop-in for *sql.DB: Query, Exec, BeginTx…, routed
//
// # Routing
//
// DB's Exec, read-write transactions, Conn and prepared writes run on the
// primary. QueryContext and QueryRowContext run on a replica when the
// statement is read-only (ReadOnly: it starts with SELECT, WITH, VALUES,
// TABLE, SHOW or EXPLAIN and names nothing that writes or locks, so
// INSERT … RETURNING, SELECT … FOR UPDATE and a data-modifying WITH go to
// the primary), and read-only transactions (sql.TxOptions{ReadOnly: true})
// run on a replica (each method without a context routes as its Context
// variant does, with context.Background()). UsePrimary(ctx) sends a context's reads to the
// primary. The replica is chosen by a balance.Balancer: round robin by
// default, balance.P2C to favour the least busy. Writer and Reader hand
// out the chosen *sql.DB for code that runs statements itself.
//
// # Topology, health and lag
//
// The nodes are given without roles: a Probe asks each node, every
// ProbeInterval, whether it is a primary or a replica and how far behind
// it is (PostgreSQL: pg_is_in_recovery(), WAL positions and replay time;
// MySQL: @@read_only and SHOW REPLICA STATUS). A node that fails
// FailAfter probes in a row is taken out, and taken back after
// ReadmitAfter good ones. A query that fails on a broken connection
// brings the next probe forward, and a read that fails so before any row
// is retried once on another node.
//
// A slow node is not a dead one. Probes run on a connection of their own
// per node, kept from round to round, so they neither queue behind
// traffic in a saturated pool nor dial every round; opening it is bounded
// by ConnectTimeout and the probe's queries by ProbeTimeout (at least 1 s
// by default, whatever ProbeInterval), and only a probe that exceeds its
// bound, or is refused, reset or answered with an error, fails. A primary
// answering in twice ProbeInterval keeps taking writes; one that hangs is
// out within ProbeInterval + FailAfter × (ConnectTimeout + ProbeTimeout),
// about 3 s with the defaults (measured on PostgreSQL behind a blackhole).
//
// Staleness is bounded: a replica gets a read only while its lag at the
// last probe plus the time since that probe was sent is under MaxLag, so
// no read is older than MaxLag even when the replica stalls between two
// probes. With a PositionProbe (PostgreSQL) the Router also remembers the
// primary's write position at each recent probe: a replica that has
// replayed past the position of a probe sent at t holds every write
// committed before t, so its lag is at most the time since t, whatever
// the replay timestamp says. That keeps a replica that is busy replaying
// a burst after an idle spell in rotation (its last replayed transaction
// is as old as the idle spell), with no assumption about how fast changes
// reach it. Conversely, a replica that has not replayed up to the
// position of a probe answered at t lacks something written before t: a
// replica reckons its own lag from the changes it received, so after a
// restart, or cut off from the primary, it has replayed all it received
// and reports itself current, and these positions are what show it is
// not (then its lag is the time since the newest position it holds). The
// Router keeps these positions while the primary does not answer, and
// then reckons each replica's lag from them alone: a clone cut off from
// the primary cannot trust a replica's report, as nothing tells it what
// the primary wrote since. A replica that is not receiving changes from a
// live primary (Detached) gets no reads. When no replica is fit, reads go to the
// primary (StrictReads makes them fail with ErrNoReplica instead); set
// MinServing to keep that many of the least lagging replicas serving when
// all lag, so that a lag spike does not move every read to the primary,
// at the price of reads older than MaxLag.
//
// # Read-your-writes
//
// Reads through a Track context see the writes made through it. With a
// PositionProbe (PostgreSQL), a write records the primary's WAL position
// and the reads go to any replica that has replayed it, or to the
// primary. Otherwise (and after a write sent through QueryContext, whose
// position is not known when it returns) the reads go to the primary for
// Config.ReadYourWrites. A transaction run by BeginTxFunc records its
// commit the same way. A *sql.Tx from BeginTx, or a Conn, does not tell
// the Router when what it wrote commits, so it keeps the context's reads
// on the primary from then on. MarkOf and TrackFrom carry the guarantee
// to the user's next request, through a cookie or the session, and to a
// background job (see below).
//
// # Drop-in for database/sql
//
// *DB has the statement methods of *sql.DB with their signatures and
// result types: Exec, Query, QueryRow, Prepare, Begin, Ping, their
// Context variants, Conn and Close; BeginTx returns the node's *sql.Tx.
// Code written against *sql.DB compiles against it once the variable or
// parameter type is changed (to *replica.DB, or to an interface both
// satisfy), and sqlc's DBTX and GORM's ConnPool accept it. The pool knobs
// (SetMaxOpenConns, Stats) are each node's: set them on the *sql.DB of
// each Node. The nested module replica/adapters shows *DB under GORM and
// over a pgxpool.Pool per node (pgx's stdlib.OpenDBFromPool), tested on a
// real primary and standby.
//
// # Composing with cache and queue
//
// A cache filled from the database shares what a read saw with every
// user, and read-your-writes is per context; two compositions need care.
//
// A cache.Loader refilled from a lagging replica right after a write: a
// request updates a row and deletes its cache entry; the next miss, from
// any user's request, loads the row from a replica that has not replayed
// the update yet and caches the old row for the whole TTL. Track does not
// help: the load runs for whichever caller missed first. After the write,
// read the row back under UsePrimary and Set it:
//
//	if _, err := db.ExecContext(ctx, "UPDATE users SET name = $1 WHERE id = $2", name, id); err != nil {
//		return err
//	}
//	u, err := loadUser(replica.UsePrimary(ctx), db, id) // the primary has the write
//	if err != nil {
//		return err
//	}
//	return users.Set(ctx, userKey(id), u, time.Hour) // voids any fill under way
//
// Read-your-writes across a queue: a request writes, then enqueues a job
// about what it wrote; the worker's reads go to any fit replica, which may
// not have the write yet, so the job sees the old row, or none. Carry the
// request's Mark in the job (a Mark marshals to text, so it rides in a
// JSON payload) and run the job under TrackFrom:
//
//	type receipt struct {
//		OrderID int64
//		Mark    replica.Mark // what the worker's reads must see
//	}
//	mark, _ := replica.MarkOf(ctx) // ctx: the request's Track context
//	_, err := receipts.Enqueue(ctx, q, receipt{OrderID: id, Mark: mark}, queue.Job{})
//
//	// In the worker:
//	err := receipts.Handle(w, func(ctx context.Context, r receipt, d *queue.Delivery) error {
//		ctx = replica.TrackFrom(ctx, r.Mark)
//		…
//	})
//
// With a PositionProbe the mark holds a WAL position, good whenever the
// job runs; without one it holds a wall-clock window, whose end the
// worker's clock must agree on.
//
// # Promotion
//
// When the primary dies, its probes fail and writes fail at once with
// ErrNoPrimary instead of waiting on a dead server; reads carry on on the
// replicas for MaxLag from the last primary position the Router saw them
// hold. A Router that cannot reach the primary cannot tell a dead one
// from one it is cut off from while other clones still write to it, nor
// trust a replica's own report (see Staleness above), so it keeps the
// bound; set MinServing to keep replicas serving past it. When a replica is promoted — by an operator, or by
// Router.AutoPromote, in which a failover.Elector lets one process run a
// Promote hook such as SELECT pg_promote() — the next probe finds it, and
// writes go to it without a restart. If the old primary comes back still
// claiming the role, the higher Generation (PostgreSQL's timeline) wins
// and the old one is fenced: it gets neither writes nor reads. Promotion
// loses the writes the replica had not received; that is the price of
// asynchronous replication, which this package reports but cannot avoid.
//
// # Master-master
//
// Several nodes may accept writes (MySQL group replication in
// multi-primary mode, BDR, two MySQL servers replicating each other).
// Concurrent writes of the same row on two masters conflict: one is lost
// or replication stops, depending on the database, and a transaction can
// commit on one master while the other never applies it. Two write
// policies keep that in hand:
//
//   - Preferred primary (the default): all writes go to one master, the
//     first of New's order among those up with the highest Generation;
//     when it fails, the next, which keeps them when the first returns, so
//     writes do not flap back. The other masters get neither writes nor
//     reads meanwhile (their lag is not probed), so there are no
//     concurrent writes to conflict, and failing over is instant because
//     the next master already accepts writes. Writes acknowledged by the
//     failed master but not yet replicated are lost, or come back as
//     conflicts when it returns.
//   - By key (Config.WriteSharder): a write whose context carries a key
//     (WithKey) goes to the master the shard.Sharder assigns that key, so
//     each row has one writer and masters never write the same rows. When
//     a key's master is down its writes fail with ErrNoPrimary rather than
//     going to another master, where they could conflict.
//
// # Compared with
//
//	                                    replica            bxcodec/dbresolver  ProxySQL             pgpool-II
//	in-process, plain database/sql      yes                yes                 no (a proxy)         no (a proxy)
//	writes sent via Query detected      yes                RETURNING only      regex rules          yes (parser)
//	read-only transactions to replicas  yes                no                  by query rules       yes (until a write)
//	health checks, eject and readmit    yes                no                  yes                  yes
//	lag bound                           MaxLag             no                  max_replication_lag  delay_threshold
//	lag bound between two checks        yes                no                  no                   no
//	floor of serving replicas           MinServing         no                  no                   no
//	read-your-writes                    LSN or window      no                  GTID (MySQL)         dml_adaptive
//	roles learned, promotion followed   yes                no                  yes (read_only)      its own failover
//	old primary fenced by timeline      yes                no                  no                   no
//	automatic promotion                 hook + Elector     no                  no                   failover_command
//	master-master write policy          by key, preferred  no                  by hostgroup         no
//	MySQL / PostgreSQL                  both               both                MySQL                PostgreSQL
//	query cache, connection pooling     no                 no                  yes                  yes
//
// replica/replicatest holds a Topology, an in-memory primary and replicas
// whose roles, lag and failures a test sets, and Run, the conformance kit
// every ReplicaRouter passes.
package replica
