// Package redisstore keeps sessions in Redis, through the caller's
// redis.UniversalClient: a single server, a Redis Cluster, Sentinel or a
// Ring all work unchanged. The Store never closes the client.
//
// # Layout
//
// A session lives in one Redis hash at
//
//	<prefix>{<id>}
//
// with the fields d (the data) and v (its version, for compare-and-swap),
// and expires with PEXPIREAT at the millisecond the caller gave. The {hash
// tag} holds the whole ID, so everything about one session sits in one
// Cluster slot and every write is a single-key Lua script. An ID made only of
// base64url characters [A-Za-z0-9_-] (what the Manager issues) appears as it
// is; any other ID — one holding '{' or '}', which would break the tag, or
// any other byte — is written as '~' followed by its base64url encoding.
// '~' is not a base64url character, so the two forms never collide.
//
// A user's index is a sorted set at <prefix>user:{<user>} (the user encoded
// the same way) of session ID → expiry in Unix milliseconds; the set itself
// expires with the latest of its sessions.
//
// # Round trips
//
// Load is one HGET, LoadVersion one HMGET. Save, SaveIf and AddUserSession
// are one script each (EVALSHA, falling back to EVAL once after a server
// restart flushed the script cache). Delete is one DEL.
//
// # Versions
//
// Each save increments v. A session created from nothing starts at a random
// version below 2^48 rather than at 1, so a version loaded from an earlier
// life of the same ID (deleted, then created again) almost surely does not
// match the new one: SaveIf cannot mistake a recreated session for the one
// the caller loaded.
//
// # Expiry and clocks
//
// Expiries are absolute times sent in milliseconds, so Redis's clock decides
// when a session dies; keep clocks in sync. An expiry that is not after the
// caller's time.Now() deletes the session (SaveIf deletes only if the
// version matches).
//
// # Failures and time bounds
//
// Every failure to reach Redis is an error wrapping the client's ("redisstore:
// load: ..."), never a silent "not found"; redis.Nil alone means "no
// session". No error names a key: keys hold session IDs.
//
// Every call honours its context's deadline, which is how the Manager's
// StoreTimeout bounds a request against a hung server: New refuses a
// go-redis client without ContextTimeoutEnabled, which would ignore it.
//
// go-redis re-sends a command whose connection broke (MaxRetries, 3 by
// default), so a SaveIf whose reply was lost may be applied and then
// answered ErrConflict by its own re-sent copy. The Manager tells such a
// commit from a conflicting one by its commit log (see package session). The Store keeps no connection state of its own: when the server
// comes back, the client's pool reconnects and the same Store works again
// (go-redis, after repeated dial failures, answers with the last dial error
// until its background redial succeeds, about a second later).
//
// # Running on replicated Redis
//
// On Sentinel (redis.NewFailoverClient) or a Cluster with replicas, every
// call rides out the errors of a master switch (refused connections,
// READONLY, LOADING, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, MOVED past go-redis's
// redirections): it is tried again, with backoff, until its context's
// deadline (the Manager's StoreTimeout), or for 30 s without one; only then
// is the last error returned. A switch costs the requests in flight the
// switch's time (kill of the master to the first successful commit: about 2 s
// with down-after-milliseconds 500-1000 on Sentinel, node timeout 1 s on a
// Cluster), not an error.
//
// Replication is asynchronous, so what a switch keeps depends on
// Config.WaitReplicas:
//
//   - 0 (the default): a commit or logout is acknowledged once the master has
//     it. A failover can lose the master's last writes: an acknowledged
//     commit rolled back (the user's last change gone), and an acknowledged
//     logout undone (the session valid again). TestLossyFailover forces it;
//     through 20 switches TestFailoverSentinel saw 12 of 16 sessions rolled
//     back (mostly in the window of a forced failover where the old master,
//     not yet demoted by the sentinels, still takes writes), and
//     TestFailoverCluster 1 of 16.
//   - n > 0: Save, SaveIf (commits, and logouts, which are SaveIf with an
//     expiry in the past), Delete, AddUserSession and DeleteUser return only
//     once n replicas confirmed them (WAIT), or fail with an error wrapping
//     ErrNotReplicated after WaitTimeout: the write is then on the master,
//     and may or may not survive a failover, and the caller was not told it
//     is safe. An acknowledged write survives any failover that promotes a
//     replica among the n; with n equal to the number of replicas, any
//     failover. No acknowledged commit or logout was undone in the failover
//     tests (20 switches on Sentinel and on a Cluster). The cost: a commit
//     takes the replica's round trip more (BenchmarkCommit on loopback: 1.8×
//     to 2.3× the default's latency); with fewer than n replicas up (a dead master's
//     replica promoted and not yet given a replica), writes fail with
//     ErrNotReplicated after WaitTimeout.
//
// Loads never wait for replicas. With WaitReplicas they also check, in the same
// round trip (ROLE), that they read a master: after a Sentinel failover a client
// may dial the old master, demoted to a replica, until every sentinel has heard
// of the switch, and read from it a session older than commits the new master's
// replicas confirmed (the failover tests saw 4 of 16 sessions read that way in
// 20 switches before the check); such a read is retried on the master.
//
// # DeleteUser is not atomic across slots
//
// A user's sessions live in different slots (on a Cluster, on different
// nodes), so DeleteUser cannot be one script. It reads the index, deletes
// the listed sessions in one pipeline, and then removes from the index only
// the IDs it deleted. A session added concurrently — after the read — is
// not deleted, but it stays in the index, so a second DeleteUser finds it.
// If DeleteUser fails part way, the index still lists every session that
// may remain, and calling it again finishes the job.
package redisstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/internal/redisha"
	"github.com/scaleout/scaleout/internal/redisopt"
	"github.com/scaleout/scaleout/session"
)

