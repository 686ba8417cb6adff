package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/scaleout/scaleout/session"
)

// The session model: every session family (a session and the IDs renewals
// gave it) is an append-only list that requests append to and read, until
// a logout ends it.
//
//   - Each request's changes are applied exactly once: a value appended
//     once appears once, however replies were lost and retried.
//   - In an order consistent with real time: a read sees every append
//     that completed before it began.
//   - A logged-out family is never served again, under any ID it had.
//
// Requests see the family they loaded (attached) or a fresh visitor's
// empty session (detached: an ID that is unknown, expired, or superseded
// by a login). A detached request never changes the family. An attached
// append that succeeded is applied, except that a request whose ID a
// privilege renewal (RenewID) superseded while it ran has its writes
// dropped (MayDrop). An operation that failed may or may not have taken
// effect.

// SessionOp is one request of the session workload.
type SessionOp struct {
	Kind    string // "append", "read", "logout", "renew", "rotate", or "crash" (the store lost its data)
	Family  int
	Value   string // appended
	ID      string // the session ID the request presented
	MayDrop bool   // a RenewID of its lineage began before it returned
}

// SessionOut is what the request saw.
type SessionOut struct {
	OK       bool     // answered 200
	Attached bool     // it loaded the family's session
	Values   []string // a read's values
	NewID    string   // the ID the response set, if any
}

type sessionState struct {
	dead bool
	list string // values joined by ","
}

func (s sessionState) with(v string) sessionState {
	if s.list == "" {
		return sessionState{list: v}
	}
	return sessionState{list: s.list + "," + v}
}

// SessionModel is the porcupine model of a session family, partitioned by
// family.
var SessionModel = porcupine.NondeterministicModel{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		by := map[int][]porcupine.Operation{}
		for _, op := range ops {
			f := op.Input.(SessionOp).Family
			by[f] = append(by[f], op)
		}
		out := make([][]porcupine.Operation, 0, len(by))
		for _, f := range slices.Sorted(maps.Keys(by)) {
			out = append(out, by[f])
		}
		return out
	},
	Init: func() []any { return []any{sessionState{}} },
	Step: func(state, input, output any) []any {
		s, in := state.(sessionState), input.(SessionOp)
		var out SessionOut
		if output != nil {
			out = output.(SessionOut)
		}
		gone := sessionState{dead: true}
		switch in.Kind {
		case "crash":
			return []any{s, gone}
		case "append":
			switch {
			case out.OK && !out.Attached, s.dead:
				return []any{s} // a fresh visitor's write, or a commit that found the family gone
			case out.OK && !in.MayDrop:
				return []any{s.with(in.Value)}
			default: // failed, or superseded while it ran: applied or not
				return []any{s, s.with(in.Value)}
			}
		case "read":
			switch {
			case !out.OK:
				return []any{s}
			case !out.Attached:
				if s.dead || in.MayDrop {
					return []any{s}
				}
				return nil // the family vanished while alive
			case !s.dead && strings.Join(out.Values, ",") == s.list:
				return []any{s}
			}
			return nil
		case "logout":
			if out.OK && out.Attached {
				return []any{gone}
			}
			return []any{s, gone}
		case "renew", "rotate":
			return []any{s}
		}
		panic("unknown session op " + in.Kind)
	},
	Equal: func(a, b any) bool { return a.(sessionState) == b.(sessionState) },
	DescribeOperation: func(input, output any) string {
		in := input.(SessionOp)
		var out SessionOut
		if output != nil {
			out = output.(SessionOut)
		}
		res := "failed"
		switch {
		case out.OK && out.Attached:
			res = "ok"
		case out.OK:
			res = "ok, detached"
		}
		if in.Kind == "read" && out.OK && out.Attached {
			res = "[" + strings.Join(out.Values, ",") + "]"
		}
		drop := ""
		if in.MayDrop {
			drop = " (may be dropped)"
		}
		return fmt.Sprintf("family %d %s %s%s via %.8s → %s", in.Family, in.Kind, in.Value, drop, in.ID, res)
	},
	DescribeState: func(state any) string {
		s := state.(sessionState)
		if s.dead {
			return "logged out"
		}
		return "[" + s.list + "]"
	},
}

// sessionApp is the handler each clone serves: /start?f, /append?v,
// /read, /logout, /renew, /rotate. Every answer is the JSON of what the
// request loaded, written after its change (so a failed change or commit
// is an error response, never a 200).
func sessionApp() http.Handler {
	mux := http.NewServeMux()
	route := func(path string, change func(r *http.Request) error) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			var loaded struct {
				Owner string
				Vals  []string
			}
			loaded.Owner, _ = session.Get[string](r.Context(), "owner")
			loaded.Vals, _ = session.Get[[]string](r.Context(), "vals")
			if err := change(r); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_ = json.NewEncoder(w).Encode(loaded)
		})
	}
	route("/start", func(r *http.Request) error {
		f := r.URL.Query().Get("f")
		if err := session.Put(r.Context(), "owner", f); err != nil {
			return err
		}
		return session.Login(r.Context(), "user-"+f)
	})
	route("/append", func(r *http.Request) error {
		v := r.URL.Query().Get("v")
		_, err := session.Update(r.Context(), "vals", func(old []string) []string { return append(old, v) })
		return err
	})
	route("/read", func(*http.Request) error { return nil })
	route("/logout", func(r *http.Request) error { return session.Destroy(r.Context()) })
	route("/renew", func(r *http.Request) error { return session.RenewID(r.Context()) })
	route("/rotate", func(r *http.Request) error { return session.Rotate(r.Context()) })
	return mux
}

