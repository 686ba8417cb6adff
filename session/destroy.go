package session

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"
)

// maxFamily bounds how many IDs one destroy walks: renewals since the
// request loaded its ID, with a wide margin.
const maxFamily = 256

// destroyFamily deletes the session under id and under every ID renewals
// moved it to since. The live session at the end of the chain is deleted
// with compare-and-swap, so a renewal racing the destroy either finished
// first (its renewal record is then followed) or fails (and deletes its
// copy); a logout is never undone. The renewal records are deleted last.
// Without a CASStore it is best effort.
func (m *Manager) destroyFamily(ctx context.Context, id string) (err error) {
	ctx, cancel := m.bounded(ctx)
	defer cancel()
	defer func() { m.met.failed(opDestroy, err) }()
	var links []string
	past := time.Unix(1, 0)
	for steps := 0; id != "" && steps < maxFamily; steps++ {
		data, v, found, err := m.get(ctx, id)
		if err != nil {
			return err
		}
		if !found {
			break
		}
		if r, err := unmarshalRecord(data, m.cfg.Lifetime); err == nil && r.renewed {
			links = append(links, id)
			id = r.next
			continue
		}
		if m.cas == nil {
			if err := m.store.Delete(ctx, id); err != nil {
				return err
			}
			break
		}
		_, err = m.cas.SaveIf(ctx, id, nil, past, v)
		if errors.Is(err, ErrConflict) {
			continue // written meanwhile (perhaps renewed): read it again
		}
		if err != nil {
			return err
		}
		break
	}
	for _, link := range slices.Backward(links) {
		if err := m.store.Delete(ctx, link); err != nil {
			return err
		}
	}
	return nil
}

// DestroyAll ends every session of user ("log out everywhere"), each with
// its whole family as Destroy does, so a renewal racing it does not save
// a session from it. A session that logs in while DestroyAll runs may
// survive it: it is a new login. It needs a store with a UserIndex and
// fails with an error wrapping errors.ErrUnsupported otherwise. Sessions
// are recorded for a user by Login.
func (m *Manager) DestroyAll(ctx context.Context, user string) error {
	ids, err := m.userIDs(ctx, user)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := m.destroyFamily(ctx, id); err != nil {
			return err
		}
	}
	return m.index.DeleteUser(ctx, user)
}

// userIDs lists user's sessions from the store's UserIndex.
func (m *Manager) userIDs(ctx context.Context, user string) ([]string, error) {
	if m.index == nil {
		return nil, fmt.Errorf("session: store %T keeps no user index: %w", m.store, errors.ErrUnsupported)
	}
	return m.index.UserSessions(ctx, user)
}

// SessionInfo describes one of a user's sessions, for a page that lists
// them ("you are logged in on these devices") and ends one. It holds no
// session ID: Handle names the session to DestroySession and cannot be
// turned back into the ID.
type SessionInfo struct {
	Handle   string    // names the session to DestroySession
	Device   string    // the User-Agent of the request that logged in
	Created  time.Time // when the session started
	LastSeen time.Time // its last write or idle refresh (within TouchInterval of its last request)
	Expires  time.Time // when it ends unless used again
	Current  bool      // it is the session of the context passed in
}

// UserSessions lists the live sessions of user, oldest first. When ctx
// carries a session (a handler's request context), that one is marked
// Current. It needs a store with a UserIndex and fails with an error
// wrapping errors.ErrUnsupported otherwise; it reads every session the
// index lists, one store round trip each.
func (m *Manager) UserSessions(ctx context.Context, user string) ([]SessionInfo, error) {
	ids, err := m.userIDs(ctx, user)
	if err != nil {
		return nil, err
	}
	current := ""
	if s := from(ctx); s != nil {
		s.mu.Lock()
		current = s.id
		s.mu.Unlock()
	}
	now := time.Now()
	var out []SessionInfo
	for _, id := range ids {
		data, _, found, err := m.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		rec, err := unmarshalRecord(data, m.cfg.Lifetime)
		if err != nil || rec.renewed || !m.live(rec, now) || rec.user != user {
			continue
		}
		out = append(out, SessionInfo{
			Handle:   handleOf(id),
			Device:   rec.device,
			Created:  rec.created,
			LastSeen: rec.seen,
			Expires:  minTime(rec.expiry, rec.deadline),
			Current:  id == current,
		})
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// DestroySession ends the session of user that handle (from UserSessions)
// names, with its whole family as Destroy does. It fails with
// ErrUnknownSession when no session of the user has that handle.
func (m *Manager) DestroySession(ctx context.Context, user, handle string) error {
	ids, err := m.userIDs(ctx, user)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if subtle.ConstantTimeCompare([]byte(handleOf(id)), []byte(handle)) == 1 {
			return m.destroyFamily(ctx, id)
		}
	}
	return ErrUnknownSession
}

// handleOf derives a session's public handle from its ID: 128 bits of a
// SHA-256 that cannot be turned back into the ID.
func handleOf(id string) string {
	sum := sha256.Sum256([]byte("scaleout/session handle\x00" + id))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
