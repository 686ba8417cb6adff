package chaos

// The elector model: candidates campaign for one role, and each leader,
// while its Term says it leads, writes through fences with its token. The
// promise (failover's package doc and the Elector interface):
//
//   - every change of leader gets a larger fencing token;
//   - at most one Term lasts at a time: a Term ends (Err non-nil) by its
//     Deadline, before the next one starts;
//   - a fence refuses a token older than the newest it has seen, so at every
//     instant at most one holder's writes are accepted, even those of a
//     leader that was paused between checking its Term and writing.
//
// CheckElector states these precisely as clauses over the history.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/scaleout/scaleout/failover"
)

// ElectorTermOp is the input of a "term" operation: one Term a candidate
// was granted. Its Call is a time before the candidate began the
// campaign that won it, its Return a time after the Term was in its hands.
type ElectorTermOp struct {
	Clone int
	Term  int // unique per Term of the run
	Token uint64
}

// ElectorTermOut is what became of a Term: the Deadline it ended with
// (history clock) and when its Done was seen closed (Unknown: never).
type ElectorTermOut struct {
	Deadline int64
	DoneAt   int64
	Cause    string
	// Stall is how late the process ran timers between Deadline and
	// DoneAt (a StallMeter's measure, set by Settle): a Done closed late
	// by that much was late because the machine ran none of the process.
	Stall time.Duration
}

// ElectorWriteOp is the input of a "write" operation: a fenced write of a
// leader. LiveAt is a time just before the Term's Err reported it live for
// this write: the Term lasted at some instant at or after LiveAt.
type ElectorWriteOp struct {
	Clone  int
	Term   int
	Token  uint64
	Fence  string // which fence: "pg", "redis"
	ID     int64  // unique per write of the run
	LiveAt int64
	Paused bool // the leader was paused between its check and the write
}

// ElectorWriteOut is the fence's answer: "accepted", "refused" or
// "unknown" (the client could not learn it; the fence's own record may
// settle it afterwards, see ElectorFenceState). Seq is the write's place
// in the fence's commit order, when the fence records one (0: none).
type ElectorWriteOut struct {
	Result  string
	Seq     int64
	Settled bool // the client did not know; the fence's record told
}

// ElectorFenceState is the input of a "fence" operation: what a fence
// holds at the end of the run. Token is the token it stores as the
// newest; Last, when known (non-zero), the ID of the write whose value it
// holds.
type ElectorFenceState struct {
	Fence string
	Token uint64
	Last  int64
	Empty bool // the fence never accepted a write
}

// An ElectorFence is a resource a leader writes through with its token.
type ElectorFence interface {
	Name() string
	// Write writes on behalf of write id with token: nil when the fence
	// accepted it, an error wrapping failover.ErrStaleToken when it refused
	// it, any other error when the outcome is unknown.
	Write(ctx context.Context, token uint64, w ElectorWriteOp) error
}

// An ElectorFenceRecord settles, after the run, which writes a fence
// accepted and in which order, and what it holds at the end.
type ElectorFenceRecord interface {
	// Committed returns the IDs of the writes the fence accepted, mapped
	// to their place in its commit order (1, 2, ...), or nil when the
	// fence keeps no record of its writes; and its final state.
	Committed(ctx context.Context) (map[int64]int64, ElectorFenceState, error)
}

// An ElectorClone is one candidate of the role, with the fences it writes
// through (its own clients) and a way to pause it: Pause(true) cuts the
// candidate off from the elector's store, as a stopped process would be,
// while its fences stay reachable for the write it sends when it wakes.
type ElectorClone struct {
	Elector failover.Elector
	Fences  []ElectorFence
	Pause   func(on bool)
	// UseRun: the clone runs failover.Run; else it calls Campaign and
	// Resign itself.
	UseRun bool
	// RunConfig is what failover.Run is given, with UseRun.
	RunConfig failover.RunConfig
}

