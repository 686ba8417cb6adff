package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Synthetic elector histories: times in milliseconds, converted to the
// history's nanoseconds.

const ms = int64(1e6)

func eTerm(clone, id int, tok uint64, call, ret, deadline, done int64) porcupine.Operation {
	d := done
	if d != Unknown {
		d *= ms
	}
	return porcupine.Operation{ClientId: clone, Input: ElectorTermOp{Clone: clone, Term: id, Token: tok},
		Output: ElectorTermOut{Deadline: deadline * ms, DoneAt: d}, Call: call * ms, Return: ret * ms}
}

func eWrite(term int, tok uint64, fence string, id int64, live, call, ret int64, result string, seq int64) porcupine.Operation {
	r := ret
	if r != Unknown {
		r *= ms
	}
	return porcupine.Operation{ClientId: term, Input: ElectorWriteOp{Term: term, Token: tok, Fence: fence, ID: id, LiveAt: live * ms},
		Output: ElectorWriteOut{Result: result, Seq: seq}, Call: call * ms, Return: r}
}

func eFinal(fence string, tok uint64, last int64) porcupine.Operation {
	return porcupine.Operation{ClientId: -1, Input: ElectorFenceState{Fence: fence, Token: tok, Last: last}}
}

// electorValid is a history that keeps every promise: term 1 (token 1)
// writes and runs out at 350ms; term 2 (token 2) is granted at 500ms and
// writes; term 1's leader, paused, writes at 700ms and both fences refuse
// it; term 3 (token 3) has a Redis write of unknown outcome, which the
// Redis fence holds at the end, and a PostgreSQL write of unknown outcome
// that the record shows committed.
func electorValid() []porcupine.Operation {
	return []porcupine.Operation{
		eTerm(0, 1, 1, 0, 10, 350, 351),
		eWrite(1, 1, "pg", 1, 20, 21, 30, "accepted", 1),
		eWrite(1, 1, "redis", 2, 31, 32, 40, "accepted", 0),
		eWrite(1, 1, "pg", 3, 41, 42, 50, "accepted", 2),
		eTerm(1, 2, 2, 100, 500, 850, 852),
		eWrite(2, 2, "pg", 4, 510, 511, 520, "accepted", 3),
		eWrite(2, 2, "redis", 5, 521, 522, 530, "accepted", 0),
		eWrite(1, 1, "pg", 6, 60, 700, 710, "refused", 0),
		eWrite(1, 1, "redis", 7, 60, 700, 710, "refused", 0),
		eWrite(2, 2, "redis", 8, 600, 601, Unknown, "unknown", 0),
		eTerm(2, 3, 3, 600, 900, 1300, 1301),
		eWrite(3, 3, "redis", 9, 910, 911, Unknown, "unknown", 0),
		eWrite(3, 3, "pg", 10, 920, 921, Unknown, "accepted", 4),
		eFinal("pg", 3, 10),
		eFinal("redis", 3, 9),
	}
}

func TestCheckElectorValid(t *testing.T) {
	if v := CheckElector(electorValid()); v != "" {
		t.Fatalf("a valid history was reported: %s", v)
	}
}

// TestCheckElectorViolations breaks each clause of the valid history and
// expects the checker to name it.
func TestCheckElectorViolations(t *testing.T) {
	replace := func(i int, op porcupine.Operation) []porcupine.Operation {
		h := electorValid()
		h[i] = op
		return h
	}
	add := func(ops ...porcupine.Operation) []porcupine.Operation { return append(electorValid(), ops...) }
	cases := []struct {
		name   string
		h      []porcupine.Operation
		clause string
	}{
		{"two terms share a token", replace(10, eTerm(2, 3, 2, 600, 900, 1300, 1301)), "clause 1: two terms share token 2"},
		{"a later term has a smaller token", add(eTerm(0, 4, 0, 1400, 1500, 1800, 1801)), "clause 1: a term granted later has a smaller token"},
		{"commit order goes back to a smaller token", func() []porcupine.Operation {
			h := replace(5, eWrite(2, 2, "pg", 4, 510, 511, 520, "accepted", 2))
			h[3] = eWrite(1, 1, "pg", 3, 41, 42, Unknown, "accepted", 3) // committed after term 2's
			return h
		}(), "clause 2a: fence pg committed a smaller token"},
		{"a paused leader's write is accepted after a newer one's",
			replace(8, eWrite(1, 1, "redis", 7, 60, 700, 710, "accepted", 0)), "clause 2b: fence redis accepted a smaller token"},
		{"the final state lost the largest accepted token", replace(13, eFinal("pg", 2, 4)), "clause 2c: fence pg holds token 2, smaller than the accepted 3"},
		{"the final token was never written", replace(14, eFinal("redis", 4, 9)), "clause 2c: fence redis holds token 4, which no write"},
		{"the final value is not the final token's", replace(14, eFinal("redis", 3, 5)), "clause 2c: fence redis holds token 3 with the value of write 5"},
		{"the fence holds nothing after accepting",
			replace(14, porcupine.Operation{ClientId: -1, Input: ElectorFenceState{Fence: "redis", Empty: true}}), "clause 2c: fence redis holds nothing"},
		{"Done closes long after the deadline", replace(0, eTerm(0, 1, 1, 0, 10, 350, 1351+1)), "clause 3: Done of term 1"},
		{"Done never closes", replace(0, eTerm(0, 1, 1, 0, 10, 350, Unknown)), "clause 3: Done of term 1"},
		{"live at its deadline", add(eWrite(1, 1, "pg", 11, 350, 351, 360, "refused", 0)), "reported itself live at 0.350000s, at or after its deadline 0.350000s"},
		{"live after a newer term was granted",
			replace(0, eTerm(0, 1, 1, 0, 10, 650, 651)), "reported itself live at 0.600000s, after a newer term was granted"},
	}
	// The last case: term 1 lasts to 650ms; its paused writes checked it
	// live at 60ms only, so give it a check at 600ms, after term 2's grant.
	cases[len(cases)-1].h = append(cases[len(cases)-1].h, eWrite(1, 1, "pg", 12, 600, 601, 605, "refused", 0))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := CheckElector(c.h)
			if !strings.Contains(v, c.clause) {
				t.Fatalf("want a violation containing %q, got %q", c.clause, v)
			}
			t.Log(v)
		})
	}
}

