// Real-time tests (Redis keeps its own clock; no synctest bubble reaches
// it): TestExpiry and TestUserIndex wait for real expiries on the server,
// TestServerFailure kills and restarts a private redis-server and waits for
// the client to redial.

package redisstore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/redisstore"
)

func eachBackend(t *testing.T, f func(t *testing.T, c redis.UniversalClient, s *redisstore.Store)) {
	for _, b := range testenv.RedisTopologies {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			c := b.Client(t)
			s, err := redisstore.New(c, redisstore.Config{Prefix: testenv.Prefix(t)})
			require.NoError(t, err)
			f(t, c, s)
		})
	}
}

func TestNewConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true}) // never dialled
	t.Cleanup(func() { _ = c.Close() })
	for _, tc := range []struct {
		name string
		cfg  redisstore.Config
		ok   bool
	}{
		{"zero", redisstore.Config{}, true},
		{"prefix", redisstore.Config{Prefix: "app:s:"}, true},
		{"max bytes", redisstore.Config{MaxBytes: 10}, true},
		{"brace open", redisstore.Config{Prefix: "a{b"}, false},
		{"brace close", redisstore.Config{Prefix: "a}b"}, false},
		{"negative max", redisstore.Config{MaxBytes: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := redisstore.New(c, tc.cfg)
			if tc.ok {
				require.NoError(t, err)
				require.NotNil(t, s)
			} else {
				require.ErrorIs(t, err, session.ErrInvalidConfig)
			}
		})
	}
	_, err := redisstore.New(nil, redisstore.Config{})
	require.ErrorIs(t, err, session.ErrInvalidConfig)

	// A client that ignores context deadlines is refused, naming the option.
	for _, c := range []redis.UniversalClient{
		redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}),
		redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}}),
	} {
		_, err := redisstore.New(c, redisstore.Config{})
		require.ErrorIs(t, err, session.ErrInvalidConfig)
		require.ErrorContains(t, err, "ContextTimeoutEnabled")
		_ = c.Close()
	}
}

func TestBasics(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient, s *redisstore.Store) {
		ctx := t.Context()
		exp := time.Now().Add(time.Hour)
		ids := []string{
			"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			"a{b}c", "}", "{", "{}", "~YQ", "a", "sp ace", "nul\x00byte", "\xff\xfe",
			strings.Repeat("{", session.MaxIDLength),
		}
		for i, id := range ids {
			_, found, err := s.Load(ctx, id)
			require.NoError(t, err)
			require.False(t, found, id)
			require.NoError(t, s.Save(ctx, id, []byte("v"+strconv.Itoa(i)), exp))
		}
		for i, id := range ids {
			d, found, err := s.Load(ctx, id)
			require.NoError(t, err)
			require.True(t, found, id)
			require.Equal(t, "v"+strconv.Itoa(i), string(d), id)
		}
		// Empty data is a session.
		require.NoError(t, s.Save(ctx, "empty", nil, exp))
		d, found, err := s.Load(ctx, "empty")
		require.NoError(t, err)
		require.True(t, found)
		require.Empty(t, d)

		for _, id := range ids {
			require.NoError(t, s.Delete(ctx, id))
			_, found, err := s.Load(ctx, id)
			require.NoError(t, err)
			require.False(t, found)
		}
		require.NoError(t, s.Delete(ctx, "never-there"))

		for _, bad := range []string{"", strings.Repeat("x", session.MaxIDLength+1)} {
			_, _, err := s.Load(ctx, bad)
			require.ErrorIs(t, err, session.ErrInvalidID)
			require.ErrorIs(t, s.Save(ctx, bad, nil, exp), session.ErrInvalidID)
			require.ErrorIs(t, s.Delete(ctx, bad), session.ErrInvalidID)
			_, err = s.SaveIf(ctx, bad, nil, exp, 0)
			require.ErrorIs(t, err, session.ErrInvalidID)
		}
	})
}

