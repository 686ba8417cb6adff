package querycache_test

import (
	"database/sql"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/querycache"
)

// After Close, Query and QueryRow answer ErrClosed without running the
// query, on the cached path and on the fail-open path (versions
// unreadable) alike; Close is idempotent.
func TestQueryAfterClose(t *testing.T) {
	db, err := sql.Open("querycache-fake", "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	f := &failing{Memory: newMemory(t)}
	vers, err := querycache.NewVersions(f, querycache.VersionsConfig{})
	require.NoError(t, err)
	qc, err := querycache.New(f, vers, querycache.Config[string]{})
	require.NoError(t, err)
	q := &counting{q: db}
	one := func(rows *sql.Rows) (s string, err error) { return s, rows.Scan(&s) }
	_, err = qc.QueryRow(t.Context(), q, []string{"t"}, one, "select v")
	require.NoError(t, err)

	require.NoError(t, qc.Close())
	require.NoError(t, qc.Close(), "a second Close")
	_, err = qc.QueryRow(t.Context(), q, []string{"t"}, one, "select v")
	require.ErrorIs(t, err, querycache.ErrClosed, "QueryRow of a cached query")
	_, err = qc.Query(t.Context(), q, []string{"t"}, one, "select w")
	require.ErrorIs(t, err, querycache.ErrClosed, "Query of another query")
	f.failReads.Store(true)
	_, err = qc.QueryRow(t.Context(), q, []string{"t"}, one, "select v")
	require.ErrorIs(t, err, querycache.ErrClosed, "QueryRow while the versions cannot be read")
	require.EqualValues(t, 1, q.n.Load(), "queries run, the one before Close included")
}

// Config.TTL bounds every entry; its zero is DefaultTTL, and a negative
// TTL is refused.
func TestConfigTTL(t *testing.T) {
	_, err := querycache.New(newMemory(t), mustVersions(t), querycache.Config[string]{TTL: -time.Second})
	require.ErrorIs(t, err, cache.ErrInvalidConfig)

	for _, tc := range []struct {
		ttl, want time.Duration
	}{{0, querycache.DefaultTTL}, {time.Minute, time.Minute}} {
		synctest.Test(t, func(t *testing.T) {
			db, err := sql.Open("querycache-fake", "")
			require.NoError(t, err)
			defer db.Close()
			m := newMemory(t)
			vers, err := querycache.NewVersions(m, querycache.VersionsConfig{})
			require.NoError(t, err)
			qc, err := querycache.New(m, vers, querycache.Config[string]{TTL: tc.ttl})
			require.NoError(t, err)
			defer qc.Close()
			q := &counting{q: db}
			one := func(rows *sql.Rows) (s string, err error) { return s, rows.Scan(&s) }
			get := func() {
				_, err := qc.QueryRow(t.Context(), q, []string{"t"}, one, "select v")
				require.NoError(t, err)
			}
			get()
			time.Sleep(tc.want - time.Second)
			get()
			require.EqualValues(t, 1, q.n.Load(), "TTL %v: the entry expired a second before its TTL", tc.ttl)
			time.Sleep(2 * time.Second)
			get()
			require.EqualValues(t, 2, q.n.Load(), "TTL %v: the entry outlived its TTL", tc.ttl)
		})
	}
}

func mustVersions(t *testing.T) *querycache.Versions {
	v, err := querycache.NewVersions(newMemory(t), querycache.VersionsConfig{})
	require.NoError(t, err)
	return v
}
