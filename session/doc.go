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
//	err := session.Put(ctx, "cart", cart)                          // any type; no registration
//	n, err := session.Update(ctx, "n", func(n int) int { return n + 1 }) // safe under concurrency
//	msg, _ := session.Pop[string](ctx, "flash")
//	session.Remove(ctx, "k"); session.Clear(ctx)
//	session.Login(ctx, user)   // a new ID, the user recorded (defeats fixation)
//	session.RenewID(ctx)       // a new ID on any other change of privilege
//	session.Rotate(ctx)        // a new ID, same privilege (periodic rotation)
//	session.SetLifetime(ctx, session.Lifetime{Absolute: 30 * 24 * time.Hour, Persist: true}) // "remember me"
//	session.Destroy(ctx)       // logout
//	sessions.DestroyAll(ctx, user)                      // log the user out everywhere
//	sessions.UserSessions(ctx, user)                    // the user's devices
//	sessions.DestroySession(ctx, user, info.Handle)    // end one of them
//
// Put, Update, Remove, Clear and the ID functions fail with ErrNoSession
// outside a session instead of doing nothing, and Put and Update fail at
// once for a value the codec cannot encode.
//
// Code outside an HTTP request (a WebSocket handler, a gRPC method) uses
// Manager.Load with a token and Manager.Commit, which returns the token to
// hand back. With Config.Header the middleware carries the ID in a header
// instead of a cookie, for API and mobile clients.
//
// # Values
//
// The default Codec, BinaryCodec, writes values of type string, bool, the
// sized and unsized ints and uints, float32, float64, []byte and
// time.Time (and nil) directly; a value of any other type is stored as
// JSON with the name of its Go type and read back by Get[T] of that type,
// so application types need no registration. Decoding what the store
// returns never panics and allocates in proportion to its size: the store
// is shared, and gob, which can declare a map of any size in a few bytes,
// is never decoded.
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
// # The commit: merge, compare-and-swap, exactly once
//
// Concurrent requests of one session lose no update. A request records
// what it changed — the keys it Put, Updated or Removed, a Clear, a Login —
// as a list of operations, and the commit replays only those over the
// session as stored at commit time, never writing back values it merely
// read. With a CASStore (all stores of this module):
//
//	loop (at most Config.CommitAttempts times, with jittered backoff):
//	    data, v := LoadVersion(id)   // the first attempt reuses the request's load
//	    no session → it was destroyed (a logout) or expired while the
//	             request ran: drop the changes; never recreate it
//	    renewed by Rotate, within RotateGrace → follow it and commit into the new ID
//	    renewed by Login or RenewID → drop the changes (see below)
//	    our own earlier attempt is in the session's commit log → done
//	    values := decode(data); replay this request's operations
//	    SaveIf(id, values, expiry, v); ErrConflict → loop
//
// Each commit carries a random commit ID, and a session keeps the IDs of
// its last 64 commits. A write whose reply is lost — the store applied it,
// and the client saw a broken connection, or re-sent it and got a
// conflict, as go-redis does by default — is recognised on the next read
// and never applied twice. When the write failed and more than 64 commits
// followed before the Manager could read the session back, it cannot tell
// and the request gets ErrOutcomeUnknown (and the error response). One
// case remains that it cannot tell from a plain conflict: a store client
// that re-sends a write after a lost reply while 64 or more other commits
// of the same session land before the re-send's conflict comes back could
// make it apply one twice. That takes 64 commits of one session within
// one re-send's delay (go-redis: a reconnection and its retry backoff,
// within StoreTimeout); under injected faults the chaos tests of this
// module saw up to 10.
//
// Within one process the commits of a session are serialized by a striped
// lock, so its concurrent requests queue rather than spin on conflicts;
// compare-and-swap arbitrates between clones. Put is last-writer-wins per
// key; Update(fn) composes, because fn is re-applied on each attempt to
// the value as stored then, so 100 concurrent increments add exactly 100.
// When the attempts run out the request gets the ErrorHandler response: a
// change is never lost silently.
//
// Without a CASStore the Manager re-loads, merges and saves (two round
// trips, best effort): serialized within a process, but a commit from
// another clone between that load and save is overwritten, and a logout in
// that window can be undone. Use a CASStore where that matters.
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
// never extended. Defaults: Lifetime 24h, IdleTimeout 30m. SetLifetime
// gives one session limits and cookie persistence of its own.
//
// # IDs, login, renewal
//
// IDs are 256 bits from crypto/rand, 43 characters of unpadded base64url.
// Strict mode: a cookie whose value is not such an ID never reaches the
// store, and an ID the store does not know (forged, expired, logged out)
// starts a fresh session that gets a new ID when it is first saved; a
// client-supplied ID is never adopted. A stale cookie on a request that
// saves nothing is deleted.
//
// Login and RenewID change the privilege the session carries, and give it
// a new ID at commit. From then on the old ID never reaches the session:
// a request presenting it — an attacker who planted it before the login
// (session fixation), or another tab of the same browser whose request
// was in flight — is served as a fresh visitor, is never sent the new ID,
// and its writes are dropped, not merged into the logged-in session (an
// attacker adding to a victim's cart). For RotateGrace (default 10s) after
// the login, such a request's response leaves the client's cookie alone,
// so a slow tab does not undo the login in the browser; a Login or RenewID
// of its own (a login form submitted twice) starts a fresh session with
// only its own changes. The values the session holds before the login are
// kept: Clear first if anonymous data must not follow the user in.
//
// Rotate changes no privilege: the old ID forwards to the session for
// RotateGrace, so a request in flight with it reads and writes the
// session and is sent the new ID, however many rotations (up to 64) came
// since within the grace; then it is unknown.
//
// The old ID's record (a renewal record naming the new ID) stays in the
// store until the session's absolute deadline, so that a logout can follow
// it.
//
// # Logout
//
// Destroy deletes the session at once under every ID of its family: the
// ID the request loaded and every ID a concurrent Login, RenewID or Rotate
// has moved the session to since (it follows the renewal records, and
// deletes the live session with compare-and-swap, so a renewal that races
// it either finishes first and is followed, or fails and deletes its new
// copy). A logged-out session is never served again under any ID, however
// requests race the logout; a slower concurrent request finds no session
// at commit and drops its changes instead of resurrecting it. The response
// deletes the cookie. Values Put after Destroy start a fresh session with
// a new ID. Login lists the session under the user in a store's UserIndex
// (before the session exists under its new ID, so nothing escapes it);
// Manager.DestroyAll ends every session of the user the same way,
// Manager.UserSessions lists them (device, created, last seen) under
// handles that are not their IDs, and Manager.DestroySession ends one.
//
// # Store failures
//
// A store that fails while the request's session is loaded or committed
// makes the Manager answer with Config.ErrorHandler (default: log the
// error through Config.Logger, slog.Default() unless set, and answer 503
// with a generic body; the error text is never sent) and discard the
// handler's response, headers included. Nothing the Manager logs, and no
// error of this module's stores, contains a session ID. The Manager never
// falls back to a fresh session, so a user is never served or handed
// another session, and nothing is written under an ID the Manager did not
// load or issue. Nothing is cached between requests, so a store that
// comes back is used by the next request without a restart.
//
// Config.StoreTimeout (default 3s) bounds the time a request spends
// loading its session, and again committing or destroying it, against a
// store that hangs: redisstore refuses a go-redis client that would ignore
// the deadline (ContextTimeoutEnabled unset); memcachedstore's client
// Timeout bounds each of its round trips (gomemcache takes no context).
//
// # Cookie and headers
//
// Secure defaults: name "sid" (generic), Path "/", no Domain, HttpOnly,
// Secure, SameSite=Lax, and no Expires (CookieConfig.Persist, or
// SetLifetime's Persist for one session, sets Expires to the absolute
// deadline). CookieConfig.HostPrefix names it "__Host-sid", which browsers
// accept only from a secure origin with Path "/" and no Domain, so a
// subdomain cannot plant an ID. A response that sets or deletes the cookie
// carries Cache-Control: no-cache="Set-Cookie" and Vary: Cookie, so shared
// caches do not store it.
//
// # Memory store
//
// Memory is bounded (MemoryConfig.MaxSessions, default 100,000 IDs): a
// new session in a full store evicts the least recently used one, so a
// flood of anonymous visitors cannot grow it without limit.
package session
