package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// commit saves what the request changed. See the package doc for the
// algorithm.
func (m *Manager) commit(ctx context.Context, s *state) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := m.bounded(ctx)
	defer cancel()
	now := time.Now()
	switch {
	case !s.changed():
		if s.existed {
			err := m.touch(ctx, s, now)
			m.met.failed(opRenew, err)
			return err
		}
		return nil
	case s.existed:
		return m.counted(s, func() error { return m.merge(ctx, s, now) })
	case len(s.ops) == 0 && s.user == nil && s.lifetime == nil:
		s.renew = renewNone // RenewID alone on a session that is not stored
		return nil
	case s.superseded && s.renew != renewPrivilege:
		s.drop()
		return nil
	default:
		return m.counted(s, func() error { return m.create(ctx, s, now) })
	}
}

// counted runs a commit that writes, and counts it: a commit, a renewal
// when the request renewed the ID, or a failure. A commit that wrote
// nothing (the session was gone, or renewed by another request) counts as
// neither.
func (m *Manager) counted(s *state, write func() error) error {
	renewing := s.renew != renewNone
	err := write()
	switch {
	case err != nil:
		m.met.failed(opCommit, err)
	case s.existed:
		m.met.commits.Inc()
		if renewing {
			m.met.renewals.Inc()
		}
	}
	return err
}

// drop discards the request's changes: its session was renewed by a login
// while it ran, and what it wrote belongs to the identity before it.
func (s *state) drop() {
	s.ops, s.user, s.renew, s.lifetime = nil, nil, renewNone, nil
}

// gone records that the session was destroyed or expired while the
// request ran: its changes are dropped, never recreating it.
func (s *state) gone() {
	s.drop()
	s.id, s.existed, s.version = "", false, 0
}

// saved records a successful commit of rec under id at version v. The
// client is sent the ID when it changed, and when the cookie's lifetime
// did.
func (s *state) saved(id string, v Version, rec record) {
	if id != s.id || s.lifetime != nil {
		s.sendCookie = true
	}
	s.id, s.existed, s.version, s.rec = id, true, v, rec
	s.forwarded, s.superseded = false, false
	s.drop()
}