func TestKeyLayout(t *testing.T) {
	t.Parallel()
	c := testenv.RedisClient(t)
	p := testenv.Prefix(t)
	s, err := redisstore.New(c, redisstore.Config{Prefix: p})
	require.NoError(t, err)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	const readable = "abcDEF012-_abcDEF012-_abcDEF012-_abcDEF0123"
	require.NoError(t, s.Save(ctx, readable, []byte("x"), exp))
	require.NoError(t, s.Save(ctx, "a{b}", []byte("y"), exp))
	keys, err := c.Keys(ctx, p+"*").Result()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{p + "{" + readable + "}", p + "{~YXtifQ}"}, keys)
	got, err := c.HGetAll(ctx, p+"{"+readable+"}").Result()
	require.NoError(t, err)
	require.Equal(t, "x", got["d"])
	require.NotEmpty(t, got["v"])
	ms, err := c.PExpireTime(ctx, p+"{"+readable+"}").Result()
	require.NoError(t, err)
	require.Equal(t, exp.UnixMilli(), ms.Milliseconds())

	// On the cluster, a session's key hashes on the (encoded) ID alone.
	cc := testenv.RedisClusterClient(t)
	for key, tag := range map[string]string{p + "{" + readable + "}": readable, p + "{~YXtifQ}": "~YXtifQ"} {
		want, err := cc.ClusterKeySlot(ctx, tag).Result()
		require.NoError(t, err)
		got, err := cc.ClusterKeySlot(ctx, key).Result()
		require.NoError(t, err)
		require.Equal(t, want, got, key)
	}
}

func TestMaxBytes(t *testing.T) {
	t.Parallel()
	c := testenv.RedisClient(t)
	s, err := redisstore.New(c, redisstore.Config{Prefix: testenv.Prefix(t), MaxBytes: 4})
	require.NoError(t, err)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	require.NoError(t, s.Save(ctx, "id", []byte("1234"), exp))
	require.ErrorIs(t, s.Save(ctx, "id", []byte("12345"), exp), session.ErrTooLarge)
	_, err = s.SaveIf(ctx, "id", []byte("12345"), exp, 0)
	require.ErrorIs(t, err, session.ErrTooLarge)
	d, _, err := s.Load(ctx, "id")
	require.NoError(t, err)
	require.Equal(t, "1234", string(d))
}

func TestCAS(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, _ redis.UniversalClient, s *redisstore.Store) {
		ctx := t.Context()
		exp := time.Now().Add(time.Hour)
		const id = "cas{id}"

		d, v, err := s.LoadVersion(ctx, id)
		require.NoError(t, err)
		require.Nil(t, d)
		require.Zero(t, v)

		_, err = s.SaveIf(ctx, id, []byte("a"), exp, 7)
		require.ErrorIs(t, err, session.ErrConflict, "no session: only v=0 matches")

		v1, err := s.SaveIf(ctx, id, []byte("a"), exp, 0)
		require.NoError(t, err)
		require.NotZero(t, v1)
		_, err = s.SaveIf(ctx, id, []byte("b"), exp, 0)
		require.ErrorIs(t, err, session.ErrConflict, "exists: v=0 conflicts")

		d, v, err = s.LoadVersion(ctx, id)
		require.NoError(t, err)
		require.Equal(t, "a", string(d))
		require.Equal(t, v1, v)

		v2, err := s.SaveIf(ctx, id, []byte("b"), exp, v1)
		require.NoError(t, err)
		require.NotEqual(t, v1, v2)
		_, err = s.SaveIf(ctx, id, []byte("stale"), exp, v1)
		require.ErrorIs(t, err, session.ErrConflict)

		// An unconditional Save also moves the version on.
		require.NoError(t, s.Save(ctx, id, []byte("c"), exp))
		_, err = s.SaveIf(ctx, id, []byte("stale"), exp, v2)
		require.ErrorIs(t, err, session.ErrConflict)
		d, v3, err := s.LoadVersion(ctx, id)
		require.NoError(t, err)
		require.Equal(t, "c", string(d))

		// A logout is never undone by a slower request.
		require.NoError(t, s.Delete(ctx, id))
		_, err = s.SaveIf(ctx, id, []byte("undo"), exp, v3)
		require.ErrorIs(t, err, session.ErrConflict)
		_, found, err := s.Load(ctx, id)
		require.NoError(t, err)
		require.False(t, found)

		// A recreated session does not take its old versions (no ABA).
		v4, err := s.SaveIf(ctx, id, []byte("new"), exp, 0)
		require.NoError(t, err)
		require.NotEqual(t, v1, v4)

		// SaveIf with an expiry in the past deletes, if the version matches.
		_, err = s.SaveIf(ctx, id, nil, time.Now().Add(-time.Second), v4+1)
		require.ErrorIs(t, err, session.ErrConflict)
		v5, err := s.SaveIf(ctx, id, nil, time.Now().Add(-time.Second), v4)
		require.NoError(t, err)
		require.Zero(t, v5)
		_, v, err = s.LoadVersion(ctx, id)
		require.NoError(t, err)
		require.Zero(t, v)
	})
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient, s *redisstore.Store) {
		ctx := t.Context()
		// Past expiry deletes.
		require.NoError(t, s.Save(ctx, "gone", []byte("x"), time.Now().Add(time.Hour)))
		require.NoError(t, s.Save(ctx, "gone", []byte("x"), time.Now().Add(-time.Millisecond)))
		_, found, err := s.Load(ctx, "gone")
		require.NoError(t, err)
		require.False(t, found)
		require.NoError(t, s.Save(ctx, "never", []byte("x"), time.Time{}))
		_, found, err = s.Load(ctx, "never")
		require.NoError(t, err)
		require.False(t, found)

		// A real expiry on the server (Redis keeps real time: no synctest here).
		saved := time.Now()
		require.NoError(t, s.Save(ctx, "short", []byte("x"), saved.Add(time.Second)))
		_, found, err = s.Load(ctx, "short")
		require.NoError(t, err)
		if asked := time.Since(saved); asked < time.Second {
			require.True(t, found, "gone %v after a save that expires in 1s", asked)
		}
		require.Eventually(t, func() bool {
			_, found, err := s.Load(ctx, "short")
			return err == nil && !found
		}, 5*time.Second, 20*time.Millisecond)
		_, v, err := s.LoadVersion(ctx, "short")
		require.NoError(t, err)
		require.Zero(t, v, "an expired session has no version")
		v1, err := s.SaveIf(ctx, "short", []byte("again"), time.Now().Add(time.Hour), 0)
		require.NoError(t, err)
		require.NotZero(t, v1)
	})
}