// ElectorWorkload drives the clones and records the history.
type ElectorWorkload struct {
	Clones []ElectorClone
	// PauseFor is about how long a paused leader sleeps between checking
	// its Term and writing: drawn from [PauseFor/4, PauseFor*5/4), so
	// that some pauses end while the term lasts, some after it ran out but
	// before a new leader wrote, and most after a new leader wrote.
	PauseFor time.Duration
	// PauseEvery: about one write in PauseEvery pauses (0: never).
	PauseEvery int

	seed    uint64
	h       *History
	stalls  *StallMeter
	terms   atomic.Int64
	writes  atomic.Int64
	watches sync.WaitGroup
	mu      sync.Mutex
	lastEnd map[int]int64 // per clone: when its last term's work ended
}

// NewElectorWorkload returns a workload over clones seeded with seed.
func NewElectorWorkload(clones []ElectorClone, seed uint64) *ElectorWorkload {
	h := NewHistory()
	return &ElectorWorkload{Clones: clones, seed: seed, h: h, stalls: NewStallMeter(h), PauseEvery: 40, lastEnd: map[int]int64{}}
}

// History returns the history recorded so far.
func (w *ElectorWorkload) History() *History { return w.h }

// Drive runs every clone until ctx ends, then waits until every Term it
// was granted has ended (its Done closed) and been recorded.
func (w *ElectorWorkload) Drive(ctx context.Context) {
	mctx, stopMeter := context.WithCancel(context.WithoutCancel(ctx))
	var wg, meter sync.WaitGroup
	meter.Go(func() { w.stalls.Run(mctx) })
	defer meter.Wait()
	defer stopMeter()
	for i, c := range w.Clones {
		rng := rand.New(rand.NewPCG(w.seed, uint64(i)+1))
		wg.Go(func() {
			if c.UseRun {
				_ = failover.Run(ctx, c.Elector, c.RunConfig, func(tctx context.Context, t *failover.Term) error {
					// Run called Campaign after the previous term's fn
					// returned: campaignStart is before this campaign began.
					w.serve(tctx, i, c, t, rng)
					return nil
				})
				return
			}
			w.campaignLoop(ctx, i, c, rng)
		})
	}
	wg.Wait()
	w.watches.Wait()
}

// campaignLoop is a clone that uses the Elector API itself: Campaign,
// lead while the Term lasts, Resign now and then.
func (w *ElectorWorkload) campaignLoop(ctx context.Context, i int, c ElectorClone, rng *rand.Rand) {
	for ctx.Err() == nil {
		t, err := c.Elector.Campaign(ctx)
		if err != nil {
			return
		}
		w.serve(ctx, i, c, t, rng)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		_ = c.Elector.Resign(rctx)
		cancel()
	}
}

// serve leads with t until t ends, ctx ends or the clone decides to hand
// over, writing through its fences; it records the term and its writes.
func (w *ElectorWorkload) serve(ctx context.Context, clone int, c ElectorClone, t *failover.Term, rng *rand.Rand) {
	granted := w.h.Now()
	id := int(w.terms.Add(1))
	campaignStart := w.campaignStart(clone)
	defer w.setCampaignStart(clone)
	// Watch Done to record when it closed, with the Deadline it ended at.
	w.watches.Go(func() {
		<-t.Done()
		doneAt := w.h.Now()
		cause := ""
		if err := t.Err(); err != nil {
			cause = err.Error()
		}
		w.h.Add(clone, ElectorTermOp{Clone: clone, Term: id, Token: t.Token},
			ElectorTermOut{Deadline: w.h.At(t.Deadline()), DoneAt: doneAt, Cause: cause}, campaignStart, granted)
	})
	handover := 20 + rng.IntN(80) // writes before a voluntary hand-over
	for n := 0; n < handover; n++ {
		liveAt := w.h.Now()
		if ctx.Err() != nil || t.Err() != nil {
			return
		}
		op := ElectorWriteOp{Clone: clone, Term: id, Token: t.Token, ID: w.writes.Add(1), LiveAt: liveAt}
		f := c.Fences[rng.IntN(len(c.Fences))]
		op.Fence = f.Name()
		wctx := ctx
		if w.PauseEvery > 0 && c.Pause != nil && rng.IntN(w.PauseEvery) == 0 {
			// A process pause between the check and the write (a GC, a
			// SIGSTOP): the elector stops renewing, the term runs out, and
			// the write goes out when the process wakes, before it notices.
			op.Paused = true
			c.Pause(true)
			time.Sleep(w.PauseFor/4 + time.Duration(rng.Int64N(int64(w.PauseFor))))
			c.Pause(false)
			wctx = context.WithoutCancel(ctx)
		}
		wctx, cancel := context.WithTimeout(wctx, time.Second)
		call := w.h.Now()
		err := f.Write(wctx, t.Token, op)
		ret := w.h.Now()
		cancel()
		out := ElectorWriteOut{Result: "accepted"}
		switch {
		case err == nil:
		case errors.Is(err, failover.ErrStaleToken):
			out.Result = "refused"
		default:
			out.Result, ret = "unknown", Unknown
		}
		w.h.Add(clone, op, out, call, ret)
		time.Sleep(time.Duration(2+rng.IntN(6)) * time.Millisecond)
	}
}

