package replica

import "time"

// trailLen is how many of the primary's write positions are remembered:
// a replica's lag is bounded by them while its replay trails the primary
// by fewer than that many probe rounds.
const trailLen = 64

// headerSlack is how far below a mark a replica's replayed position may
// lie and still count as holding it: an idle PostgreSQL primary's insert
// position can sit just past a WAL page header (at most 40 bytes) that a
// replica, having replayed every record, never counts as replayed. Any
// transaction takes more WAL than that, so a replica short of a mark by
// more has not replayed something the primary wrote before it.
const headerSlack = 40

// positionAt is the primary's write position as of one probe.
type positionAt struct {
	at   int64 // when the probe was sent, on the Router's monotonic clock
	read int64 // when its answer came: the position was read by then
	pos  uint64
}

// primaryTrail is the recent write positions of one primary, oldest
// first. A probe of a PositionProbe reads the primary's position after it
// was sent and before it answered, so every transaction committed before
// a mark's sending lies below its position, and all of the WAL below it
// was written before the answer. That bounds a replica's lag from both
// sides, with no assumption about how fast changes reach it:
//
//   - from above: a replica that has replayed up to a mark holds every
//     write older than the mark was sent. This keeps a replica busy
//     replaying a burst that followed an idle spell from being judged as
//     stale as its last replayed transaction is old;
//   - from below: a replica that has not replayed up to a mark lacks
//     something written before the mark was answered. This catches what
//     a replica cannot tell about itself: that its WAL receiver, just
//     restarted or cut off from the primary, has not received what the
//     primary wrote meanwhile, while it has replayed all it did receive.
type primaryTrail struct {
	primary *member
	gen     uint64
	marks   []positionAt
}

// record adds the position of primary probed from sent to answered,
// forgetting the trail of a previous primary or timeline: positions of
// two histories do not compare.
func (t *primaryTrail) record(primary *member, gen, pos uint64, sent, answered int64) {
	if t.primary != primary || t.gen != gen {
		t.primary, t.gen, t.marks = primary, gen, t.marks[:0]
	}
	if len(t.marks) == trailLen {
		t.marks = append(t.marks[:0], t.marks[1:]...)
	}
	t.marks = append(t.marks, positionAt{at: sent, read: answered, pos: pos})
}

// reset forgets the trail, when two primaries of one generation answer.
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

// lacking returns how far behind a replica is at least, given the
// position it had replayed when its probe was sent at sent: the age of
// the oldest mark it has not replayed up to, counted from that mark's
// answer; false when it holds every mark.
func (t *primaryTrail) lacking(replayed uint64, sent int64) (time.Duration, bool) {
	for _, m := range t.marks {
		if m.pos > replayed+headerSlack {
			return time.Duration(max(sent-m.read, 0)), true
		}
	}
	return 0, false
}

// boundLags records this round's primary position and bounds each
// replica's reported lag with the trail (see bound). Only a
// PositionProbe's positions are comparable across nodes. A round in which
// no primary answered keeps the trail: its marks still say what the
// replicas hold and lack. Called under Router.mu.
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
	if tie {
		r.trail.reset()
		return
	}
	if primary >= 0 {
		p := results[primary]
		r.trail.record(r.nodes[primary], p.st.Generation, p.st.Position, p.sent, p.answered)
	}
	for i, m := range r.nodes {
		if results[i].err != nil || m.state.Role != RoleReplica {
			continue
		}
		m.state.Lag = r.trail.bound(m.state.Lag, m.state.Position, results[i].sent, primary >= 0)
	}
}

// bound returns the lag of a replica that reports lag, having replayed up
// to replayed when its probe was sent at sent. Its report reckons from
// the changes it received, so it holds only while its receiver keeps up
// with the primary: it is trusted (and tightened by the trail) only while
// a primary answers, so that the trail is current, and nothing the
// replica lacks is older than it says. Otherwise the trail alone says how
// stale it is: the age of the newest mark it holds; or, behind every mark,
// at least the age of the oldest.
func (t *primaryTrail) bound(reported time.Duration, replayed uint64, sent int64, primaryAnswered bool) time.Duration {
	most, bounded := t.lagBound(replayed, sent)
	least, lacks := t.lacking(replayed, sent)
	switch {
	case primaryAnswered && !(lacks && least > reported):
		if bounded {
			return min(reported, most)
		}
		return reported
	case bounded:
		return most
	case lacks:
		return max(reported, least)
	default: // no trail yet
		return reported
	}
}