// SessionWorkload drives session families through clones.
type SessionWorkload struct {
	Clones  []http.Handler // LoadAndSave(sessionApp()) of each clone
	Workers int            // concurrent requests per family (default 4)
	// RotateGrace is the managers' session.Config.RotateGrace (default
	// session's own, 10s): an ID a rotation replaced serves its session
	// that long, then no more.
	RotateGrace time.Duration
	// Pace is how long each worker waits between requests (default none):
	// an in-process store answers in microseconds, and unpaced its history
	// outgrows memory in a long run.
	Pace     time.Duration
	History  *History
	rng      *rand.Rand
	rngMu    sync.Mutex
	families atomic.Int64
	clients  atomic.Int64
	mu       sync.Mutex
	all      []*family
}

// NewSessionWorkload returns a workload over managers, seeded with seed.
func NewSessionWorkload(managers []*session.Manager, seed uint64) *SessionWorkload {
	w := &SessionWorkload{Workers: 4, RotateGrace: 10 * time.Second, History: NewHistory(), rng: rand.New(rand.NewPCG(seed, seed+1))}
	for _, m := range managers {
		w.Clones = append(w.Clones, m.LoadAndSave(sessionApp()))
	}
	return w
}

func (w *SessionWorkload) intN(n int) int {
	w.rngMu.Lock()
	defer w.rngMu.Unlock()
	return w.rng.IntN(n)
}

// send sends one request through a random clone and returns what it saw.
func (w *SessionWorkload) send(family int, path, sid string) SessionOut {
	r := httptest.NewRequest(http.MethodGet, "https://chaos.test"+path, nil)
	if sid != "" {
		r.AddCookie(&http.Cookie{Name: "sid", Value: sid})
	}
	rec := httptest.NewRecorder()
	w.Clones[w.intN(len(w.Clones))].ServeHTTP(rec, r)
	resp := rec.Result()
	out := SessionOut{OK: resp.StatusCode == http.StatusOK}
	for _, c := range resp.Cookies() {
		if c.Name == "sid" && c.MaxAge >= 0 {
			out.NewID = c.Value
		}
	}
	var body struct {
		Owner string
		Vals  []string
	}
	if out.OK && json.NewDecoder(resp.Body).Decode(&body) == nil {
		out.Attached = body.Owner == strconv.Itoa(family)
		out.Values = body.Vals
	}
	return out
}

// family is the state of one session family during the run.
type family struct {
	n int
	// login serializes the family's renewals: one login at a time, as a
	// browser makes them. Two RenewIDs of one session racing fork it by
	// design (the loser's ID starts a session of its own: see
	// session.Manager.RenewID), which is a second family, not a fault of
	// this one; appends, reads, rotations and the logout still race the
	// renewal.
	login sync.Mutex
	mu    sync.Mutex
	id    string          // the newest ID
	ids   map[string]bool // every ID it had
	ended bool            // a logout that loaded it succeeded
}

func (f *family) current() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.id
}

// Drive runs families, one after another with Workers requests at a
// time each, until ctx ends.
func (w *SessionWorkload) Drive(ctx context.Context) {
	for ctx.Err() == nil {
		f := w.startFamily()
		if f == nil {
			continue
		}
		w.mu.Lock()
		w.all = append(w.all, f)
		w.mu.Unlock()
		w.driveFamily(ctx, f)
	}
}

// Verify reads every ID each family ever had, through every clone, once
// the faults have healed, and adds the MayDrop marks; it returns the
// history to check.
func (w *SessionWorkload) Verify() []porcupine.Operation {
	verifier := int(w.clients.Add(1))
	w.mu.Lock()
	all := w.all
	w.mu.Unlock()
	for _, f := range all {
		for id := range f.ids {
			for range w.Clones {
				call := w.History.Now()
				out := w.send(f.n, "/read", id)
				w.History.Add(verifier, SessionOp{Kind: "read", Family: f.n, ID: id}, out, call, w.History.Now())
			}
		}
	}
	w.markMayDrop()
	return w.History.Ops()
}

// startFamily creates a session family; it is not part of the history
// (the model starts from a live, empty family).
func (w *SessionWorkload) startFamily() *family {
	n := int(w.families.Add(1))
	out := w.send(n, "/start?f="+strconv.Itoa(n), "")
	if !out.OK || out.NewID == "" {
		return nil
	}
	return &family{n: n, id: out.NewID, ids: map[string]bool{out.NewID: true}}
}

