package querycache_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache/querycache"
)

type status string

type myInt int64

func ptr[T any](v T) *T { return &v }

// Arguments that mean different things to a driver never share a key;
// integers of different widths with one value do.
func TestKeyIsCanonical(t *testing.T) {
	m := newMemory(t)
	vers, err := querycache.NewVersions(m, querycache.VersionsConfig{})
	require.NoError(t, err)
	qc, err := querycache.New(m, vers, querycache.Config[string]{})
	require.NoError(t, err)
	key := func(args ...any) string {
		t.Helper()
		k, err := qc.Key(t.Context(), []string{"t"}, "select $1", args...)
		require.NoError(t, err)
		require.Len(t, k, len(querycache.DefaultPrefix)+64)
		return k
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	distinct := [][]any{
		{},
		{nil},
		{""},
		{1},
		{"1"},
		{uint(1)},
		{1.0},
		{float32(1)},
		{true},
		{false},
		{[]byte("1")},
		{[]byte{}},
		{[]byte(nil)},
		{time.Duration(1)},
		{myInt(1)},
		{status("1")},
		{ptr(1)},
		{(*int)(nil)},
		{(*string)(nil)},
		{[]int64{1, 2}},
		{[]int64{12}},
		{[]int64(nil)},
		{[]string{}},
		{[2]byte{1, 2}},
		{at},
		{at.In(time.FixedZone("X", 3600))},
		{sql.NullString{String: "1", Valid: true}},
		{sql.NullString{}},
		{sql.Named("a", 1)},
		{sql.Named("b", 1)},
		{"a", "b"},
		{"ab"},
		{"a", ""},
		{"", "a"},
	}
	seen := map[string]int{}
	for i, args := range distinct {
		k := key(args...)
		j, dup := seen[k]
		require.False(t, dup, "args %d (%#v) and %d (%#v) share a key", i, args, j, distinct[j])
		seen[k] = i
	}
	require.Equal(t, key(1), key(int64(1)))
	require.Equal(t, key(1), key(int8(1)))
	require.Equal(t, key(1), key(int32(1)))
	require.Equal(t, key("x", 2), key("x", 2))

	// The query text and the tables are in the key too; table order and
	// duplicates are not.
	k1, err := qc.Key(t.Context(), []string{"a", "b"}, "select 1")
	require.NoError(t, err)
	k2, err := qc.Key(t.Context(), []string{"b", "a", "b"}, "select 1")
	require.NoError(t, err)
	require.Equal(t, k1, k2)
	k3, err := qc.Key(t.Context(), []string{"a"}, "select 1")
	require.NoError(t, err)
	require.NotEqual(t, k1, k3)
	k4, err := qc.Key(t.Context(), []string{"a"}, "select 2")
	require.NoError(t, err)
	require.NotEqual(t, k3, k4)

	_, err = qc.Key(t.Context(), nil, "select 1")
	require.ErrorIs(t, err, querycache.ErrNoTables)
	_, err = qc.Key(t.Context(), []string{""}, "select 1")
	require.ErrorIs(t, err, querycache.ErrInvalidTable)

	// Another result type or namespace: other keys for the same query.
	other, err := querycache.New(m, vers, querycache.Config[[]string]{})
	require.NoError(t, err)
	ko, err := other.Key(t.Context(), []string{"t"}, "select $1", 1)
	require.NoError(t, err)
	require.NotEqual(t, key(1), ko)
	ns, err := querycache.New(m, vers, querycache.Config[string]{Namespace: "x"})
	require.NoError(t, err)
	kn, err := ns.Key(t.Context(), []string{"t"}, "select $1", 1)
	require.NoError(t, err)
	require.NotEqual(t, key(1), kn)
}

// Query and QueryRow of one query text keep separate entries; the fake
// driver stands in for a database.
func TestQueryAndQueryRowDoNotMix(t *testing.T) {
	db, err := sql.Open("querycache-fake", "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	m := newMemory(t)
	vers, err := querycache.NewVersions(m, querycache.VersionsConfig{})
	require.NoError(t, err)
	qc, err := querycache.New(m, vers, querycache.Config[string]{})
	require.NoError(t, err)
	q := &counting{q: db}
	all := func(rows *sql.Rows) (string, error) {
		n := 0
		for rows.Next() {
			n++
		}
		return "rows", nil
	}
	one := func(rows *sql.Rows) (string, error) {
		var s string
		return s, rows.Scan(&s)
	}
	v, err := qc.Query(t.Context(), q, []string{"t"}, all, "select v")
	require.NoError(t, err)
	require.Equal(t, "rows", v)
	v, err = qc.QueryRow(t.Context(), q, []string{"t"}, one, "select v")
	require.NoError(t, err)
	require.Equal(t, "hello", v)
	require.EqualValues(t, 2, q.n.Load())
}