// campaignStart is a time before clone's current campaign began: when
// its previous term's work ended (0 for its first).
func (w *ElectorWorkload) campaignStart(clone int) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastEnd[clone]
}

func (w *ElectorWorkload) setCampaignStart(clone int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastEnd[clone] = w.h.Now()
}

// Settle applies the fences' records to the history: an unknown write the
// fence committed is accepted (at an unknown time), one it did not is
// refused, and accepted writes get their place in the commit order; the
// final states are added as "fence" operations. It returns the operations
// to check.
func (w *ElectorWorkload) Settle(ctx context.Context, records map[string]ElectorFenceRecord) ([]porcupine.Operation, error) {
	ops := w.h.Ops()
	for i, op := range ops {
		if out, ok := op.Output.(ElectorTermOut); ok && out.DoneAt != Unknown {
			// The meter's timer that shows a stall may wake just after
			// the watcher that saw Done.
			out.Stall = w.stalls.Stall(out.Deadline, out.DoneAt+int64(10*stallTick))
			ops[i].Output = out
		}
	}
	for name, r := range records {
		committed, final, err := r.Committed(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading fence %s: %w", name, err)
		}
		final.Fence = name
		for i, op := range ops {
			in, ok := op.Input.(ElectorWriteOp)
			if !ok || in.Fence != name {
				continue
			}
			out := op.Output.(ElectorWriteOut)
			seq, inRecord := committed[in.ID]
			if committed == nil { // the fence keeps no record of writes
				continue
			}
			switch {
			case inRecord:
				if out.Result == "unknown" {
					out.Result, out.Settled = "accepted", true
				}
				out.Seq = seq
			case out.Result == "unknown":
				// Never committed: nothing to check.
				out.Result, out.Settled = "refused", true
			}
			ops[i].Output = out
		}
		ops = append(ops, porcupine.Operation{ClientId: -1, Input: final, Output: committed != nil, Call: w.h.Now(), Return: w.h.Now()})
	}
	return ops, nil
}

// electorTerm is a term and its writes, for the checker.
type electorTerm struct {
	op      porcupine.Operation
	in      ElectorTermOp
	out     ElectorTermOut
	maxLive int64 // latest LiveAt of its writes, -1 if none
}

// ElectorDoneSlack is how late, past its Deadline, a Term's Done may be
// seen closed. The docs promise that Err reports the end exactly at the
// deadline, and that Done closes "as soon as the machine runs the
// timer": no number. A timer on a loaded machine runs within milliseconds;
// the second left here is a margin for a loaded machine under the race
// detector, small enough to catch a Done that waits for a renewal to fail
// or never closes. On a machine so loaded that it runs none of the
// process for longer, the checker adds how late the process ran timers
// meanwhile (ElectorTermOut.Stall): a 30-minute run at load average 28 on
// 2 cores saw a Done 1.87 s late, ended by the renewal that found another
// leader before the timer ran.
const ElectorDoneSlack = time.Second

