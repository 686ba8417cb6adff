package session

import (
	"context"
	"time"
)

// A SessionStore keeps session data where every clone can read it.
//
// Implementations must be safe for concurrent use. IDs are opaque,
// non-empty strings of at most MaxIDLength bytes (the Manager issues
// 43-byte base64url IDs): every method fails with ErrInvalidID for an ID
// CheckID refuses, and any other ID works, whatever its bytes, without
// colliding with another (a store that cannot hold some byte of an ID in
// a key encodes it). Data is opaque bytes, copied in and out (callers may
// reuse their buffers); empty and nil data are saved as an empty session,
// which is found. A store that cannot hold a value fails with ErrTooLarge
// and stores nothing, never a truncated value. A done context fails a
// call with an error wrapping context.Canceled (or DeadlineExceeded), or
// is ignored; it never turns a session into a silent "not found".
// sessiontest.Run checks this contract, and those of CASStore and
// UserIndex.
type SessionStore interface {
	// Load returns the data saved under id, or found == false when there
	// is none or it expired. A failure to reach the store is an error,
	// never a silent "not found".
	Load(ctx context.Context, id string) (data []byte, found bool, err error)
	// Save stores data under id until expiry, replacing what was there.
	// An expiry in the past deletes the session. The expiry may be
	// rounded to whole seconds: a session may go up to 1.25 s before it
	// and must be gone 3 s after it.
	Save(ctx context.Context, id string, data []byte, expiry time.Time) error
	// Delete removes id; deleting a missing session is not an error, and
	// a deleted ID can be saved again.
	Delete(ctx context.Context, id string) error
}

// A Version identifies one saved state of a session, for compare-and-swap.
// The zero Version means "no session".
type Version uint64

// A CASStore saves a session only over the state the caller loaded, so
// that concurrent requests of one session never overwrite each other's
// changes unseen, and a logout (Delete) is never undone by a slower
// request that saves afterwards.
type CASStore interface {
	SessionStore
	// LoadVersion returns the data saved under id and its version; v is 0,
	// and err nil, when there is no session. It fails with ErrInvalidID
	// for an ID CheckID refuses.
	LoadVersion(ctx context.Context, id string) (data []byte, v Version, err error)
	// SaveIf stores data under id until expiry only if the session's
	// current version is v (0: only if there is no session), and returns
	// the new version. It fails with ErrConflict, storing nothing, when the
	// session changed or was deleted since v was loaded. An expiry that is
	// not in the future deletes the session, still only if its version is
	// v, and returns version 0 (the Manager's logout is such a delete).
	//
	// Every save, by SaveIf or Save, makes a new version, and a version
	// is never reused for an ID, not even after a Delete; a version that
	// never existed conflicts. SaveIf fails with ErrInvalidID for an ID
	// CheckID refuses. Concurrent load-modify-SaveIf loops that retry on
	// ErrConflict lose no update. When
	// the store's client re-sends a SaveIf whose reply was lost, the
	// re-sent copy may answer ErrConflict for the write the first copy
	// made: the Manager recognises its own commits, as long as fewer than
	// 8 other commits of the session land between the two copies.
	SaveIf(ctx context.Context, id string, data []byte, expiry time.Time, v Version) (Version, error)
}

// A UserIndex keeps, for each user, the IDs of the user's sessions, so
// "log out everywhere" lists and destroys them without scanning the
// store.
type UserIndex interface {
	// AddUserSession records that session id, which expires at expiry,
	// belongs to user; adding it again is not an error. The Manager calls
	// it before the session exists under id. It fails with ErrInvalidID
	// for an empty user or an ID CheckID refuses.
	AddUserSession(ctx context.Context, user, id string, expiry time.Time) error
	// UserSessions returns the IDs of user's sessions that have not
	// expired (a session deleted on its own may still be listed until its
	// expiry; loading it finds nothing), and only user's: an unknown user
	// has none, and no error.
	UserSessions(ctx context.Context, user string) ([]string, error)
	// DeleteUser deletes every session of user and the user's index,
	// leaving other users' sessions; deleting a user with none is not an
	// error.
	DeleteUser(ctx context.Context, user string) error
}

// MaxIDLength bounds session IDs given to a store.
const MaxIDLength = 200