// DefaultPrefix is the key prefix used when Config.Prefix is empty.
const DefaultPrefix = "scaleout:session:"

// Config configures a Store. The zero value is valid.
type Config struct {
	// Prefix starts every key the store writes; default DefaultPrefix. It
	// must not contain '{' or '}' (the store puts its own hash tag after it).
	Prefix string
	// MaxBytes, when positive, bounds the data of one session: a larger
	// Save or SaveIf fails with session.ErrTooLarge and stores nothing.
	// 0 means no limit but Redis's own (512 MiB). Negative is invalid.
	MaxBytes int
	// WaitReplicas, when positive, makes every write that a user relies on
	// (Save, SaveIf: commits and logouts; Delete; AddUserSession and
	// DeleteUser) wait until that many replicas confirm it (WAIT), so that a
	// failover to one of them keeps it; see "Running on replicated Redis" in
	// the package doc. 0 (the default) answers once the master has it.
	// Negative is invalid, and so is a client other than *redis.Client
	// (single or Sentinel) or *redis.ClusterClient.
	WaitReplicas int
	// WaitTimeout bounds the wait of WaitReplicas; a write not confirmed in
	// time fails with an error wrapping ErrNotReplicated. Default
	// DefaultWaitTimeout; it must be at least 1 ms, and set only with
	// WaitReplicas.
	WaitTimeout time.Duration
}

// Store is a session.SessionStore, session.CASStore and session.UserIndex
// on Redis. It is safe for concurrent use.
type Store struct {
	c        redis.UniversalClient
	prefix   string
	maxBytes int
	replicas int           // WaitReplicas
	wait     time.Duration // WaitTimeout
}

var (
	_ session.SessionStore = (*Store)(nil)
	_ session.CASStore     = (*Store)(nil)
	_ session.UserIndex    = (*Store)(nil)
)

// New returns a Store on client, which the Store never closes. It refuses
// a go-redis client whose options leave ContextTimeoutEnabled false: such
// a client ignores the deadline of the context on its sockets, so a hung
// server would hold every request for ReadTimeout × (MaxRetries+1)
// whatever the Manager's StoreTimeout says.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("redisstore: nil client: %w", session.ErrInvalidConfig)
	}
	if err := redisopt.Check(client); err != nil {
		return nil, fmt.Errorf("redisstore: %w: %w", session.ErrInvalidConfig, err)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q contains '{' or '}': %w", cfg.Prefix, session.ErrInvalidConfig)
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("redisstore: negative MaxBytes %d: %w", cfg.MaxBytes, session.ErrInvalidConfig)
	}
	if err := cfg.checkWait(client); err != nil {
		return nil, err
	}
	return &Store{c: client, prefix: cfg.Prefix, maxBytes: cfg.MaxBytes, replicas: cfg.WaitReplicas, wait: cfg.WaitTimeout}, nil
}

