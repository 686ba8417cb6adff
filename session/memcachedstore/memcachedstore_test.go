// Real-time tests (memcached keeps its own clock, to the second):
// TestExpires waits for a real expiry; TestFault stops and restarts a
// private memcached.

package memcachedstore

import (
	"crypto/sha256"
	"encoding/base64"

	"github.com/scaleout/scaleout/internal/mckey"

	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/session"
)

// hashed is an independent statement of how unsafe IDs are hashed.
func hashed(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func newStore(t testing.TB) (*Store, *memcache.Client) {
	t.Helper()
	c := testenv.MemcachedClient(t)
	s, err := New(c, Config{Prefix: testenv.Prefix(t)})
	require.NoError(t, err)
	return s, c
}

func TestNewConfig(t *testing.T) {
	c := memcache.New("127.0.0.1:1")
	s, err := New(c, Config{})
	require.NoError(t, err)
	require.Equal(t, DefaultPrefix, s.prefix)
	for _, p := range []string{"has space", "ctl\x01", "nonascii\xff", strings.Repeat("p", maxPrefix+1)} {
		_, err := New(c, Config{Prefix: p})
		require.ErrorIs(t, err, session.ErrInvalidConfig, "prefix %q", p)
	}
	_, err = New(nil, Config{})
	require.ErrorIs(t, err, session.ErrInvalidConfig)
}

func TestKeys(t *testing.T) {
	s, err := New(memcache.New("127.0.0.1:1"), Config{Prefix: "p:"})
	require.NoError(t, err)
	long := strings.Repeat("a", session.MaxIDLength)
	ids := []string{
		"abc", "~abc", "a b", "a\nb", "a\x00b", "a\x7fb", "é", long, long[:len(long)-1] + "b",
		"~s" + hashed("a b"), "~u" + "bob", "~sX",
	}
	seen := map[string]string{}
	for _, id := range ids {
		k := s.key(id)
		require.LessOrEqual(t, len(k), 250, "id %q", id)
		require.True(t, mckey.Safe(k), "key %q of id %q", k, id)
		require.True(t, strings.HasPrefix(k, "p:"))
		if prev, dup := seen[k]; dup {
			t.Fatalf("ids %q and %q share key %q", prev, id, k)
		}
		seen[k] = id
	}
	require.Equal(t, "p:abc", s.key("abc"))
	for _, u := range []string{"bob", "~bob", "b o b", "abc", "sX"} {
		k := s.userKey(u)
		require.True(t, mckey.Safe(k) && len(k) <= 250)
		if prev, dup := seen[k]; dup {
			t.Fatalf("user %q and id %q share key %q", u, prev, k)
		}
		seen[k] = "user " + u
	}
	// A long prefix still gives legal keys.
	s2, err := New(memcache.New("127.0.0.1:1"), Config{Prefix: strings.Repeat("p", maxPrefix)})
	require.NoError(t, err)
	require.LessOrEqual(t, len(s2.key(long)), 250)
	require.LessOrEqual(t, len(s2.userKey(long)), 250)
}

func TestSaveLoadDelete(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)

	_, found, err := s.Load(ctx, "missing")
	require.NoError(t, err)
	require.False(t, found)

	ids := []string{"plain", "with space", "ctl\x01\x02", "~tilde", "ü", strings.Repeat("x", session.MaxIDLength), strings.Repeat("x", session.MaxIDLength-1) + "y"}
	for i, id := range ids {
		require.NoError(t, s.Save(ctx, id, []byte("data"+strconv.Itoa(i)), exp))
	}
	for i, id := range ids {
		got, found, err := s.Load(ctx, id)
		require.NoError(t, err)
		require.True(t, found, "id %q", id)
		require.Equal(t, "data"+strconv.Itoa(i), string(got), "id %q", id)
	}
	require.NoError(t, s.Save(ctx, "empty", nil, exp))
	got, found, err := s.Load(ctx, "empty")
	require.NoError(t, err)
	require.True(t, found)
	require.Empty(t, got)

	require.NoError(t, s.Delete(ctx, "plain"))
	require.NoError(t, s.Delete(ctx, "plain")) // missing is fine
	_, found, err = s.Load(ctx, "plain")
	require.NoError(t, err)
	require.False(t, found)

	// Past expiry deletes.
	require.NoError(t, s.Save(ctx, "with space", []byte("x"), time.Now().Add(-time.Minute)))
	_, found, err = s.Load(ctx, "with space")
	require.NoError(t, err)
	require.False(t, found)

	// Expiry beyond 30 days is an absolute time and keeps the session.
	require.NoError(t, s.Save(ctx, "long", []byte("x"), time.Now().Add(60*24*time.Hour)))
	_, found, err = s.Load(ctx, "long")
	require.NoError(t, err)
	require.True(t, found)

	for _, bad := range []string{"", strings.Repeat("x", session.MaxIDLength+1)} {
		_, _, err := s.Load(ctx, bad)
		require.ErrorIs(t, err, session.ErrInvalidID)
		require.ErrorIs(t, s.Save(ctx, bad, nil, exp), session.ErrInvalidID)
		require.ErrorIs(t, s.Delete(ctx, bad), session.ErrInvalidID)
		_, err = s.SaveIf(ctx, bad, nil, exp, 0)
		require.ErrorIs(t, err, session.ErrInvalidID)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = s.Load(cctx, "x")
	require.ErrorIs(t, err, context.Canceled)
}

func TestExpires(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	saved := time.Now()
	require.NoError(t, s.Save(ctx, "short", []byte("x"), saved.Add(1100*time.Millisecond)))
	_, found, err := s.Load(ctx, "short")
	require.NoError(t, err)
	if asked := time.Since(saved); asked < time.Second {
		require.True(t, found, "gone %v after a save that expires in 1.1s", asked)
	}
	// memcached's clock has one-second resolution; allow it to pass.
	require.Eventually(t, func() bool {
		_, found, err := s.Load(ctx, "short")
		return err == nil && !found
	}, 5*time.Second, 100*time.Millisecond)
}

func TestCAS(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)

	_, v, err := s.LoadVersion(ctx, "id")
	require.NoError(t, err)
	require.Zero(t, v)

	v1, err := s.SaveIf(ctx, "id", []byte("one"), exp, 0)
	require.NoError(t, err)
	require.NotZero(t, v1)
	_, err = s.SaveIf(ctx, "id", []byte("again"), exp, 0)
	require.ErrorIs(t, err, session.ErrConflict)

	data, v, err := s.LoadVersion(ctx, "id")
	require.NoError(t, err)
	require.Equal(t, v1, v)
	require.Equal(t, "one", string(data))

	v2, err := s.SaveIf(ctx, "id", []byte("two"), exp, v1)
	require.NoError(t, err)
	require.NotEqual(t, v1, v2)
	_, err = s.SaveIf(ctx, "id", []byte("stale"), exp, v1)
	require.ErrorIs(t, err, session.ErrConflict)

	// A plain Save changes the version.
	require.NoError(t, s.Save(ctx, "id", []byte("three"), exp))
	_, err = s.SaveIf(ctx, "id", []byte("stale"), exp, v2)
	require.ErrorIs(t, err, session.ErrConflict)
	data, v3, err := s.LoadVersion(ctx, "id")
	require.NoError(t, err)
	require.Equal(t, "three", string(data))

	// A logout is never undone: after Delete, SaveIf with the old version fails.
	require.NoError(t, s.Delete(ctx, "id"))
	_, err = s.SaveIf(ctx, "id", []byte("zombie"), exp, v3)
	require.ErrorIs(t, err, session.ErrConflict)
	_, found, err := s.Load(ctx, "id")
	require.NoError(t, err)
	require.False(t, found)

	// ...nor after the ID was created again (no ABA).
	v4, err := s.SaveIf(ctx, "id", []byte("new"), exp, 0)
	require.NoError(t, err)
	require.NotEqual(t, v3, v4)
	_, err = s.SaveIf(ctx, "id", []byte("zombie"), exp, v3)
	require.ErrorIs(t, err, session.ErrConflict)

	// SaveIf with a past expiry deletes conditionally.
	_, err = s.SaveIf(ctx, "id", nil, time.Now().Add(-time.Second), v3)
	require.ErrorIs(t, err, session.ErrConflict)
	nv, err := s.SaveIf(ctx, "id", nil, time.Now().Add(-time.Second), v4)
	require.NoError(t, err)
	require.Zero(t, nv)
	_, found, err = s.Load(ctx, "id")
	require.NoError(t, err)
	require.False(t, found)
	nv, err = s.SaveIf(ctx, "id", nil, time.Now().Add(-time.Second), 0)
	require.NoError(t, err)
	require.Zero(t, nv)
}

