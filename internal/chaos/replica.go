package chaos

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/scaleout/scaleout/replica"
)

// The replica model: writer sessions each own a counter row on the
// primary, write it through a replica.Router with increasing values, and
// read it back through a Router, tracked (replica.TrackFrom the mark the
// session kept from its last write, as the package doc tells a user to
// carry read-your-writes from one request to the next, here to any clone)
// or untracked. A recorder reads from the primary, after the run, when
// each value was committed (its transaction's commit timestamp). What the
// router promises (package replica's doc, Config.MaxLag,
// Config.StrictReads, Track), checked by CheckReplica:
//
//  0. Reads return committed data: a read returns the row's initial 0 or
//     a value some write committed; every write the router acknowledged
//     was committed.
//  1. Read-your-writes: a tracked read returns a state no older (in the
//     row's commit order) than the session's last write that completed
//     before the read began, where that write's position was recorded
//     (the Router asked the primary for it), or, when it was not, for
//     reads that begin before the mark's window (Mark.Until) ends; after
//     the window, such a write is covered by clause 2 only, which is what
//     the window is sized by (Config.ReadYourWrites defaults to MaxLag,
//     "the longest a fit replica can be behind").
//  2. Bounded staleness: a read served by a replica never returns a value
//     that had been superseded on the primary (its successor in commit
//     order committed) more than MaxLag plus a load margin before the
//     read began; a read served by the primary, not more than the margin.
//     The margin covers what the probes cannot see and the docs assume
//     away: commit timestamps are taken just before the commit record
//     enters the WAL, and the PostgreSQL probe reckons a replica's lag
//     from when it received the WAL, not from when the primary committed
//     it; on loopback both gaps are scheduling delays.
//  3. Refusals are typed: a read that fails either carries the router's
//     refusal (errors.Is ErrNoReplica, ErrNoPrimary or ErrClosed), or
//     the server's (an error with a SQLSTATE), or a broken link (a
//     network error, a reset, a timeout); never an untyped error. A
//     clone with StrictReads never serves an untracked read on the
//     primary (it refuses instead); a clone without it refuses a read
//     only when it knows no primary (the refusal wraps ErrNoPrimary).

// ReplicaKind is the kind of a replica workload operation.
type ReplicaKind int

const (
	ReplicaWrite ReplicaKind = iota
	ReplicaTrackedRead
	ReplicaUntrackedRead
)

func (k ReplicaKind) String() string {
	switch k {
	case ReplicaWrite:
		return "write"
	case ReplicaTrackedRead:
		return "tracked read"
	default:
		return "untracked read"
	}
}

// ReplicaOp is one request of the replica workload.
type ReplicaOp struct {
	Kind    ReplicaKind
	Session int
	Value   int64 // written
	Clone   int
	Strict  bool // the clone's Router has Config.StrictReads
}

// ReplicaOut is what the request saw.
type ReplicaOut struct {
	Err string // "" when it succeeded
	// A read's.
	Value   int64
	Standby bool // served by a node in recovery (pg_is_in_recovery())
	Class   ReplicaErrClass
	// A write's, when it succeeded: whether the router recorded its
	// position in the mark (it grew), and the mark's window end on the
	// history's clock (0: none).
	Known bool
	Until int64
}

// ReplicaErrClass sorts a failed read's error for clause 3.
type ReplicaErrClass int

const (
	ReplicaNoError          ReplicaErrClass = iota
	ReplicaRefused                          // the router's: ErrNoReplica, ErrNoPrimary, ErrClosed
	ReplicaRefusedNoPrimary                 // the router's, wrapping ErrNoPrimary
	ReplicaServerError                      // the database's, with a SQLSTATE
	ReplicaLinkError                        // the network's: reset, refused, timeout, EOF
	ReplicaUntypedError                     // none of those: a violation
)

func (c ReplicaErrClass) String() string {
	return [...]string{"none", "refused", "refused (no primary)", "server error", "link error", "UNTYPED error"}[c]
}

// classifyReplicaErr sorts err: the router's refusals first, then the
// server's errors, then a broken link.
func classifyReplicaErr(err error) ReplicaErrClass {
	var sqlState interface{ SQLState() string }
	var netErr net.Error
	switch {
	case err == nil:
		return ReplicaNoError
	case errors.Is(err, replica.ErrNoPrimary):
		return ReplicaRefusedNoPrimary
	case errors.Is(err, replica.ErrNoReplica), errors.Is(err, replica.ErrClosed):
		return ReplicaRefused
	case errors.As(err, &sqlState):
		return ReplicaServerError
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.As(err, &netErr):
		return ReplicaLinkError
	case replicaPgxLinkError(err):
		return ReplicaLinkError
	}
	return ReplicaUntypedError
}