// newRecord returns what a commit stores for the request: base's fields
// changed by the request, its values enc and the commit cid appended to
// the commit log.
func (m *Manager) newRecord(s *state, base record, enc []byte, cid uint64, now time.Time) record {
	next := base
	next.renewed = false
	next.values, next.seen = enc, now
	if l := s.lifetime; l != nil {
		next.deadline = next.created.Add(cmp.Or(l.Absolute, m.cfg.Lifetime))
		next.idle, next.persist = l.Idle, l.Persist
	}
	if s.user != nil {
		next.user = *s.user
		next.device = ""
		if s.r != nil {
			next.device = truncate(s.r.UserAgent(), maxDevice)
		}
	}
	next.expiry = m.expiry(next, now)
	next.seq, next.log = base.withCommit(cid)
	return next
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// create stores the request's values as a new session under a new ID.
func (m *Manager) create(ctx context.Context, s *state, now time.Time) error {
	enc, err := m.cfg.Codec.Encode(s.values)
	if err != nil {
		return fmt.Errorf("%w: %w", errEncode, err)
	}
	base := record{created: now, deadline: now.Add(m.cfg.Lifetime)}
	rec := m.newRecord(s, base, enc, rand.Uint64(), now)
	id, v, err := m.saveNew(ctx, rec)
	if err != nil {
		return err
	}
	s.saved(id, v, rec)
	return nil
}

// saveNew stores rec under a new ID, after listing it under its user.
// A lost reply is resolved by reading the ID back: the record is ours
// when it holds our commit.
func (m *Manager) saveNew(ctx context.Context, rec record) (string, Version, error) {
	data := rec.marshal()
	cid := rec.log[len(rec.log)-1]
	for attempt := 0; ; attempt++ {
		id := newID()
		// Indexed first: a session is never live without its index entry,
		// so DestroyAll finds every session of the user.
		if err := m.indexUser(ctx, rec, id); err != nil {
			return "", 0, err
		}
		v, err := m.save(ctx, id, data, rec.expiry, 0)
		if err == nil {
			return id, v, nil
		}
		if _, ver, ok := m.readBack(ctx, id, rec.seq, cid); ok {
			return id, ver, nil
		}
		if !errors.Is(err, ErrConflict) || attempt >= 3 {
			return "", 0, err
		}
		// A conflict that is not ours is an ID collision: astronomically
		// unlikely, but take another ID.
	}
}

// readBack reports whether id holds a live session that includes commit
// cid as commit number seq: a write whose reply was lost that the store
// applied.
func (m *Manager) readBack(ctx context.Context, id string, seq, cid uint64) (record, Version, bool) {
	data, v, found, err := m.get(ctx, id)
	if err != nil || !found {
		return record{}, 0, false
	}
	rec, err := unmarshalRecord(data, m.cfg.Lifetime)
	if err != nil || rec.renewed {
		return record{}, 0, false
	}
	yes, _ := rec.applied(seq, cid)
	return rec, v, yes
}

// merge replays the request's ops over the session as stored now and
// saves the result, with compare-and-swap when the store has it. Every
// attempt carries one commit ID, so an attempt whose reply was lost (the
// store applied it, the client saw an error or its retry a conflict) is
// recognised on the next read and never applied twice.
func (m *Manager) merge(ctx context.Context, s *state, now time.Time) error {
	mu := m.commitLock(s.id)
	// With CAS, the first attempt assumes nothing changed since the
	// request loaded the session: s.values already is rec's values plus
	// the ops, and SaveIf fails if the assumption is wrong. Waiting for the
	// commit lock means another commit just ran here, so the assumption is
	// likely wrong: read first. Without CAS, always re-load just before
	// saving (best effort).
	reload := m.cas == nil || !mu.TryLock()
	if reload {
		mu.Lock()
	}
	defer mu.Unlock()
	id, v, rec, values := s.id, s.version, s.rec, s.values
	cid := rand.Uint64()
	var tried uint64  // commit number of the last attempt, 0 before any
	var lastErr error // the last attempt's error, when it was not a conflict
	for attempt := 0; attempt < m.cfg.CommitAttempts; attempt++ {
		if reload {
			if attempt > 1 {
				// Attempt 1 follows the optimistic one at once: under the
				// commit lock only another clone can have interfered.
				backoff(ctx, attempt-1)
			}
			data, ver, found, err := m.get(ctx, id)
			if err != nil {
				return errors.Join(lastErr, err)
			}
			r, err := unmarshalRecord(data, m.cfg.Lifetime)
			if !found || err != nil || (!r.renewed && !m.live(r, now)) {
				s.gone() // deleted (a logout), expired or unreadable: never recreate it
				return nil
			}
			if r.renewed {
				if tried > 0 {
					// Our own earlier attempt may be what moved it.
					if got, ver, ok := m.readBack(ctx, r.next, tried, cid); ok {
						s.saved(r.next, ver, got)
						return nil
					}
				}
				if r.forward && now.Before(r.at.Add(m.cfg.RotateGrace)) {
					id = r.next // rotated concurrently: follow it
					continue
				}
				return m.superseded(ctx, s, now)
			}
			if tried > 0 {
				yes, known := r.applied(tried, cid)
				switch {
				case yes:
					s.saved(id, ver, r) // applied; its reply was lost
					return nil
				case !known && lastErr != nil:
					return errors.Join(ErrOutcomeUnknown, lastErr)
				}
				// Not applied; or, after a conflict, its place has left the
				// log: so many commits followed that the conflict was the
				// store's answer to our write, not to a re-sent one.
			}
			if values, err = m.cfg.Codec.Decode(r.values); err != nil {
				m.unreadable(ctx, err)
				s.gone()
				return nil
			}
			for _, o := range s.ops {
				o.apply(values)
			}
			rec, v = r, ver
		}
		reload = true
		enc, err := m.cfg.Codec.Encode(values)
		if err != nil {
			return fmt.Errorf("%w: %w", errEncode, err)
		}
		next := m.newRecord(s, rec, enc, cid, now)
		if !m.live(next, now) {
			s.gone()
			return nil
		}
		tried = next.seq
		if attempt > 0 {
			m.met.mergeRetries.Inc()
		}
		newID, ver, err := m.store1(ctx, s, id, v, rec, next, now)
		if err == nil {
			s.values = values
			s.saved(newID, ver, next)
			return nil
		}
		lastErr = nil
		if errors.Is(err, ErrConflict) {
			m.met.conflicts.Inc()
		} else {
			if m.cas == nil {
				return err // without CAS a retry could apply the ops twice
			}
			lastErr = err // maybe applied: the next read tells
		}
	}
	if lastErr != nil {
		return lastErr
	}
	return fmt.Errorf("session: commit gave up after %d attempts: %w", m.cfg.CommitAttempts, ErrConflict)
}

// superseded handles a commit whose session was renewed by a login while
// the request ran. Its writes are dropped. A Login or RenewID of its own
// (the same browser logging in twice at once) starts a fresh session
// holding only the request's own changes: never the values it loaded,
// which belong to the renewed family and end with it at a logout.
func (m *Manager) superseded(ctx context.Context, s *state, now time.Time) error {
	s.id, s.existed, s.version = "", false, 0
	s.superseded = true
	if s.renew != renewPrivilege {
		s.drop()
		return nil
	}
	s.values = map[string]any{}
	for _, o := range s.ops {
		o.apply(s.values)
	}
	return m.create(ctx, s, now)
}

// store1 saves next over version v of id (which holds rec), or, when the
// request renews the ID, under a new ID with a renewal record left under
// id. It returns the ID the session now has and its version.
func (m *Manager) store1(ctx context.Context, s *state, id string, v Version, rec, next record, now time.Time) (string, Version, error) {
	if s.renew == renewNone {
		ver, err := m.save(ctx, id, next.marshal(), next.expiry, v)
		return id, ver, err
	}
	newID, ver, err := m.saveNew(ctx, next)
	if err != nil {
		return "", 0, err
	}
	// The renewal record lives until the session's deadline, so that a
	// Destroy by any request that loaded the old ID can follow it.
	tomb := record{renewed: true, next: newID, at: now, forward: s.renew == renewRotate}
	_, err = m.save(ctx, id, tomb.marshal(), maxTime(next.deadline, rec.deadline), v)
	if err == nil {
		return newID, ver, nil
	}
	// A lost reply: the old ID may already name the new one.
	if data, _, found, rerr := m.get(ctx, id); rerr == nil && found {
		if r, uerr := unmarshalRecord(data, m.cfg.Lifetime); uerr == nil && r.renewed && r.next == newID {
			return newID, ver, nil
		}
	}
	// The old session changed under us (or the store failed): drop the
	// copy. A failure to delete leaves an orphan no client was sent, which
	// expires on its own.
	_ = m.store.Delete(context.WithoutCancel(ctx), newID)
	return "", 0, err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// touch pushes the expiry of an unchanged session forward, at most once
// per touch interval.
func (m *Manager) touch(ctx context.Context, s *state, now time.Time) error {
	exp := m.expiry(s.rec, now)
	if exp.Sub(s.rec.expiry) < m.touchInterval(s.rec) {
		return nil
	}
	rec := s.rec
	rec.expiry, rec.seen = exp, now
	if m.cas != nil {
		ver, err := m.cas.SaveIf(ctx, s.id, rec.marshal(), exp, s.version)
		if errors.Is(err, ErrConflict) {
			return nil // someone else wrote (and so touched) or deleted it
		}
		if err == nil {
			s.rec, s.version = rec, ver
			m.met.renewals.Inc()
		}
		return err
	}
	// Best effort without CAS: re-load so a concurrent change is kept.
	data, found, err := m.store.Load(ctx, s.id)
	if err != nil || !found {
		return err
	}
	cur, err := unmarshalRecord(data, m.cfg.Lifetime)
	if err != nil || cur.renewed {
		return nil
	}
	cur.expiry, cur.seen = exp, now
	if err := m.store.Save(ctx, s.id, cur.marshal(), exp); err != nil {
		return err
	}
	m.met.renewals.Inc()
	return nil
}

func (m *Manager) indexUser(ctx context.Context, rec record, id string) error {
	if m.index == nil || rec.user == "" {
		return nil
	}
	return m.index.AddUserSession(ctx, rec.user, id, rec.deadline)
}