func TestTooLarge(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	big := bytes.Repeat([]byte("x"), 2<<20) // above the 1 MB default item limit
	require.ErrorIs(t, s.Save(ctx, "big", big, exp), session.ErrTooLarge)
	_, err := s.SaveIf(ctx, "big", big, exp, 0)
	require.ErrorIs(t, err, session.ErrTooLarge)
	v, err := s.SaveIf(ctx, "big", []byte("small"), exp, 0)
	require.NoError(t, err)
	_, err = s.SaveIf(ctx, "big", big, exp, v)
	require.ErrorIs(t, err, session.ErrTooLarge)
	// The old value is intact and the client still works.
	data, found, err := s.Load(ctx, "big")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "small", string(data))
}

func TestUserIndex(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)

	ids, err := s.UserSessions(ctx, "alice")
	require.NoError(t, err)
	require.Empty(t, ids)

	for _, id := range []string{"a1", "a 2", "a3"} {
		require.NoError(t, s.Save(ctx, id, []byte(id), exp))
		require.NoError(t, s.AddUserSession(ctx, "alice", id, exp))
	}
	require.NoError(t, s.AddUserSession(ctx, "alice", "a1", exp.Add(time.Minute))) // no duplicate
	require.NoError(t, s.AddUserSession(ctx, "alice", "old", time.Now().Add(-time.Second)))
	require.NoError(t, s.Save(ctx, "b1", []byte("b1"), exp))
	require.NoError(t, s.AddUserSession(ctx, "b o b", "b1", exp))

	ids, err = s.UserSessions(ctx, "alice")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"a1", "a 2", "a3"}, ids)

	require.NoError(t, s.DeleteUser(ctx, "alice"))
	for _, id := range []string{"a1", "a 2", "a3"} {
		_, found, err := s.Load(ctx, id)
		require.NoError(t, err)
		require.False(t, found, id)
	}
	ids, err = s.UserSessions(ctx, "alice")
	require.NoError(t, err)
	require.Empty(t, ids)
	require.NoError(t, s.DeleteUser(ctx, "alice"))

	_, found, err := s.Load(ctx, "b1")
	require.NoError(t, err)
	require.True(t, found)
	ids, err = s.UserSessions(ctx, "b o b")
	require.NoError(t, err)
	require.Equal(t, []string{"b1"}, ids)

	_, err = s.UserSessions(ctx, "")
	require.Error(t, err)
	require.ErrorIs(t, s.AddUserSession(ctx, "u", "", exp), session.ErrInvalidID)
}

