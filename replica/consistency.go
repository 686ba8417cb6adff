package replica

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// tracker holds what the reads of one Track context must see.
type tracker struct {
	position    atomic.Uint64 // reads need a replica that applied this
	windowUntil atomic.Int64  // wall UnixNano until which reads go to the primary
	// pinned is the window (ns) of a write whose end the Router cannot
	// see (a *sql.Tx from BeginTx, a *sql.Conn): while set, reads go to
	// the primary, and a Mark covers that window from when it is taken.
	pinned atomic.Int64
}

type trackKey struct{}

// Track returns a context whose reads see the writes made through it
// (read-your-writes): after a write through DB with this context (or one
// derived from it), its reads go to a replica that has applied the write
// (with a PositionProbe, such as PostgreSQL), or to the primary for
// Config.ReadYourWrites when the write's position is unknown. Contexts
// without Track read from any fit replica.
//
// A read-write transaction from BeginTx, or a Conn, taken through a Track
// context sends its reads to the primary from then on, as the Router
// cannot see when what it wrote commits; BeginTxFunc records the commit
// instead, like a write through ExecContext.
//
// Track a user's request, not the whole process: every tracked write
// sends that context's reads to the primary or to the most caught-up
// replicas for a while. To carry the guarantee to the user's next request
// (after a redirect, or to another clone), store MarkOf in the session
// and resume with TrackFrom; to carry it to a background job, put the
// Mark in the job's payload and run the job under TrackFrom (see the
// package doc, "Composing with cache and queue").
func Track(ctx context.Context) context.Context {
	return context.WithValue(ctx, trackKey{}, new(tracker))
}

func trackerFrom(ctx context.Context) *tracker {
	t, _ := ctx.Value(trackKey{}).(*tracker)
	return t
}

// wrote records a write in t: at position pos, or at an unknown position
// (0), which opens the window.
func (t *tracker) wrote(pos uint64, window time.Duration) {
	if t == nil {
		return
	}
	if pos == 0 {
		if window > 0 {
			until := time.Now().Add(window).UnixNano()
			for old := t.windowUntil.Load(); old < until && !t.windowUntil.CompareAndSwap(old, until); old = t.windowUntil.Load() {
			}
		}
		return
	}
	for old := t.position.Load(); old < pos && !t.position.CompareAndSwap(old, pos); old = t.position.Load() {
	}
}

// pin sends t's reads to the primary from now on, for a write whose
// commit the Router cannot see; window (Config.ReadYourWrites) is how
// long a Mark taken later keeps them there. A disabled window (<= 0) pins
// nothing, as it records nothing for a write of unknown position.
func (t *tracker) pin(window time.Duration) {
	if t == nil || window <= 0 {
		return
	}
	for old := t.pinned.Load(); old < int64(window) && !t.pinned.CompareAndSwap(old, int64(window)); old = t.pinned.Load() {
	}
}

// primaryUntil is the wall UnixNano until which t's reads go to the
// primary: the window, or a window from now while pinned.
func (t *tracker) primaryUntil() int64 {
	until := t.windowUntil.Load()
	if p := t.pinned.Load(); p > 0 {
		until = max(until, time.Now().Add(time.Duration(p)).UnixNano())
	}
	return until
}

// A Mark is what later reads must see of the writes made through a Track
// context. Its text form ("<position>.<until unix ns>") fits in a cookie or
// a session.
type Mark struct {
	Position uint64    // reads need a replica that applied this position; 0: none
	Until    time.Time // reads go to the primary until then; zero: no window
}

// MarkOf returns the mark of the writes made through ctx; ok is false
// when ctx is not tracked.
func MarkOf(ctx context.Context) (m Mark, ok bool) {
	t := trackerFrom(ctx)
	if t == nil {
		return Mark{}, false
	}
	m.Position = t.position.Load()
	if u := t.primaryUntil(); u > 0 {
		m.Until = time.Unix(0, u)
	}
	return m, true
}

// RecordWrite records in a Track context a write made through it, for a
// ReplicaRouter written elsewhere (Router records its own): at position
// pos, the primary's write position once the write was acknowledged, or
// at an unknown position (0), which sends the context's reads to the
// primary for window from now. Marks only grow: a position or window
// older than the one recorded changes nothing. It reports false, and
// records nothing, when ctx is not tracked.
func RecordWrite(ctx context.Context, pos uint64, window time.Duration) bool {
	t := trackerFrom(ctx)
	t.wrote(pos, window)
	return t != nil
}

// TrackFrom is Track, starting from a mark taken by MarkOf (in an earlier
// request, perhaps on another machine: the window is in wall-clock time,
// so machines' clocks must agree to within a small part of it).
func TrackFrom(ctx context.Context, m Mark) context.Context {
	t := new(tracker)
	t.position.Store(m.Position)
	if !m.Until.IsZero() {
		t.windowUntil.Store(m.Until.UnixNano())
	}
	return context.WithValue(ctx, trackKey{}, t)
}

// MarshalText implements encoding.TextMarshaler.
func (m Mark) MarshalText() ([]byte, error) {
	var until int64
	if !m.Until.IsZero() {
		until = m.Until.UnixNano()
	}
	return fmt.Appendf(nil, "%d.%d", m.Position, until), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Mark) UnmarshalText(b []byte) error {
	pos, until, ok := strings.Cut(string(b), ".")
	p, err1 := strconv.ParseUint(pos, 10, 64)
	u, err2 := strconv.ParseInt(until, 10, 64)
	if !ok || err1 != nil || err2 != nil || u < 0 {
		return fmt.Errorf("%w: %q", ErrInvalidMark, b)
	}
	m.Position, m.Until = p, time.Time{}
	if u > 0 {
		m.Until = time.Unix(0, u)
	}
	return nil
}
