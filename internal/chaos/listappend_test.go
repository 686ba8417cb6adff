package chaos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// randomFamily returns a history of one family of up to n operations
// whose times are distinct, with outcomes and reads drawn at random:
// most are not linearizable, some are.
func randomFamily(rng *rand.Rand, n int) []porcupine.Operation {
	k := 1 + rng.IntN(n)
	times := rng.Perm(2 * k)
	var values []string
	var ops []porcupine.Operation
	for i := range k {
		call, ret := int64(min(times[2*i], times[2*i+1])), int64(max(times[2*i], times[2*i+1]))
		in := SessionOp{Family: 1, MayDrop: rng.IntN(4) == 0}
		out := SessionOut{OK: rng.IntN(5) != 0, Attached: rng.IntN(4) != 0}
		switch r := rng.IntN(10); {
		case r < 5:
			in.Kind, in.Value = "append", fmt.Sprint("v", i)
			values = append(values, in.Value)
		case r < 8:
			in.Kind, out.OK = "read", true
		case r < 9:
			in.Kind = "logout"
		default:
			in.Kind = "crash"
		}
		op := porcupine.Operation{ClientId: i, Input: in, Output: out, Call: call, Return: ret}
		if in.Kind == "crash" {
			op.Output = nil
		}
		if !out.OK && in.Kind != "crash" {
			op.Return = Unknown
		}
		ops = append(ops, op)
	}
	for i, op := range ops {
		if op.Input.(SessionOp).Kind != "read" {
			continue
		}
		out := op.Output.(SessionOut)
		perm := rng.Perm(len(values))
		for _, j := range perm[:rng.IntN(len(values)+1)] {
			out.Values = append(out.Values, values[j])
		}
		ops[i].Output = out
	}
	return ops
}

// TestCheckSessionsAgreesWithTheModel checks the list-append checker
// against porcupine's search over SessionModel, on histories small
// enough for the search.
func TestCheckSessionsAgreesWithTheModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ok, bad int
	for i := range 20000 {
		ops := randomFamily(rng, 5+i%4)
		want := porcupine.CheckOperations(SessionModel.ToModel(), ops)
		got := CheckSessions(ops)
		if want != (got == "") {
			var b strings.Builder
			for _, op := range ops {
				fmt.Fprintf(&b, "  %d [%d, %d] %s\n", op.ClientId, op.Call, op.Return, SessionModel.DescribeOperation(op.Input, op.Output))
			}
			t.Fatalf("porcupine says linearizable=%v, CheckSessions says %q, on\n%s", want, got, b.String())
		}
		if want {
			ok++
		} else {
			bad++
		}
	}
	t.Logf("%d linearizable and %d not, all agreed", ok, bad)
	if ok < 1000 || bad < 1000 {
		t.Fatalf("the generator is lopsided: %d linearizable, %d not", ok, bad)
	}
}

// TestCheckSessionsIsFast: a family of hundreds of concurrent operations,
// many of unknown outcome, is checked in well under a second (porcupine
// gave up after a minute on such families).
func TestCheckSessionsIsFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var ops []porcupine.Operation
	var list []string
	now := int64(0)
	for i := range 400 {
		now += 10
		in := SessionOp{Kind: "append", Family: 1, Value: fmt.Sprint("v", i)}
		out := SessionOut{OK: rng.IntN(3) != 0, Attached: true}
		ret := now + 5
		if !out.OK {
			ret = Unknown
		} else {
			list = append(list, in.Value)
		}
		ops = append(ops, porcupine.Operation{ClientId: i % 4, Input: in, Output: out, Call: now, Return: ret})
		if i%5 == 0 {
			ops = append(ops, porcupine.Operation{ClientId: 9, Input: SessionOp{Kind: "read", Family: 1},
				Output: SessionOut{OK: true, Attached: true, Values: append([]string(nil), list...)}, Call: now + 6, Return: now + 7})
		}
	}
	start := time.Now()
	if v := CheckSessions(ops); v != "" {
		t.Fatal(v)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("%d operations took %v to check", len(ops), took)
	}
}

// A vanished family's report lists what the family did, so that a
// violation found in a long run can be understood from the report alone.
func TestVanishedReportsTheFamily(t *testing.T) {
	ops := []porcupine.Operation{
		{ClientId: 1, Input: SessionOp{Kind: "append", Family: 7, ID: "a", Value: "v1"}, Output: SessionOut{OK: true, Attached: true}, Call: 1e9, Return: 2e9},
		{ClientId: 2, Input: SessionOp{Kind: "rotate", Family: 7, ID: "a"}, Output: SessionOut{OK: true, Attached: true, NewID: "b"}, Call: 3e9, Return: 4e9},
		{ClientId: 3, Input: SessionOp{Kind: "read", Family: 7, ID: "b"}, Output: SessionOut{OK: true}, Call: 5e9, Return: 6e9},
	}
	got := CheckSessions(ops)
	for _, want := range []string{"the family vanished while alive", "the family's history:", "append v1", "rotate", "read"} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "append v1") > strings.Index(got, "rotate") {
		t.Errorf("the history is not in the order of the calls:\n%s", got)
	}
}
