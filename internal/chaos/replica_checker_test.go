package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/scaleout/scaleout/replica"
)

// Times in these histories are in milliseconds on the history's clock.
const replicaTestMs = int64(time.Millisecond)

var replicaTestBounds = ReplicaBounds{Replica: 1000 * time.Millisecond, Primary: 50 * time.Millisecond}

type replicaHistory struct {
	ops     []porcupine.Operation
	commits []ReplicaCommit
}

// write adds a write of v by session 0 called at call and returned at ret
// (Unknown: it failed), committed at commit (0: never).
func (h *replicaHistory) write(v int64, call, ret, commit int64, out ReplicaOut) *replicaHistory {
	r := ret * replicaTestMs
	if ret == Unknown {
		r, out.Err = Unknown, "lost reply"
	}
	h.ops = append(h.ops, porcupine.Operation{Input: ReplicaOp{Kind: ReplicaWrite, Value: v}, Output: out, Call: call * replicaTestMs, Return: r})
	if commit > 0 {
		h.commits = append(h.commits, ReplicaCommit{Value: v, At: commit * replicaTestMs})
	}
	return h
}

func (h *replicaHistory) read(in ReplicaOp, call int64, out ReplicaOut) *replicaHistory {
	h.ops = append(h.ops, porcupine.Operation{Input: in, Output: out, Call: call * replicaTestMs, Return: (call + 1) * replicaTestMs})
	return h
}

var (
	replicaTracked   = ReplicaOp{Kind: ReplicaTrackedRead}
	replicaUntracked = ReplicaOp{Kind: ReplicaUntrackedRead}
	replicaKnown     = ReplicaOut{Known: true}
)

func replicaOnReplica(v int64) ReplicaOut { return ReplicaOut{Value: v, Standby: true} }
func replicaOnPrimary(v int64) ReplicaOut { return ReplicaOut{Value: v} }

func TestCheckReplica(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h      *replicaHistory
		clause string // "" when the history is valid
	}{
		{"reads within the bounds", new(replicaHistory).
			write(1, 0, 10, 5, replicaKnown).write(2, 20, 30, 25, replicaKnown).
			read(replicaUntracked, 1000, replicaOnReplica(0)). // superseded at 5: 995 ms stale
			read(replicaTracked, 1010, replicaOnReplica(2)).
			read(replicaUntracked, 1020, replicaOnPrimary(2)), ""},
		{"staleness exactly at the bound", new(replicaHistory).
			write(1, 0, 10, 5, replicaKnown).read(replicaUntracked, 1005, replicaOnReplica(0)), ""},
		{"a failed write may commit, later than the next", new(replicaHistory).
			write(1, 0, Unknown, 40, ReplicaOut{}).write(2, 20, 30, 25, replicaKnown).
			read(replicaTracked, 50, replicaOnPrimary(1)), ""}, // 1 committed after 2: the row holds 1
		{"a failed write that never committed", new(replicaHistory).
			write(1, 0, Unknown, 0, ReplicaOut{}).read(replicaTracked, 50, replicaOnReplica(0)), ""},
		{"a window write, read after its window on a replica within the bound", new(replicaHistory).
			write(1, 0, 10, 5, ReplicaOut{Until: 500 * replicaTestMs}).read(replicaTracked, 600, replicaOnReplica(0)), ""},
		{"refusals typed and allowed", new(replicaHistory).
			read(ReplicaOp{Kind: ReplicaUntrackedRead, Strict: true}, 10, ReplicaOut{Err: "no replica", Class: ReplicaRefused}).
			read(replicaUntracked, 20, ReplicaOut{Err: "no primary", Class: ReplicaRefusedNoPrimary}).
			read(replicaTracked, 30, ReplicaOut{Err: "reset", Class: ReplicaLinkError}).
			read(replicaTracked, 40, ReplicaOut{Err: "40001", Class: ReplicaServerError}).
			read(ReplicaOp{Kind: ReplicaTrackedRead, Strict: true}, 50, replicaOnPrimary(0)), ""},

		{"an acknowledged write missing", new(replicaHistory).
			write(1, 0, 10, 0, replicaKnown), "clause 0"},
		{"a value never committed", new(replicaHistory).
			write(1, 0, Unknown, 0, ReplicaOut{}).read(replicaUntracked, 20, replicaOnReplica(1)), "clause 0"},
		{"a tracked read misses its write", new(replicaHistory).
			write(1, 0, 10, 5, replicaKnown).write(2, 20, 30, 25, replicaKnown).read(replicaTracked, 40, replicaOnReplica(1)), "clause 1"},
		{"a tracked read on the primary misses its write", new(replicaHistory).
			write(1, 0, 10, 5, replicaKnown).read(replicaTracked, 40, replicaOnPrimary(0)), "clause 1"},
		{"a tracked read misses a window write inside the window", new(replicaHistory).
			write(1, 0, 10, 5, ReplicaOut{Until: 500 * replicaTestMs}).read(replicaTracked, 400, replicaOnReplica(0)), "clause 1"},
		{"a replica read over the bound", new(replicaHistory).
			write(1, 0, 10, 5, replicaKnown).read(replicaUntracked, 1006, replicaOnReplica(0)), "clause 2"},
		{"a tracked replica read over the bound", new(replicaHistory).
			write(1, 0, 10, 5, replicaKnown).write(2, 1500, Unknown, 1501, ReplicaOut{}).read(replicaTracked, 2600, replicaOnReplica(1)), "clause 2"},
		{"a primary read over the margin", new(replicaHistory).
			write(1, 0, 10, 5, replicaKnown).read(replicaUntracked, 100, replicaOnPrimary(0)), "clause 2"},
		{"an untyped error", new(replicaHistory).
			read(replicaUntracked, 10, ReplicaOut{Err: "boom", Class: ReplicaUntypedError}), "clause 3"},
		{"a refusal without StrictReads while a primary is known", new(replicaHistory).
			read(replicaUntracked, 10, ReplicaOut{Err: "no replica", Class: ReplicaRefused}), "clause 3"},
		{"StrictReads serving an untracked read on the primary", new(replicaHistory).
			read(ReplicaOp{Kind: ReplicaUntrackedRead, Strict: true}, 10, replicaOnPrimary(0)), "clause 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckReplica(tc.h.ops, tc.h.commits, replicaTestBounds)
			switch {
			case tc.clause == "" && got != "":
				t.Errorf("a valid history reported: %s", got)
			case tc.clause != "" && !strings.Contains(got, tc.clause):
				t.Errorf("want %s reported, got %q", tc.clause, got)
			case tc.clause != "" && strings.Count(got, "clause ") != 1:
				t.Errorf("want only %s reported, got %q", tc.clause, got)
			}
		})
	}
}

func TestClassifyReplicaErr(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want ReplicaErrClass
	}{
		{nil, ReplicaNoError},
		{fmt.Errorf("%w: no fit replica and %w", replica.ErrNoReplica, replica.ErrNoPrimary), ReplicaRefusedNoPrimary},
		{replica.ErrNoReplica, ReplicaRefused},
		{replica.ErrClosed, ReplicaRefused},
		{&pgconn.PgError{Code: "57P01"}, ReplicaServerError},
		{fmt.Errorf("read: %w", context.DeadlineExceeded), ReplicaLinkError},
		{&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, ReplicaLinkError},
		{errors.New("conn closed"), ReplicaLinkError},
		{errors.New("boom"), ReplicaUntypedError},
	} {
		if got := classifyReplicaErr(tc.err); got != tc.want {
			t.Errorf("classifyReplicaErr(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
