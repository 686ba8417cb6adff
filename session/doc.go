// Package session keeps HTTP sessions where every clone of a service can
// read them: a SessionStore shared by all clones (Redis, Memcached, or
// memory for a single process and tests), and a Manager middleware that
// loads a request's session, lets handlers read and change it, and commits
// the changes when the handler starts its response.
//
// # Use
//
//	store, err := session.NewMemory(session.MemoryConfig{}) // or redisstore / memcachedstore
//	sessions, err := session.NewManager(store, session.Config{})
//	http.ListenAndServe(addr, sessions.LoadAndSave(mux))
//
// Handlers use the request's context:
//
//	n, ok := session.Get[int](ctx, "n")
//	session.Put(ctx, "cart", cart)                         // gob.Register(Cart{}) once
//	session.Update(ctx, "n", func(n int) int { return n + 1 }) // safe under concurrency
//	msg, _ := session.Pop[string](ctx, "flash")
//	session.Remove(ctx, "k"); session.Clear(ctx)
//	session.Login(ctx, user)   // RenewID + record the user in the user index
//	session.RenewID(ctx)       // on any change of privilege
//	session.Destroy(ctx)       // logout
//	manager.DestroyAll(ctx, user) // log the user out everywhere
//
// The default Codec, BinaryCodec, encodes map[string]any in a compact
// binary form: values of type string, bool, the sized and unsized ints
// and uints, float32, float64, []byte and time.Time (and nil) are written
// directly, without reflection; a value of any other concrete type is
// encoded on its own with encoding/gob, so it must be registered with
// gob.Register before it is Put, or the commit fails. Decoding gives back
// the stored Go types, and Get[T] reports false when the stored value is
// not a T (an int stays an int, a Cart a Cart). BinaryCodec also reads
// sessions written by GobCodec, the earlier default, which stays
// available as Config.Codec.
//
// # What every clone sees
//
// A session lives only in the store; a clone keeps nothing between
// requests. A request sees the session as the store held it when the
// request started, plus its own changes. Its changes are committed just
// before the first byte of its response header is written (WriteHeader,
// Write or Flush; or when the handler returns without writing), so the
// Set-Cookie header can carry a new ID; changes made after the response
// has started are not saved. After the commit, every clone's next request
// sees them (as far as the store itself is consistent: a Redis replica
// read, for example, is not).
//
// # The commit: merge, compare-and-swap, tombstones
//
// Concurrent requests of one session lose no update. A request records
// what it changed — the keys it Put, Updated or Removed, a Clear, a Login —
// as a list of operations, and the commit replays only those over the
// session as stored at commit time, never writing back values it merely
// read. With a CASStore (all stores of this module):
//
//	loop (at most Config.CommitAttempts times, with jittered backoff):
//	    data, v := LoadVersion(id)   // the first attempt reuses the request's load
//	    v == 0 → the session was deleted (a logout) or expired while the
//	             request ran: drop the changes; never recreate it
//	    a forwarding record → the session was renewed concurrently: follow
//	             it and commit into the new ID
//	    values := decode(data); replay this request's operations
//	    SaveIf(id, values, expiry, v); ErrConflict → loop
//
// Within one process the commits of a session are serialized by a striped
// lock, so its concurrent requests queue rather than spin on conflicts;
// compare-and-swap arbitrates between clones.
//
// Put is last-writer-wins per key; Update(fn) composes, because fn is
// re-applied on each attempt to the value as stored then, so 100
// concurrent increments add exactly 100. When the attempts run out the
// request gets the ErrorHandler response: a change is never lost silently.
//
// Without a CASStore the Manager re-loads, merges and saves (two round
// trips, best effort): serialized within a process, but a commit from
// another clone between that load and save is overwritten, and a logout in that window can be undone. Use a CASStore
// where that matters.
//
// A request that changed nothing writes nothing, except an idle touch:
// when the session's stored expiry would move forward by at least
// TouchInterval (default IdleTimeout/10), the request re-saves it with
// SaveIf (a conflict means someone else just wrote it: nothing to do).
// Most read-only requests therefore cost one store round trip and no
// write, at the price of a session ending up to TouchInterval before
// IdleTimeout after its last request.
//
// # Lifetime and idle timeout
//
// A session records when it was created. It expires at
// min(created+Lifetime, last write+IdleTimeout); the absolute deadline is
// never extended. Defaults: Lifetime 24h, IdleTimeout 30m.
//
// # IDs, renewal, logout
//
// IDs are 256 bits from crypto/rand, 43 characters of unpadded base64url.
// Strict mode: a cookie whose value is not such an ID never reaches the
// store, and an ID the store does not know (forged, expired, logged out)
// starts a fresh session that gets a new ID when it is first saved; a
// client-supplied ID is never adopted. A stale cookie on a request that
// saves nothing is deleted.
//
// RenewID (and Login) gives the session a new ID at commit: the session
// is saved under the new ID and the old ID's record is replaced, with
// compare-and-swap, by a forwarding record that lives RenewGrace (default
// 10s). A request presenting the old ID in that window — one already in
// flight in another tab — loads the new session, commits into it, and is
// sent the new ID; after the grace the old ID is unknown.
//
// Destroy deletes the session from the store at once and the response
// deletes the cookie; a slower concurrent request finds no session at
// commit and drops its changes instead of resurrecting it. Values Put
// after Destroy in the same request start a fresh session with a new ID.
// Login lists the session under the user in a store's UserIndex, and
// Manager.DestroyAll deletes all of a user's sessions.
//
// # Store failures
//
// A store that fails while the request's session is loaded or committed
// makes the Manager answer with Config.ErrorHandler (default: 503 with a
// generic body; the error text is never sent) and discard the handler's
// response, headers included. It never falls back to a fresh session, so
// a user is never served or handed another session, and nothing is
// written under an ID the Manager did not load or issue. Nothing is
// cached between requests, so a store that comes back is used by the next
// request without a restart.
//
// # Cookie and headers
//
// Secure defaults: name "sid" (generic), Path "/", no Domain, HttpOnly,
// Secure, SameSite=Lax, and no Expires (CookieConfig.Persist sets Expires
// to the absolute deadline). A response that sets or deletes the cookie
// carries Cache-Control: no-cache="Set-Cookie" and Vary: Cookie, so
// shared caches do not store it.
package session