// driveFamily runs Workers clients on f until one of them logs it out
// (once it has had 10 to 40 requests) or ctx ends: families this size
// keep the checker's search to seconds.
func (w *SessionWorkload) driveFamily(ctx context.Context, f *family) {
	budget := int64(10 + w.intN(30))
	var sent atomic.Int64
	var wg sync.WaitGroup
	for range w.Workers {
		client := int(w.clients.Add(1))
		wg.Go(func() {
			for ctx.Err() == nil {
				f.mu.Lock()
				ended := f.ended
				f.mu.Unlock()
				// A family whose logouts all came back detached (the
				// logout was superseded) is left after 3 budgets.
				if ended || sent.Load() > 3*budget {
					return
				}
				kind := "append"
				switch k := w.intN(100); {
				case sent.Add(1) > budget && k < 30:
					kind = "logout"
				case k < 30:
					kind = "read"
				case k < 36:
					kind = "rotate"
				case k < 40:
					kind = "renew"
				}
				w.one(f, client, kind)
				if w.Pace > 0 && !sleep(ctx, w.Pace) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// one sends one request of kind for f and records it.
func (w *SessionWorkload) one(f *family, client int, kind string) {
	if kind == "renew" {
		f.login.Lock()
		defer f.login.Unlock()
	}
	op := SessionOp{Kind: kind, Family: f.n, ID: f.current()}
	path := "/" + kind
	if kind == "append" {
		op.Value = fmt.Sprintf("%d.%d.%d", f.n, client, w.History.Now())
		path += "?v=" + op.Value
	}
	call := w.History.Now()
	out := w.send(f.n, path, op.ID)
	ret := w.History.Now()
	if !out.OK {
		if kind == "read" {
			return // a failed read tells nothing
		}
		ret = Unknown
	}
	w.History.Add(client, op, out, call, ret)
	f.mu.Lock()
	defer f.mu.Unlock()
	if out.OK && out.Attached {
		if out.NewID != "" {
			f.id = out.NewID
			f.ids[out.NewID] = true
		}
		if kind == "logout" {
			f.ended = true
		}
	}
}

// markMayDrop marks the requests whose writes may be dropped and whose
// reads may be detached: those whose session was being renewed by RenewID
// before they returned, under the ID they presented or any ID a rotation
// gave the same session, before or after it (the renewal supersedes them
// all); and those presenting an ID a rotation replaced more than
// RotateGrace before they returned (its forward has expired), including
// a rotation whose answer was lost: it may have taken effect, and then
// the new ID reaches the client only in a later answer within the grace
// (the Manager sends the new cookie to a request that presents the old
// ID), which faults may keep from coming.
func (w *SessionWorkload) markMayDrop() {
	w.History.mu.Lock()
	defer w.History.mu.Unlock()
	ops := w.History.ops
	type rotation struct {
		from, to string
		call     int64
	}
	rotations := map[int][]rotation{}         // what an ID was rotated to
	lost := map[int][]rotation{}              // rotations whose answer was lost: to unknown
	renews := map[int][]porcupine.Operation{} // by family
	for _, op := range ops {
		in := op.Input.(SessionOp)
		out, _ := op.Output.(SessionOut)
		switch {
		case in.Kind == "rotate" && out.NewID != "":
			rotations[in.Family] = append(rotations[in.Family], rotation{in.ID, out.NewID, op.Call})
		case in.Kind == "rotate" && !out.OK:
			lost[in.Family] = append(lost[in.Family], rotation{from: in.ID, call: op.Call})
		case in.Kind == "renew":
			renews[in.Family] = append(renews[in.Family], op)
		}
	}
	for i, op := range ops {
		in := op.Input.(SessionOp)
		if in.Kind == "renew" || in.Kind == "crash" {
			continue
		}
		lineage := map[string]bool{in.ID: true}
		for grew := true; grew; {
			grew = false
			for _, r := range rotations[in.Family] {
				if lineage[r.from] != lineage[r.to] {
					lineage[r.from], lineage[r.to], grew = true, true, true
				}
			}
		}
		for _, r := range slices.Concat(rotations[in.Family], lost[in.Family]) {
			if r.from == in.ID && op.Return-r.call > int64(w.RotateGrace) {
				in.MayDrop = true
			}
		}
		for _, r := range renews[in.Family] {
			if lineage[r.Input.(SessionOp).ID] && r.Call < op.Return {
				in.MayDrop = true
			}
		}
		ops[i].Input = in
	}
}

// Crash records that the store lost its data at t: every family begun
// so far may have vanished.
func (w *SessionWorkload) Crash(t time.Time) {
	at := w.History.At(t)
	for f := 1; f <= int(w.families.Load()); f++ {
		w.History.Add(0, SessionOp{Kind: "crash", Family: f}, nil, at, at)
	}
}