func TestUserIndexConcurrent(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- s.AddUserSession(ctx, "carol", fmt.Sprint("c", i), exp) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	ids, err := s.UserSessions(ctx, "carol")
	require.NoError(t, err)
	require.Len(t, ids, n)
}

func TestIndexCodec(t *testing.T) {
	es := []entry{{"a", 1}, {"with space", -5}, {strings.Repeat("z", session.MaxIDLength), math.MaxInt64}}
	got, err := decodeIndex(encodeIndex(es))
	require.NoError(t, err)
	require.Equal(t, es, got)
	for _, bad := range [][]byte{nil, {}, {2}, {1, 5, 'a'}, {1, 1, 'a'}, {1, 0xff}} {
		_, err := decodeIndex(bad)
		require.ErrorIs(t, err, errBadIndex, "%q", bad)
	}
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add(encodeIndex([]entry{{"a", 1}, {"b c", 99}}))
	f.Add([]byte{1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := decodeIndex(b)
		if err != nil {
			return
		}
		again, err := decodeIndex(encodeIndex(es))
		require.NoError(t, err)
		require.Equal(t, es, again)
	})
}

func FuzzKey(f *testing.F) {
	f.Add("abc", "abd")
	f.Add("a b", "~s")
	s, err := New(memcache.New("127.0.0.1:1"), Config{Prefix: "p:"})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, a, b string) {
		if session.CheckID(a) != nil || session.CheckID(b) != nil {
			return
		}
		ka, kb := s.key(a), s.key(b)
		require.True(t, mckey.Safe(ka) && len(ka) <= 250)
		if a != b {
			require.NotEqual(t, ka, kb)
		}
	})
}

// TestFault runs against a private memcached: a killed server gives errors
// (never "not found"), and after a restart the same client works again.
func TestFault(t *testing.T) {
	srv := testenv.StartMemcached(t)
	c := memcache.New(srv.Addr())
	c.Timeout = time.Second
	s, err := New(c, Config{})
	require.NoError(t, err)
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)

	require.NoError(t, s.Save(ctx, "id", []byte("x"), exp))
	_, found, err := s.Load(ctx, "id")
	require.NoError(t, err)
	require.True(t, found)

	srv.Kill()
	for range 3 { // also drains the client's idle connections
		_, found, err = s.Load(ctx, "id")
		require.Error(t, err)
		require.False(t, found)
	}
	require.Error(t, s.Save(ctx, "id", []byte("y"), exp))
	_, err = s.SaveIf(ctx, "id", []byte("y"), exp, 1)
	require.Error(t, err)
	require.NotErrorIs(t, err, session.ErrConflict)
	require.Error(t, s.Delete(ctx, "id"))
	require.Error(t, s.AddUserSession(ctx, "u", "id", exp))

	srv.Restart()
	_, found, err = s.Load(ctx, "id") // memcached restarts empty
	require.NoError(t, err)
	require.False(t, found)
	require.NoError(t, s.Save(ctx, "id", []byte("z"), exp))
	data, found, err := s.Load(ctx, "id")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "z", string(data))
}

func BenchmarkLoad(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 256)
	require.NoError(b, s.Save(ctx, "bench", data, time.Now().Add(time.Hour)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Load(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSave(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 256)
	exp := time.Now().Add(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Save(ctx, "bench", data, exp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSaveIf(b *testing.B) {
	s, _ := newStore(b)
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 256)
	exp := time.Now().Add(time.Hour)
	v, err := s.SaveIf(ctx, "bench", data, exp, 0)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if v, err = s.SaveIf(ctx, "bench", data, exp, v); err != nil {
			b.Fatal(err)
		}
	}
}