func TestUserIndex(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, c redis.UniversalClient, s *redisstore.Store) {
		ctx := t.Context()
		hour := time.Now().Add(time.Hour)
		const user = "alice{x}@example.com"
		ids := []string{"s1", "s{2}", "s3"}
		for _, id := range ids {
			require.NoError(t, s.Save(ctx, id, []byte(id), hour))
			require.NoError(t, s.AddUserSession(ctx, user, id, hour))
		}
		require.NoError(t, s.Save(ctx, "bob1", []byte("bob"), hour))
		require.NoError(t, s.AddUserSession(ctx, "bob", "bob1", hour))
		// An expired entry is neither listed nor kept.
		require.NoError(t, s.AddUserSession(ctx, user, "old", time.Now().Add(-time.Minute)))

		got, err := s.UserSessions(ctx, user)
		require.NoError(t, err)
		require.ElementsMatch(t, ids, got)

		// Re-adding updates the expiry; the index expires with its latest.
		later := time.Now().Truncate(time.Millisecond).Add(2*time.Hour + 500*time.Microsecond)
		require.NoError(t, s.AddUserSession(ctx, user, "s1", later))
		idx := testenv.Prefix(t) + "user:{~" + "YWxpY2V7eH1AZXhhbXBsZS5jb20" + "}"
		pt, err := c.PExpireTime(ctx, idx).Result()
		require.NoError(t, err)
		require.Equal(t, later.Truncate(time.Millisecond).Add(time.Millisecond).UnixMilli(), pt.Milliseconds(), "rounded up")

		require.NoError(t, s.DeleteUser(ctx, user))
		for _, id := range ids {
			_, found, err := s.Load(ctx, id)
			require.NoError(t, err)
			require.False(t, found, id)
		}
		got, err = s.UserSessions(ctx, user)
		require.NoError(t, err)
		require.Empty(t, got)
		n, err := c.Exists(ctx, idx).Result()
		require.NoError(t, err)
		require.Zero(t, n, "the index is gone")
		require.NoError(t, s.DeleteUser(ctx, user), "deleting again is fine")

		// Bob is untouched.
		got, err = s.UserSessions(ctx, "bob")
		require.NoError(t, err)
		require.Equal(t, []string{"bob1"}, got)
		_, found, err := s.Load(ctx, "bob1")
		require.NoError(t, err)
		require.True(t, found)

		// Short-lived entries stop being listed when they expire.
		require.NoError(t, s.AddUserSession(ctx, "carol", "c1", time.Now().Add(200*time.Millisecond)))
		require.Eventually(t, func() bool {
			got, err := s.UserSessions(ctx, "carol")
			return err == nil && len(got) == 0
		}, 5*time.Second, 20*time.Millisecond)

		require.ErrorIs(t, s.AddUserSession(ctx, "", "x", hour), session.ErrInvalidID)
		require.ErrorIs(t, s.AddUserSession(ctx, "u", "", hour), session.ErrInvalidID)
		_, err = s.UserSessions(ctx, "")
		require.ErrorIs(t, err, session.ErrInvalidID)
		require.ErrorIs(t, s.DeleteUser(ctx, ""), session.ErrInvalidID)
	})
}