// CheckElector checks an elector history (terms, writes, final fence
// states) against the promises, clause by clause, and returns "" or, for
// each clause violated, its first violation found, described with the
// operations involved (one clause a line).
//
// (1) Tokens: two distinct Terms never share a token, and a Term whose
// grant surely completed before another's campaign began (its Return
// before the other's Call) has the smaller token.
//
// (2) One holder at a time, as the fences saw it. For each fence:
//
//	(a) in the fence's commit order (Seq), the accepted writes have
//	    non-decreasing tokens, and a Term's accepted writes are
//	    contiguous: once another Term's write is accepted, no write of
//	    the earlier Term is accepted again;
//	(b) in real time: an accepted write that began after an accepted
//	    write completed has a token at least as large, and if a write of
//	    Term Y was accepted between two accepted writes of Term X (each
//	    completing before the next began), X = Y;
//	(c) the final state holds the largest token of every accepted write,
//	    and a token some write could have stored (accepted or unknown).
//
// (3) Self-fencing: a Term ends by its Deadline. No write checked a Term
// live (Err nil) at or after the Term's final Deadline, nor after a Term
// with a larger token was surely granted (the other's Return); and Done
// was seen closed no later than the Deadline plus ElectorDoneSlack, plus
// how late the process ran timers meanwhile (Stall).
func CheckElector(ops []porcupine.Operation) string {
	terms := map[int]*electorTerm{}
	var writes []porcupine.Operation
	var finals []porcupine.Operation
	for _, op := range ops {
		switch in := op.Input.(type) {
		case ElectorTermOp:
			terms[in.Term] = &electorTerm{op: op, in: in, out: op.Output.(ElectorTermOut), maxLive: -1}
		case ElectorWriteOp:
			writes = append(writes, op)
		case ElectorFenceState:
			finals = append(finals, op)
		}
	}
	for _, op := range writes {
		in := op.Input.(ElectorWriteOp)
		t, ok := terms[in.Term]
		if !ok {
			return fmt.Sprintf("write %s of a term that was never recorded", electorDescribe(op))
		}
		if in.LiveAt > t.maxLive {
			t.maxLive = in.LiveAt
		}
	}
	list := slices.SortedFunc(maps.Values(terms), func(a, b *electorTerm) int { return cmp.Compare(a.op.Call, b.op.Call) })
	var found []string
	for _, v := range []string{electorCheckTokens(list), electorCheckFences(writes, finals), electorCheckSelfFencing(list)} {
		if v != "" {
			found = append(found, v)
		}
	}
	return strings.Join(found, "\n")
}

// electorCheckTokens checks clause 1 on the terms, sorted by Call.
func electorCheckTokens(list []*electorTerm) string {
	for i, a := range list {
		for _, b := range list[i+1:] {
			if a.in.Token == b.in.Token {
				return fmt.Sprintf("clause 1: two terms share token %d:\n  %s\n  %s", a.in.Token, electorDescribe(a.op), electorDescribe(b.op))
			}
			for _, p := range [][2]*electorTerm{{a, b}, {b, a}} {
				if p[0].op.Return < p[1].op.Call && p[0].in.Token > p[1].in.Token {
					return fmt.Sprintf("clause 1: a term granted later has a smaller token:\n  %s\n  then %s", electorDescribe(p[0].op), electorDescribe(p[1].op))
				}
			}
		}
	}
	return ""
}

// electorCheckFences checks clause 2 on every fence.
func electorCheckFences(writes, finals []porcupine.Operation) string {
	byFence := map[string][]porcupine.Operation{}
	for _, op := range writes {
		if op.Output.(ElectorWriteOut).Result == "accepted" {
			f := op.Input.(ElectorWriteOp).Fence
			byFence[f] = append(byFence[f], op)
		}
	}
	for _, f := range slices.Sorted(maps.Keys(byFence)) {
		if v := electorCheckFence(f, byFence[f]); v != "" {
			return v
		}
	}
	for _, fop := range finals {
		if v := electorCheckFinal(fop, writes); v != "" {
			return v
		}
	}
	return ""
}

