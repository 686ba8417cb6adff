package replica

import "time"

// trailLen is how many of the primary's write positions are remembered:
// a replica's lag is bounded by them while its replay trails the primary
// by fewer than that many probe rounds.
const trailLen = 64

// positionAt is the primary's write position as of one probe.
type positionAt struct {
	at  int64 // when the probe was sent, on the Router's monotonic clock
	pos uint64
}

// primaryTrail is the recent write positions of one primary, oldest
// first. A probe of a PositionProbe reads the primary's position after it
// was sent, so every transaction committed before a mark's time lies
// below its position: a replica that has replayed up to that position
// holds every write older than the mark. That bounds the replica's lag by
// the time since the mark, with no assumption about how fast changes
// reach it, and keeps a replica busy replaying a burst that followed an
// idle spell from being judged as stale as its last replayed transaction
// is old.
type primaryTrail struct {
	primary *member
	gen     uint64
	marks   []positionAt
}

// record adds the position of primary at the time at, forgetting the
// trail of a previous primary or timeline: positions of two histories do
// not compare.
func (t *primaryTrail) record(primary *member, gen, pos uint64, at int64) {
	if t.primary != primary || t.gen != gen {
		t.primary, t.gen, t.marks = primary, gen, t.marks[:0]
	}
	if len(t.marks) == trailLen {
		t.marks = append(t.marks[:0], t.marks[1:]...)
	}
	t.marks = append(t.marks, positionAt{at: at, pos: pos})
}

// reset forgets the trail, when no single primary answered.
func (t *primaryTrail) reset() { t.primary, t.marks = nil, t.marks[:0] }

// lagBound returns how far behind a replica is at most, given the
// position it had replayed when its probe was sent at sent; false when no
// remembered mark lies at or below that position.
func (t *primaryTrail) lagBound(replayed uint64, sent int64) (time.Duration, bool) {
	for i := len(t.marks) - 1; i >= 0; i-- {
		if m := t.marks[i]; m.pos <= replayed {
			return time.Duration(max(sent-m.at, 0)), true
		}
	}
	return 0, false
}

// boundLags records this round's primary position and tightens each
// replica's reported lag with the trail: both are upper bounds on how
// stale it is, so the smaller one holds. Only a PositionProbe's positions
// are comparable across nodes. Called under Router.mu.
func (r *Router) boundLags(results []probeResult) {
	if _, ok := r.cfg.Probe.(PositionProbe); !ok {
		return
	}
	primary, tie := -1, false
	for i, res := range results {
		if res.err != nil || res.st.Role != RolePrimary {
			continue
		}
		switch {
		case primary < 0 || res.st.Generation > results[primary].st.Generation:
			primary, tie = i, false
		case res.st.Generation == results[primary].st.Generation:
			tie = true
		}
	}
	if primary < 0 || tie {
		r.trail.reset()
		return
	}
	p := results[primary]
	r.trail.record(r.nodes[primary], p.st.Generation, p.st.Position, p.sent)
	for i, m := range r.nodes {
		if results[i].err != nil || m.state.Role != RoleReplica || m.state.Lag == 0 || m.state.Detached {
			continue
		}
		if bound, ok := r.trail.lagBound(m.state.Position, results[i].sent); ok && bound < m.state.Lag {
			m.state.Lag = bound
		}
	}
}