// safe reports whether s holds only base64url characters, so it can stand
// in a hash tag as it is.
func safe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// tagged returns prefix + infix + "{" + tag(s) + "}".
func (s *Store) tagged(infix, v string) string {
	if safe(v) {
		var b strings.Builder
		b.Grow(len(s.prefix) + len(infix) + len(v) + 2)
		b.WriteString(s.prefix)
		b.WriteString(infix)
		b.WriteByte('{')
		b.WriteString(v)
		b.WriteByte('}')
		return b.String()
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(s.prefix)+len(infix)+enc.EncodedLen(len(v))+3)
	buf = append(buf, s.prefix...)
	buf = append(buf, infix...)
	buf = append(buf, '{', '~')
	buf = enc.AppendEncode(buf, []byte(v))
	buf = append(buf, '}')
	return string(buf)
}

func (s *Store) key(id string) string       { return s.tagged("", id) }
func (s *Store) userKey(user string) string { return s.tagged("user:", user) }

// saveScript writes a session. KEYS[1] the session; ARGV: [1] expected
// version ("" for an unconditional save, "0" for "no session"), [2] data,
// [3] expiry in Unix ms, or "" to delete, [4] the version to start at if
// the session is new. Returns the new version, 0 after a delete, or -1 when
// the version did not match (nothing written).
var saveScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] ~= '' and (cur or '0') ~= ARGV[1] then
	return -1
end
if ARGV[3] == '' then
	redis.call('DEL', KEYS[1])
	return 0
end
local v
if cur then
	redis.call('HSET', KEYS[1], 'd', ARGV[2])
	v = redis.call('HINCRBY', KEYS[1], 'v', 1)
else
	redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', ARGV[4])
	v = tonumber(ARGV[4])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return v
`)

// addUserScript: KEYS[1] the user's index; ARGV: [1] session ID, [2] its
// expiry (ms), [3] now (ms). Adds the ID, drops expired ones and makes the
// index expire with its latest session.
var addUserScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
	redis.call('PEXPIREAT', KEYS[1], last[2])
end
return 0
`)

// Load implements session.SessionStore.
func (s *Store) Load(ctx context.Context, id string) ([]byte, bool, error) {
	if err := session.CheckID(id); err != nil {
		return nil, false, err
	}
	key := s.key(id)
	data, err := redisha.Value(ctx, s.c, func(ctx context.Context) ([]byte, error) {
		if s.replicas > 0 {
			var cmd *redis.StringCmd
			if _, err := redisha.MasterRead(ctx, s.c, key, func(p redis.Pipeliner) { cmd = p.HGet(ctx, key, "d") }); err != nil {
				return nil, err
			}
			return cmd.Bytes()
		}
		return s.c.HGet(ctx, key, "d").Bytes()
	})
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redisstore: load: %w", err)
	}
	return data, true, nil
}

// LoadVersion implements session.CASStore.
func (s *Store) LoadVersion(ctx context.Context, id string) ([]byte, session.Version, error) {
	if err := session.CheckID(id); err != nil {
		return nil, 0, err
	}
	key := s.key(id)
	vals, err := redisha.Value(ctx, s.c, func(ctx context.Context) ([]any, error) {
		if s.replicas > 0 {
			var cmd *redis.SliceCmd
			if _, err := redisha.MasterRead(ctx, s.c, key, func(p redis.Pipeliner) { cmd = p.HMGet(ctx, key, "d", "v") }); err != nil {
				return nil, err
			}
			return cmd.Result()
		}
		return s.c.HMGet(ctx, key, "d", "v").Result()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("redisstore: load: %w", err)
	}
	d, ok1 := vals[0].(string)
	vs, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return nil, 0, nil // missing or expired (a half-written hash cannot exist: writes are scripts)
	}
	v, err := strconv.ParseUint(vs, 10, 64)
	if err != nil || v == 0 {
		// The key holds the session ID, a secret: it is not named.
		return nil, 0, fmt.Errorf("redisstore: load: bad version %q in a session hash", vs)
	}
	return []byte(d), session.Version(v), nil
}

// Save implements session.SessionStore.
func (s *Store) Save(ctx context.Context, id string, data []byte, expiry time.Time) error {
	_, err := s.save(ctx, "save", id, data, expiry, "")
	return err
}