// electorCheckSelfFencing checks clause 3 on the terms.
func electorCheckSelfFencing(list []*electorTerm) string {
	for _, a := range list {
		if a.out.DoneAt == Unknown || a.out.DoneAt > a.out.Deadline+int64(ElectorDoneSlack+a.out.Stall) {
			return fmt.Sprintf("clause 3: Done of %s closed %s, past its deadline %s plus %v (and the %v the process's timers ran late meanwhile)", electorDescribe(a.op),
				electorTime(a.out.DoneAt), electorTime(a.out.Deadline), ElectorDoneSlack, a.out.Stall)
		}
		if a.maxLive >= a.out.Deadline {
			return fmt.Sprintf("clause 3: %s reported itself live at %s, at or after its deadline %s", electorDescribe(a.op),
				electorTime(a.maxLive), electorTime(a.out.Deadline))
		}
		for _, b := range list {
			if b.in.Token > a.in.Token && a.maxLive > b.op.Return {
				return fmt.Sprintf("clause 3: %s reported itself live at %s, after a newer term was granted:\n  %s",
					electorDescribe(a.op), electorTime(a.maxLive), electorDescribe(b.op))
			}
		}
	}
	return ""
}

// electorCheckFence checks clause 2 (a) and (b) on one fence's accepted writes.
func electorCheckFence(fence string, acc []porcupine.Operation) string {
	// (a) commit order, where the fence records one.
	var ordered []porcupine.Operation
	for _, op := range acc {
		if op.Output.(ElectorWriteOut).Seq > 0 {
			ordered = append(ordered, op)
		}
	}
	slices.SortFunc(ordered, func(a, b porcupine.Operation) int {
		return cmp.Compare(a.Output.(ElectorWriteOut).Seq, b.Output.(ElectorWriteOut).Seq)
	})
	left := map[int]bool{} // terms whose run of accepted writes ended
	for i := 1; i < len(ordered); i++ {
		p, q := ordered[i-1].Input.(ElectorWriteOp), ordered[i].Input.(ElectorWriteOp)
		if q.Token < p.Token {
			return fmt.Sprintf("clause 2a: fence %s committed a smaller token after a larger one:\n  %s\n  then %s", fence,
				electorDescribe(ordered[i-1]), electorDescribe(ordered[i]))
		}
		if q.Term != p.Term {
			left[p.Term] = true
			if left[q.Term] {
				return fmt.Sprintf("clause 2a: fence %s accepted term %d again after another term's write:\n  %s\n  then %s", fence, q.Term,
					electorDescribe(ordered[i-1]), electorDescribe(ordered[i]))
			}
		}
	}
	// (b) real time.
	type span struct {
		minRet, maxCall int64
		first, last     porcupine.Operation
	}
	spans := map[int]*span{}
	for _, op := range acc {
		in := op.Input.(ElectorWriteOp)
		s := spans[in.Term]
		if s == nil {
			s = &span{minRet: Unknown, maxCall: -1}
			spans[in.Term] = s
		}
		if op.Return < s.minRet {
			s.minRet, s.first = op.Return, op
		}
		if op.Call > s.maxCall {
			s.maxCall, s.last = op.Call, op
		}
	}
	for _, a := range acc {
		if a.Return == Unknown {
			continue
		}
		for _, b := range acc {
			if b.Call > a.Return && b.Input.(ElectorWriteOp).Token < a.Input.(ElectorWriteOp).Token {
				return fmt.Sprintf("clause 2b: fence %s accepted a smaller token after a larger one was accepted:\n  %s\n  then %s", fence,
					electorDescribe(a), electorDescribe(b))
			}
		}
	}
	for _, b := range acc {
		bt := b.Input.(ElectorWriteOp).Term
		for x, s := range spans {
			if x != bt && s.minRet < b.Call && b.Return < s.maxCall {
				return fmt.Sprintf("clause 2b: fence %s accepted term %d's writes before and after another term's:\n  %s\n  then %s\n  then %s",
					fence, x, electorDescribe(s.first), electorDescribe(b), electorDescribe(s.last))
			}
		}
	}
	return ""
}