func TestServerFailure(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{})
	c := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr(),
		DialTimeout:           500 * time.Millisecond,
		MaxRetries:            1,
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = c.Close() })
	s, err := redisstore.New(c, redisstore.Config{})
	require.NoError(t, err)
	exp := time.Now().Add(time.Hour)
	ctx := t.Context()
	require.NoError(t, s.Save(ctx, "id", []byte("x"), exp))
	_, v, err := s.LoadVersion(ctx, "id")
	require.NoError(t, err)

	srv.Kill()
	for range 3 { // including on pooled connections the kill broke
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d, found, err := s.Load(tctx, "id")
		require.Error(t, err)
		require.False(t, found)
		require.Nil(t, d)
		require.ErrorContains(t, err, "redisstore: load")
		require.Error(t, s.Save(tctx, "id", []byte("y"), exp))
		_, err = s.SaveIf(tctx, "id", []byte("y"), exp, v)
		require.Error(t, err)
		require.NotErrorIs(t, err, session.ErrConflict)
		_, _, err = s.LoadVersion(tctx, "id")
		require.Error(t, err)
		require.Error(t, s.Delete(tctx, "id"))
		require.Error(t, s.AddUserSession(tctx, "u", "id", exp))
		_, err = s.UserSessions(tctx, "u")
		require.Error(t, err)
		require.Error(t, s.DeleteUser(tctx, "u"))
		cancel()
	}

	srv.Restart() // empty: no AOF; its script cache is empty too
	// After repeated dial failures go-redis's pool answers with the last dial
	// error until its background redial (about once a second) succeeds: the
	// same Store recovers on its own within a few seconds.
	require.Eventually(t, func() bool {
		_, found, err := s.Load(ctx, "id")
		return err == nil && !found
	}, 15*time.Second, 50*time.Millisecond)
	v1, err := s.SaveIf(ctx, "id", []byte("z"), exp, 0) // EVALSHA → NOSCRIPT → EVAL
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, "id", []byte("w"), exp))
	d, v2, err := s.LoadVersion(ctx, "id")
	require.NoError(t, err)
	require.Equal(t, "w", string(d))
	require.Equal(t, v1+1, v2)
	require.NoError(t, s.AddUserSession(ctx, "u", "id", exp))
	require.NoError(t, s.DeleteUser(ctx, "u"))
}

func TestContextCanceled(t *testing.T) {
	t.Parallel()
	c := testenv.RedisClient(t)
	s, err := redisstore.New(c, redisstore.Config{Prefix: testenv.Prefix(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, found, err := s.Load(ctx, "id")
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, found)
	require.ErrorIs(t, s.Save(ctx, "id", nil, time.Now().Add(time.Hour)), context.Canceled)
}

func BenchmarkLoad(b *testing.B) {
	c := testenv.RedisClient(b)
	s, err := redisstore.New(c, redisstore.Config{Prefix: testenv.Prefix(b)})
	require.NoError(b, err)
	ctx := b.Context()
	const id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	require.NoError(b, s.Save(ctx, id, make([]byte, 256), time.Now().Add(time.Hour)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Load(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSave(b *testing.B) {
	c := testenv.RedisClient(b)
	s, err := redisstore.New(c, redisstore.Config{Prefix: testenv.Prefix(b)})
	require.NoError(b, err)
	ctx := b.Context()
	const id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	data := make([]byte, 256)
	exp := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Save(ctx, id, data, exp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSaveIf(b *testing.B) {
	c := testenv.RedisClient(b)
	s, err := redisstore.New(c, redisstore.Config{Prefix: testenv.Prefix(b)})
	require.NoError(b, err)
	ctx := b.Context()
	const id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	data := make([]byte, 256)
	exp := time.Now().Add(time.Hour)
	v, err := s.SaveIf(ctx, id, data, exp, 0)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if v, err = s.SaveIf(ctx, id, data, exp, v); err != nil {
			b.Fatal(err)
		}
	}
}