// SaveIf implements session.CASStore.
func (s *Store) SaveIf(ctx context.Context, id string, data []byte, expiry time.Time, v session.Version) (session.Version, error) {
	return s.save(ctx, "save if", id, data, expiry, strconv.FormatUint(uint64(v), 10))
}

func (s *Store) save(ctx context.Context, op, id string, data []byte, expiry time.Time, expect string) (session.Version, error) {
	if err := session.CheckID(id); err != nil {
		return 0, err
	}
	if s.maxBytes > 0 && len(data) > s.maxBytes {
		return 0, fmt.Errorf("redisstore: %s: %d bytes, limit %d: %w", op, len(data), s.maxBytes, session.ErrTooLarge)
	}
	key := s.key(id)
	at := unixMilliCeil(expiry)
	if at <= time.Now().UnixMilli() {
		if expect == "" {
			if err := s.del(ctx, key); err != nil {
				return 0, fmt.Errorf("redisstore: %s: %w", op, err)
			}
			return 0, nil
		}
		return s.run(ctx, op, key, expect, nil, "")
	}
	return s.run(ctx, op, key, expect, data, strconv.FormatInt(at, 10))
}

// unixMilliCeil rounds t up to a millisecond, so a session never dies
// before the expiry it was given.
func unixMilliCeil(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

func (s *Store) run(ctx context.Context, op, key, expect string, data []byte, at string) (session.Version, error) {
	start := rand.Uint64N(1<<48-1) + 1
	n, err := s.script(ctx, saveScript, []string{key}, expect, data, at, start)
	if err != nil {
		return 0, fmt.Errorf("redisstore: %s: %w", op, err)
	}
	if n < 0 {
		return 0, session.ErrConflict
	}
	return session.Version(n), nil
}

// Delete implements session.SessionStore.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := session.CheckID(id); err != nil {
		return err
	}
	if err := s.del(ctx, s.key(id)); err != nil {
		return fmt.Errorf("redisstore: delete: %w", err)
	}
	return nil
}

func checkUser(user string) error {
	if user == "" {
		return fmt.Errorf("redisstore: empty user: %w", session.ErrInvalidID)
	}
	return nil
}

// AddUserSession implements session.UserIndex: one script on the user's
// index, which also drops expired entries and makes the index expire with
// its latest session.
func (s *Store) AddUserSession(ctx context.Context, user, id string, expiry time.Time) error {
	if err := checkUser(user); err != nil {
		return err
	}
	if err := session.CheckID(id); err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	_, err := s.script(ctx, addUserScript, []string{s.userKey(user)}, id, unixMilliCeil(expiry), now)
	if err != nil {
		return fmt.Errorf("redisstore: add user session: %w", err)
	}
	return nil
}

// UserSessions implements session.UserIndex.
func (s *Store) UserSessions(ctx context.Context, user string) ([]string, error) {
	if err := checkUser(user); err != nil {
		return nil, err
	}
	ukey := s.userKey(user)
	ids, err := redisha.Value(ctx, s.c, func(ctx context.Context) ([]string, error) {
		return s.c.ZRangeByScore(ctx, ukey, &redis.ZRangeBy{
			Min: "(" + strconv.FormatInt(time.Now().UnixMilli(), 10),
			Max: "+inf",
		}).Result()
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: user sessions: %w", err)
	}
	return ids, nil
}

// DeleteUser implements session.UserIndex. It is not atomic: see the
// package doc.
func (s *Store) DeleteUser(ctx context.Context, user string) error {
	if err := checkUser(user); err != nil {
		return err
	}
	ukey := s.userKey(user)
	ids, err := redisha.Value(ctx, s.c, func(ctx context.Context) ([]string, error) {
		return s.c.ZRange(ctx, ukey, 0, -1).Result()
	})
	if err != nil {
		return fmt.Errorf("redisstore: delete user: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	if err := s.delSessions(ctx, ids); err != nil { // the first failed command's error
		return fmt.Errorf("redisstore: delete user: %w", err)
	}
	// Remove only what was deleted: an ID added meanwhile stays listed.
	// ZREM of the last member deletes the index.
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	if err := s.write(ctx, ukey, func(p redis.Pipeliner) { p.ZRem(ctx, ukey, members...) }); err != nil {
		return fmt.Errorf("redisstore: delete user: %w", err)
	}
	return nil
}
