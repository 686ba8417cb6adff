package sessiontest_test

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/scaleout/scaleout/session"
)

// renumbered is a CASStore that numbers versions itself, per ID, 1, 2,
// 3…, over an inner store's versions, the way a store that keeps a
// version counter beside each session does. Numbered correctly, it passes
// the kit; the flags break the numbering as stores that keep such a
// counter get it wrong, for the CAS clauses about versions to catch.
type renumbered struct {
	session.CASStore

	// restartAfterDelete starts an ID's numbering again at 1 once its
	// session is gone (a counter kept in the session's own record), so a
	// version loaded before a Delete matches the session saved anew.
	restartAfterDelete bool
	// saveKeepsVersion leaves the number as it was on a plain Save (a
	// Save that writes the data and not the counter), so a version loaded
	// before someone else's Save still matches.
	saveKeepsVersion bool

	// mu is held across the inner calls too, so that the numbers follow
	// the inner versions in the order the inner store made them.
	mu  sync.Mutex
	ids map[string]*numbering
}

// numbering maps one ID's inner versions to the numbers handed out.
type numbering struct {
	last  session.Version                     // the last number handed out
	outer map[session.Version]session.Version // inner version → number
	inner map[session.Version]session.Version // number → inner version
}

// neverExisted is an inner version no store hands out: SaveIf with it
// conflicts.
const neverExisted = session.Version(math.MaxUint64)

// numbers returns id's numbering; the caller holds mu.
func (r *renumbered) numbers(id string) *numbering {
	if r.ids == nil {
		r.ids = map[string]*numbering{}
	}
	n := r.ids[id]
	if n == nil {
		n = &numbering{outer: map[session.Version]session.Version{}, inner: map[session.Version]session.Version{}}
		r.ids[id] = n
	}
	return n
}

// number returns the number of id's inner version iv, handing out the
// next one the first time iv is seen; iv 0 (no session) is number 0.
// The caller holds mu.
func (r *renumbered) number(id string, iv session.Version) session.Version {
	if iv == 0 {
		if r.restartAfterDelete {
			delete(r.ids, id)
		}
		return 0
	}
	n := r.numbers(id)
	if v, ok := n.outer[iv]; ok {
		return v
	}
	n.last++
	n.outer[iv], n.inner[n.last] = n.last, iv
	return n.last
}

// current numbers id's current inner version; the caller holds mu.
func (r *renumbered) current(ctx context.Context, id string) (session.Version, error) {
	_, iv, err := r.CASStore.LoadVersion(ctx, id)
	if err != nil {
		return 0, err
	}
	return r.number(id, iv), nil
}

func (r *renumbered) LoadVersion(ctx context.Context, id string) ([]byte, session.Version, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	data, iv, err := r.CASStore.LoadVersion(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	return data, r.number(id, iv), nil
}

func (r *renumbered) SaveIf(ctx context.Context, id string, data []byte, exp time.Time, v session.Version) (session.Version, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Number the current version first, as a store reading its counter
	// before it compares would.
	if _, err := r.current(ctx, id); err != nil {
		return 0, err
	}
	iv := session.Version(0)
	if v != 0 {
		var ok bool
		if iv, ok = r.numbers(id).inner[v]; !ok {
			iv = neverExisted
		}
	}
	nv, err := r.CASStore.SaveIf(ctx, id, data, exp, iv)
	if err != nil {
		return 0, err
	}
	return r.number(id, nv), nil
}

func (r *renumbered) Save(ctx context.Context, id string, data []byte, exp time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	before, err := r.current(ctx, id)
	if err != nil {
		return err
	}
	if err := r.CASStore.Save(ctx, id, data, exp); err != nil {
		return err
	}
	_, iv, err := r.CASStore.LoadVersion(ctx, id)
	if err != nil || iv == 0 || before == 0 || !r.saveKeepsVersion {
		r.number(id, iv)
		return err
	}
	n := r.numbers(id)
	n.outer[iv], n.inner[before] = before, iv
	return nil
}

func (r *renumbered) Delete(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.CASStore.Delete(ctx, id); err != nil {
		return err
	}
	r.number(id, 0)
	return nil
}