// replicaPgxLinkError recognizes pgx's own errors for a connection that
// was lost or could not be made, which wrap no Go error type a caller can
// test (pgconn's "conn closed", "failed to connect", and the
// "timeout: context already done" of a connection whose deadline passed).
func replicaPgxLinkError(err error) bool {
	s := err.Error()
	for _, m := range []string{"conn closed", "failed to connect", "timeout:", "connection reset", "broken pipe"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// ReplicaDB is what the workload writes and reads through: *replica.DB,
// or a wrapper that breaks it (a mutant).
type ReplicaDB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ReplicaClone is one clone of the service: its router's DB.
type ReplicaClone struct {
	DB     ReplicaDB
	Strict bool // its Router has Config.StrictReads
}

// ReplicaWorkload drives writer sessions over clones.
type ReplicaWorkload struct {
	clones   []ReplicaClone
	sessions int
	seed     uint64
	table    string // the counters; table+"_log" has every write's (session, value)
	// OpTimeout bounds each request; default 2s.
	OpTimeout time.Duration

	H *History
}

// NewReplicaWorkload returns a workload of sessions writer sessions over
// clones, on table (see ReplicaSchema).
func NewReplicaWorkload(clones []ReplicaClone, sessions int, table string, seed uint64) *ReplicaWorkload {
	return &ReplicaWorkload{clones: clones, sessions: sessions, seed: seed, table: table, H: NewHistory()}
}

// ReplicaSchema returns the statements creating table (one counter row
// per session, starting at 0) and its log, where every write inserts its
// value in the same transaction, so that the log's commit timestamps say
// when each value was committed.
func ReplicaSchema(table string, sessions int) string {
	return fmt.Sprintf(`CREATE TABLE %[1]q (session int PRIMARY KEY, v bigint NOT NULL);
CREATE TABLE %[2]q (session int NOT NULL, v bigint NOT NULL, PRIMARY KEY (session, v));
INSERT INTO %[1]q SELECT s, 0 FROM generate_series(0, %[3]d) AS s`, table, table+"_log", sessions-1)
}

// Drive runs the sessions until ctx ends; requests under way then finish
// (each within OpTimeout).
func (w *ReplicaWorkload) Drive(ctx context.Context) {
	var wg sync.WaitGroup
	for s := range w.sessions {
		wg.Go(func() { w.session(ctx, s) })
	}
	wg.Wait()
}

func (w *ReplicaWorkload) session(ctx context.Context, s int) {
	timeout := w.OpTimeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	rng := rand.New(rand.NewPCG(w.seed, uint64(s)+1))
	write := fmt.Sprintf(`WITH logged AS (INSERT INTO %q (session, v) VALUES ($1, $2)) UPDATE %q SET v = $2 WHERE session = $1`,
		w.table+"_log", w.table)
	read := fmt.Sprintf(`SELECT v, pg_is_in_recovery() FROM %q WHERE session = $1`, w.table)
	var mark replica.Mark // the session's cookie: what its next request must see
	next := int64(1)
	for ctx.Err() == nil {
		c := rng.IntN(len(w.clones))
		clone := w.clones[c]
		in := ReplicaOp{Session: s, Clone: c, Strict: clone.Strict}
		// A request outlives the run's end by at most timeout, so that
		// the run's end is not a fault of its own.
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		switch r := rng.IntN(10); {
		case r < 4:
			in.Kind, in.Value = ReplicaWrite, next
			next++
			tctx := replica.TrackFrom(octx, mark)
			call := w.H.Now()
			_, err := clone.DB.ExecContext(tctx, write, s, in.Value)
			ret := w.H.Now()
			if err != nil {
				w.H.Add(s, in, ReplicaOut{Err: err.Error()}, call, Unknown)
				break
			}
			after, _ := replica.MarkOf(tctx)
			out := ReplicaOut{Known: after.Position > mark.Position}
			if !after.Until.IsZero() {
				out.Until = w.H.At(after.Until)
			}
			mark = after
			w.H.Add(s, in, out, call, ret)
		default:
			in.Kind = ReplicaUntrackedRead
			rctx := octx
			if r < 7 {
				in.Kind, rctx = ReplicaTrackedRead, replica.TrackFrom(octx, mark)
			}
			var out ReplicaOut
			call := w.H.Now()
			err := clone.DB.QueryRowContext(rctx, read, s).Scan(&out.Value, &out.Standby)
			ret := w.H.Now()
			if err != nil {
				out = ReplicaOut{Err: err.Error(), Class: classifyReplicaErr(err)}
			}
			w.H.Add(s, in, out, call, ret)
		}
		cancel()
	}
}

// ReplicaCommit is when a value was committed on the primary.
type ReplicaCommit struct {
	Session int
	Value   int64
	At      int64 // on the history's clock
}

// Commits reads, from the primary, when each value of the run was
// committed: the commit timestamp of the transaction that logged it
// (track_commit_timestamp must be on).
func (w *ReplicaWorkload) Commits(ctx context.Context, primary *sql.DB) ([]ReplicaCommit, error) {
	rows, err := primary.QueryContext(ctx, fmt.Sprintf(`SELECT session, v, pg_xact_commit_timestamp(xmin) FROM %q`, w.table+"_log"))
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []ReplicaCommit
	for rows.Next() {
		var c ReplicaCommit
		var at time.Time
		if err := rows.Scan(&c.Session, &c.Value, &at); err != nil {
			return nil, err
		}
		c.At = w.H.At(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// ReplicaBounds are the staleness bounds of clause 2.
type ReplicaBounds struct {
	Replica time.Duration // MaxLag plus the load margin
	MaxLag  time.Duration // the configured bound itself, for the report (0: none)
	Primary time.Duration // the load margin
}

// ReplicaReport is what CheckReplica found.
type ReplicaReport struct {
	Violations   []string
	Reads        int
	StandbyReads int
	Refused      int
	Failed       map[ReplicaErrClass]int // failed reads, by class
	WorstReplica time.Duration           // the stalest read served by a replica
	WorstRead    string                  // that read
	OverMaxLag   int                     // reads served by a replica staler than MaxLag, within the margin
	WorstPrimary time.Duration
}

// CheckReplica checks ops (a ReplicaWorkload's history) against the
// clauses of the replica model, given the commits the recorder saw, and
// returns the violations ("" when none), at most a few of them in full.
func CheckReplica(ops []porcupine.Operation, commits []ReplicaCommit, b ReplicaBounds) string {
	r := checkReplica(ops, commits, b)
	if len(r.Violations) == 0 {
		return ""
	}
	const shown = 5
	v := r.Violations
	more := ""
	if len(v) > shown {
		v, more = v[:shown], fmt.Sprintf("\n... and %d more", len(r.Violations)-shown)
	}
	return fmt.Sprintf("%d violations:\n%s%s", len(r.Violations), strings.Join(v, "\n"), more)
}

func replicaMs(d int64) string { return time.Duration(d).Round(100 * time.Microsecond).String() }

func checkReplica(ops []porcupine.Operation, commits []ReplicaCommit, b ReplicaBounds) ReplicaReport {
	rep := ReplicaReport{Failed: map[ReplicaErrClass]int{}}
	violate := func(format string, args ...any) {
		rep.Violations = append(rep.Violations, fmt.Sprintf(format, args...))
	}

	// Each session's commit order (by commit time; values break ties, as a
	// session issues them in increasing order), and each value's rank in
	// it. The initial 0 ranks before every commit.
	order := map[int][]ReplicaCommit{}
	for _, c := range commits {
		order[c.Session] = append(order[c.Session], c)
	}
	rank := map[[2]int64]int{}
	for s, cs := range order {
		slices.SortFunc(cs, func(a, b ReplicaCommit) int {
			if a.At != b.At {
				return cmp.Compare(a.At, b.At)
			}
			return cmp.Compare(a.Value, b.Value)
		})
		for i, c := range cs {
			rank[[2]int64{int64(s), c.Value}] = i + 1
		}
	}
	rankOf := func(s int, v int64) (int, bool) {
		if v == 0 {
			return 0, true
		}
		r, ok := rank[[2]int64{int64(s), v}]
		return r, ok
	}

	bySession := map[int][]porcupine.Operation{}
	for _, op := range ops {
		s := op.Input.(ReplicaOp).Session
		bySession[s] = append(bySession[s], op)
	}
	for _, s := range slices.Sorted(maps.Keys(bySession)) {
		sops := bySession[s]
		slices.SortFunc(sops, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		// Clause 1's state, as the reads are taken in the order they
		// began: the session's acknowledged writes in the order they
		// returned, how many of them returned before the current read
		// began, the highest-ranked of those whose position was recorded,
		// and those whose window is still open.
		var acked []porcupine.Operation
		for _, op := range sops {
			if op.Input.(ReplicaOp).Kind == ReplicaWrite && op.Output.(ReplicaOut).Err == "" {
				acked = append(acked, op)
			}
		}
		slices.SortFunc(acked, func(a, b porcupine.Operation) int { return cmp.Compare(a.Return, b.Return) })
		next, known, knownOp, windows := 0, 0, porcupine.Operation{}, []porcupine.Operation(nil)
		for _, op := range sops {
			in, out := op.Input.(ReplicaOp), op.Output.(ReplicaOut)
			if in.Kind == ReplicaWrite {
				// Clause 0: an acknowledged write was committed.
				if _, ok := rankOf(s, in.Value); out.Err == "" && !ok {
					violate("clause 0 (acknowledged writes are committed): session %d's write of %d returned OK at %s but the primary's log has no such value",
						s, in.Value, replicaMs(op.Return))
				}
				continue
			}
			rep.Reads++
			if out.Err != "" {
				// Clause 3: refusals are typed, and only where allowed.
				rep.Failed[out.Class]++
				switch out.Class {
				case ReplicaRefused, ReplicaRefusedNoPrimary:
					rep.Refused++
				}
				switch {
				case out.Class == ReplicaUntypedError:
					violate("clause 3 (refusals are typed): session %d's %s on clone %d at %s failed with an untyped error: %s",
						s, in.Kind, in.Clone, replicaMs(op.Call), out.Err)
				case out.Class == ReplicaRefused && !in.Strict:
					violate("clause 3 (a clone without StrictReads refuses only without a primary): session %d's %s on clone %d at %s was refused with %s",
						s, in.Kind, in.Clone, replicaMs(op.Call), out.Err)
				}
				continue
			}
			if out.Standby {
				rep.StandbyReads++
			}
			// Clause 3: a strict clone does not serve untracked reads on
			// the primary.
			if in.Strict && in.Kind == ReplicaUntrackedRead && !out.Standby {
				violate("clause 3 (StrictReads refuses rather than read the primary): session %d's untracked read on clone %d at %s was served by the primary",
					s, in.Clone, replicaMs(op.Call))
			}
			// Clause 0: the value was committed.
			got, ok := rankOf(s, out.Value)
			if !ok {
				violate("clause 0 (reads return committed data): session %d's %s at %s returned %d, which no write committed",
					s, in.Kind, replicaMs(op.Call), out.Value)
				continue
			}
			// Clause 2: how long before the read began the value it
			// returned had been superseded.
			if got < len(order[s]) {
				succ := order[s][got] // the commit after the returned value's
				stale := op.Call - succ.At
				bound, where, worst := b.Primary, "the primary", &rep.WorstPrimary
				if out.Standby {
					bound, where, worst = b.Replica, "a replica", &rep.WorstReplica
				}
				if out.Standby && time.Duration(stale) > rep.WorstReplica {
					rep.WorstRead = fmt.Sprintf("session %d's %s on clone %d, begun at %s, returned %d, superseded by %d committed at %s",
						s, in.Kind, in.Clone, replicaMs(op.Call), out.Value, succ.Value, replicaMs(succ.At))
				}
				if out.Standby && b.MaxLag > 0 && stale > int64(b.MaxLag) && stale <= int64(bound) {
					rep.OverMaxLag++
				}
				*worst = max(*worst, time.Duration(stale))
				if stale > int64(bound) {
					violate("clause 2 (bounded staleness): session %d's %s on clone %d, begun at %s and served by %s, returned %d, superseded by %d committed at %s: %s stale, over the bound %v",
						s, in.Kind, in.Clone, replicaMs(op.Call), where, out.Value, succ.Value, replicaMs(succ.At), replicaMs(stale), bound)
				}
			}
			// Clause 1: a tracked read sees the session's own completed
			// writes that the mark covers.
			if in.Kind != ReplicaTrackedRead {
				continue
			}
			for ; next < len(acked) && acked[next].Return < op.Call; next++ {
				w := acked[next]
				r, _ := rankOf(s, w.Input.(ReplicaOp).Value) // clause 0 reported a write without a rank
				if w.Output.(ReplicaOut).Known {
					if r > known {
						known, knownOp = r, w
					}
				} else {
					windows = append(windows, w)
				}
			}
			// Reads come in the order they began: a window that ended
			// before this one began has ended for every later one.
			windows = slices.DeleteFunc(windows, func(w porcupine.Operation) bool { return w.Output.(ReplicaOut).Until <= op.Call })
			need, needOp := known, knownOp
			for _, w := range windows {
				if r, _ := rankOf(s, w.Input.(ReplicaOp).Value); r > need {
					need, needOp = r, w
				}
			}
			if got < need {
				w := needOp.Input.(ReplicaOp)
				how := "at its recorded position"
				if !needOp.Output.(ReplicaOut).Known {
					how = "inside its window"
				}
				violate("clause 1 (read-your-writes): session %d's tracked read on clone %d, begun at %s and served by %s, returned %d, older than the session's write of %d (%s), completed at %s",
					s, in.Clone, replicaMs(op.Call), map[bool]string{true: "a replica", false: "the primary"}[out.Standby], out.Value, w.Value, how, replicaMs(needOp.Return))
			}
		}
	}
	return rep
}
