package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// commit saves what the request changed. See the package doc for the
// algorithm.
func (m *Manager) commit(ctx context.Context, s *state) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if len(s.ops) == 0 && s.user == nil && !s.renew {
		if s.existed {
			return m.touch(ctx, s, now)
		}
		return nil
	}
	if !s.existed {
		if len(s.ops) == 0 && s.user == nil {
			return nil // RenewID alone on a session that is not stored
		}
		return m.create(ctx, s, now)
	}
	return m.merge(ctx, s, now)
}

// create stores a new session under a new ID.
func (m *Manager) create(ctx context.Context, s *state, now time.Time) error {
	rec := record{created: now, expiry: m.expiry(now, now)}
	if s.user != nil {
		rec.user = *s.user
	}
	values, err := m.cfg.Codec.Encode(s.values)
	if err != nil {
		return fmt.Errorf("session: encode: %w", err)
	}
	rec.values = values
	data := rec.marshal()
	for attempt := 0; ; attempt++ {
		id := newID()
		_, err := m.save(ctx, id, data, rec.expiry, 0)
		if errors.Is(err, ErrConflict) && attempt < 3 {
			continue // an ID collision: astronomically unlikely
		}
		if err != nil {
			return err
		}
		s.id, s.rec, s.sendCookie = id, rec, true
		s.ops = nil
		return m.indexUser(ctx, rec.user, id, rec.created)
	}
}

// merge replays the request's ops over the session as stored now and
// saves the result, with compare-and-swap when the store has it.
func (m *Manager) merge(ctx context.Context, s *state, now time.Time) error {
	id, v, rec := s.id, s.version, s.rec
	mu := m.commitLock(id)
	mu.Lock()
	defer mu.Unlock()
	// With CAS, the first attempt assumes nothing changed since the
	// request loaded the session: s.values already is rec's values plus
	// the ops, and SaveIf fails if the assumption is wrong. Without CAS,
	// always re-load just before saving (best effort).
	fresh := m.cas != nil
	for attempt := 0; attempt < m.cfg.CommitAttempts; attempt++ {
		var values map[string]any
		if fresh {
			values = s.values
			fresh = false
		} else {
			if attempt > 1 {
				// Attempt 1 follows the optimistic one at once: under the
				// commit lock only another clone can have interfered.
				backoff(ctx, attempt-1)
			}
			data, ver, found, err := m.get(ctx, id)
			if err != nil {
				return err
			}
			var r record
			if found {
				r, err = unmarshalRecord(data)
			}
			if !found || err != nil || (r.forward == "" && !m.live(r, now)) {
				// Deleted (a logout), expired or replaced since the
				// request started: never recreate it.
				s.id, s.existed, s.ops = "", false, nil
				return nil
			}
			if r.forward != "" {
				id = r.forward // renewed concurrently: follow it
				s.sendCookie = true
				continue
			}
			values, err = m.cfg.Codec.Decode(r.values)
			if err != nil {
				s.id, s.existed, s.ops = "", false, nil
				return nil
			}
			for _, o := range s.ops {
				o.apply(values)
			}
			rec, v = r, ver
		}
		next := record{created: rec.created, expiry: m.expiry(rec.created, now), user: rec.user}
		if s.user != nil {
			next.user = *s.user
		}
		if !next.expiry.After(now) {
			s.id, s.existed, s.ops = "", false, nil
			return nil
		}
		enc, err := m.cfg.Codec.Encode(values)
		if err != nil {
			return fmt.Errorf("session: encode: %w", err)
		}
		next.values = enc
		newID, err := m.store1(ctx, s, id, v, next, now)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		if newID != s.id {
			s.sendCookie = true
		}
		s.id, s.rec, s.values, s.ops = newID, next, values, nil
		if s.renew || s.user != nil {
			if err := m.indexUser(ctx, next.user, newID, next.created); err != nil {
				return err
			}
		}
		s.renew, s.user = false, nil
		return nil
	}
	return fmt.Errorf("session: commit gave up after %d attempts: %w", m.cfg.CommitAttempts, ErrConflict)
}

// store1 saves next over version v of id, or, when the request renews the
// ID, under a new ID with a forwarding record left under id. It returns
// the ID the session now has.
func (m *Manager) store1(ctx context.Context, s *state, id string, v Version, next record, now time.Time) (string, error) {
	data := next.marshal()
	if !s.renew {
		_, err := m.save(ctx, id, data, next.expiry, v)
		return id, err
	}
	newID := newID()
	if _, err := m.save(ctx, newID, data, next.expiry, 0); err != nil {
		return "", err // a conflict here is an ID collision: retry
	}
	fwd := record{forward: newID}
	if _, err := m.save(ctx, id, fwd.marshal(), minTime(now.Add(m.cfg.RenewGrace), next.expiry), v); err != nil {
		// The old session changed under us: drop the copy and retry.
		// (A failure to delete leaves an orphan that expires on its own.)
		_ = m.store.Delete(context.WithoutCancel(ctx), newID)
		return "", err
	}
	return newID, nil
}

// touch pushes the expiry of an unchanged session forward, at most once
// per TouchInterval.
func (m *Manager) touch(ctx context.Context, s *state, now time.Time) error {
	exp := m.expiry(s.rec.created, now)
	if exp.Sub(s.rec.expiry) < m.cfg.TouchInterval {
		return nil
	}
	if m.cas != nil {
		rec := s.rec
		rec.expiry = exp
		_, err := m.cas.SaveIf(ctx, s.id, rec.marshal(), exp, s.version)
		if errors.Is(err, ErrConflict) {
			return nil // someone else wrote (and so touched) or deleted it
		}
		if err == nil {
			s.rec = rec
		}
		return err
	}
	// Best effort without CAS: re-load so a concurrent change is kept.
	data, found, err := m.store.Load(ctx, s.id)
	if err != nil || !found {
		return err
	}
	rec, err := unmarshalRecord(data)
	if err != nil || rec.forward != "" {
		return nil
	}
	rec.expiry = exp
	return m.store.Save(ctx, s.id, rec.marshal(), exp)
}

func (m *Manager) indexUser(ctx context.Context, user, id string, created time.Time) error {
	if m.index == nil || user == "" {
		return nil
	}
	return m.index.AddUserSession(ctx, user, id, created.Add(m.cfg.Lifetime))
}