// electorCheckFinal checks clause 2 (c) on a fence's final state.
func electorCheckFinal(fop porcupine.Operation, writes []porcupine.Operation) string {
	st := fop.Input.(ElectorFenceState)
	var maxAcc uint64
	possible := map[uint64]bool{}
	var lastWrite *ElectorWriteOp
	for _, op := range writes {
		in := op.Input.(ElectorWriteOp)
		if in.Fence != st.Fence {
			continue
		}
		r := op.Output.(ElectorWriteOut).Result
		if r == "accepted" && in.Token > maxAcc {
			maxAcc = in.Token
		}
		if r != "refused" {
			possible[in.Token] = true
			if in.ID == st.Last {
				lastWrite = &in
			}
		}
	}
	switch {
	case st.Empty && maxAcc > 0:
		return fmt.Sprintf("clause 2c: fence %s holds nothing after accepting token %d", st.Fence, maxAcc)
	case st.Empty:
		return ""
	case st.Token < maxAcc:
		return fmt.Sprintf("clause 2c: fence %s holds token %d, smaller than the accepted %d", st.Fence, st.Token, maxAcc)
	case !possible[st.Token]:
		return fmt.Sprintf("clause 2c: fence %s holds token %d, which no write that may have been accepted carried", st.Fence, st.Token)
	case st.Last != 0 && (lastWrite == nil || lastWrite.Token != st.Token):
		return fmt.Sprintf("clause 2c: fence %s holds token %d with the value of write %d, not a write of that token that may have been accepted",
			st.Fence, st.Token, st.Last)
	}
	return ""
}

func electorTime(t int64) string {
	if t == Unknown {
		return "never"
	}
	return fmt.Sprintf("%.6fs", float64(t)/1e9)
}

func electorDescribe(op porcupine.Operation) string {
	ret := electorTime(op.Return)
	if op.Return == Unknown {
		ret = "unknown"
	}
	switch in := op.Input.(type) {
	case ElectorTermOp:
		out := op.Output.(ElectorTermOut)
		return fmt.Sprintf("term %d of clone %d, token %d, campaign from %s, granted by %s, deadline %s, done %s (%s)",
			in.Term, in.Clone, in.Token, electorTime(op.Call), ret, electorTime(out.Deadline), electorTime(out.DoneAt), out.Cause)
	case ElectorWriteOp:
		out := op.Output.(ElectorWriteOut)
		var b strings.Builder
		fmt.Fprintf(&b, "write %d of term %d (clone %d, token %d) to %s [%s, %s] live at %s: %s", in.ID, in.Term, in.Clone, in.Token,
			in.Fence, electorTime(op.Call), ret, electorTime(in.LiveAt), out.Result)
		if out.Seq > 0 {
			fmt.Fprintf(&b, " as #%d", out.Seq)
		}
		if in.Paused {
			b.WriteString(" (paused before it)")
		}
		return b.String()
	}
	return fmt.Sprint(op.Input)
}

// ElectorSummary counts what a history exercised: terms, writes per fence
// by outcome (accepted and refused include the writes the fence's record
// settled), and the paused writes the fences refused (the stale
// leaders they stopped).
func ElectorSummary(ops []porcupine.Operation) string {
	terms := 0
	type counts struct{ accepted, refused, unknown, settled, paused, pausedRefused int }
	per := map[string]*counts{}
	for _, op := range ops {
		switch in := op.Input.(type) {
		case ElectorTermOp:
			terms++
		case ElectorWriteOp:
			c := per[in.Fence]
			if c == nil {
				c = &counts{}
				per[in.Fence] = c
			}
			out := op.Output.(ElectorWriteOut)
			r := out.Result
			if out.Settled {
				c.settled++
			}
			switch r {
			case "accepted":
				c.accepted++
			case "refused":
				c.refused++
			default:
				c.unknown++
			}
			if in.Paused {
				c.paused++
				if r == "refused" {
					c.pausedRefused++
				}
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d terms", terms)
	for _, f := range slices.Sorted(maps.Keys(per)) {
		c := per[f]
		fmt.Fprintf(&b, "; %s: %d accepted, %d refused, %d unknown (and %d unknown to the client that the fence's record settled), %d paused of which %d refused",
			f, c.accepted, c.refused, c.unknown, c.settled, c.paused, c.pausedRefused)
	}
	return b.String()
}