// TestElectorFenceContiguity: with equal tokens (which clause 1 reports
// first in a whole history), the fence clauses still see two holders:
// commit order and real time must not go back to a term that another
// term's accepted write followed.
func TestElectorFenceContiguity(t *testing.T) {
	ordered := []porcupine.Operation{
		eWrite(1, 5, "pg", 1, 0, 1, 2, "accepted", 1),
		eWrite(2, 5, "pg", 2, 3, 4, 5, "accepted", 2),
		eWrite(1, 5, "pg", 3, 0, 6, 7, "accepted", 3),
	}
	if v := electorCheckFence("pg", ordered); !strings.Contains(v, "clause 2a: fence pg accepted term 1 again") {
		t.Fatalf("commit order: got %q", v)
	}
	realTime := []porcupine.Operation{
		eWrite(1, 5, "redis", 1, 0, 1, 2, "accepted", 0),
		eWrite(2, 5, "redis", 2, 3, 4, 5, "accepted", 0),
		eWrite(1, 5, "redis", 3, 0, 6, 7, "accepted", 0),
	}
	if v := electorCheckFence("redis", realTime); !strings.Contains(v, "clause 2b: fence redis accepted term 1's writes before and after") {
		t.Fatalf("real time: got %q", v)
	}
	// Overlapping writes of two terms prove no order: no violation.
	overlapping := []porcupine.Operation{
		eWrite(1, 5, "redis", 1, 0, 1, 5, "accepted", 0),
		eWrite(2, 5, "redis", 2, 0, 2, 6, "accepted", 0),
		eWrite(1, 5, "redis", 3, 0, 4, 7, "accepted", 0),
	}
	if v := electorCheckFence("redis", overlapping); v != "" {
		t.Fatalf("overlapping writes were reported: %s", v)
	}
}

// TestCheckElectorStall: a Done seen closed late by as much as the
// process's timers ran late meanwhile keeps clause 3; later than that, it
// breaks it.
func TestCheckElectorStall(t *testing.T) {
	late := func(stall int64) []porcupine.Operation {
		h := electorValid()
		op := eTerm(0, 1, 1, 0, 10, 350, 350+1000+1800)
		out := op.Output.(ElectorTermOut)
		out.Stall = time.Duration(stall * ms)
		op.Output = out
		h[0] = op
		return h
	}
	if v := CheckElector(late(1800)); v != "" {
		t.Fatalf("Done late by the slack and a 1.8 s stall of the process was reported: %s", v)
	}
	if v := CheckElector(late(500)); !strings.Contains(v, "clause 3: Done of term 1") {
		t.Fatalf("Done 1.3 s later than the slack and a 0.5 s stall allow: want clause 3, got %q", v)
	}
}

// TestStallMeter: Stall is the worst lateness of the meter's timers that
// woke within the window; a meter run for a while measures some.
func TestStallMeter(t *testing.T) {
	m := NewStallMeter(NewHistory())
	m.samples = []stallSample{{at: 100, late: 1}, {at: 200, late: 50}, {at: 300, late: 7}, {at: 400, late: 90}}
	for _, c := range []struct {
		from, to int64
		want     time.Duration
	}{{0, 99, 0}, {100, 300, 50}, {201, 300, 7}, {250, 1000, 90}, {401, 500, 0}} {
		if got := m.Stall(c.from, c.to); got != c.want {
			t.Errorf("Stall(%d, %d) = %v, want %v", c.from, c.to, got, c.want)
		}
	}

	const run = time.Second
	ctx, cancel := context.WithTimeout(t.Context(), run)
	defer cancel()
	m = NewStallMeter(NewHistory())
	m.Run(ctx)
	if n := len(m.samples); n == 0 || n > int(run/stallTick) {
		t.Fatalf("a meter run for %v took %d samples, one per %v at most", run, n, stallTick)
	}
}
