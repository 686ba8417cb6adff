package querycache_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/querycache"
)

// fixture is a Cache on one store, over a fresh table of the primary.
type fixture struct {
	db    *sql.DB
	q     *counting
	store cache.ObjectCache
	vers  *querycache.Versions
	qc    *querycache.Cache[[]string]
	table string
}

func newFixture(t *testing.T, s store) *fixture {
	t.Helper()
	db := openPG(t)
	f := &fixture{db: db, q: &counting{q: db}, store: s.new(t)}
	var err error
	f.vers, err = querycache.NewVersions(f.store, querycache.VersionsConfig{})
	require.NoError(t, err)
	f.qc, err = querycache.New(f.store, f.vers, querycache.Config[[]string]{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.qc.Close() })
	f.table = newTable(t, db)
	return f
}

func (f *fixture) all(t *testing.T) []string {
	t.Helper()
	v, err := f.qc.Query(t.Context(), f.q, []string{f.table}, scanStrings,
		"select v from "+f.table+" order by id")
	require.NoError(t, err)
	return v
}

func (f *fixture) insert(t *testing.T, id int, v string) {
	t.Helper()
	_, err := f.vers.Exec(t.Context(), f.db, []string{f.table}, "insert into "+f.table+" values ($1, $2)", id, v)
	require.NoError(t, err)
}

func forStores(t *testing.T, fn func(t *testing.T, s store)) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			fn(t, s)
		})
	}
}

func TestHitAvoidsDB(t *testing.T) {
	forStores(t, func(t *testing.T, s store) {
		f := newFixture(t, s)
		f.insert(t, 1, "a")
		require.Equal(t, []string{"a"}, f.all(t))
		require.Equal(t, []string{"a"}, f.all(t))
		require.Equal(t, []string{"a"}, f.all(t))
		require.EqualValues(t, 1, f.q.n.Load(), "only the first read reaches the database")
		st := f.qc.Stats()
		require.EqualValues(t, 2, st.Hits)
	})
}

func TestBumpShowsNewRows(t *testing.T) {
	forStores(t, func(t *testing.T, s store) {
		f := newFixture(t, s)
		f.insert(t, 1, "a")
		require.Equal(t, []string{"a"}, f.all(t))
		f.insert(t, 2, "b") // Exec bumps
		require.Equal(t, []string{"a", "b"}, f.all(t))
		require.Equal(t, []string{"a", "b"}, f.all(t))
		require.EqualValues(t, 2, f.q.n.Load())

		// A write that does not go through Exec, then a plain Bump.
		_, err := f.db.ExecContext(t.Context(), "update "+f.table+" set v = 'z' where id = 1")
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b"}, f.all(t), "no Bump yet: the entry stands")
		require.NoError(t, f.vers.Bump(t.Context(), f.table))
		require.Equal(t, []string{"z", "b"}, f.all(t))
	})
}

func TestArgsMakeDifferentEntries(t *testing.T) {
	forStores(t, func(t *testing.T, s store) {
		f := newFixture(t, s)
		f.insert(t, 1, "a")
		f.insert(t, 2, "b")
		byID := func(id any) []string {
			v, err := f.qc.Query(t.Context(), f.q, []string{f.table}, scanStrings,
				"select v from "+f.table+" where id = $1", id)
			require.NoError(t, err)
			return v
		}
		require.Equal(t, []string{"a"}, byID(1))
		require.Equal(t, []string{"b"}, byID(2))
		require.Equal(t, []string{"a"}, byID(1))
		require.Equal(t, []string{"b"}, byID(2))
		require.EqualValues(t, 2, f.q.n.Load())
		require.Equal(t, []string{"a"}, byID(int64(1)), "int and int64 of one value share an entry")
		require.EqualValues(t, 2, f.q.n.Load())
		require.Equal(t, []string{"a"}, byID("1"), "string \"1\" is another entry")
		require.EqualValues(t, 3, f.q.n.Load())
	})
}

func TestTwoTables(t *testing.T) {
	forStores(t, func(t *testing.T, s store) {
		f := newFixture(t, s)
		other := newTable(t, f.db)
		f.insert(t, 1, "a")
		_, err := f.vers.Exec(t.Context(), f.db, []string{other}, "insert into "+other+" values (1, 'x')")
		require.NoError(t, err)
		both := []string{other, f.table, other} // unsorted, with a duplicate
		query := "select t.v || o.v from " + f.table + " t join " + other + " o using (id) order by id"
		read := func() []string {
			v, err := f.qc.Query(t.Context(), f.q, both, scanStrings, query)
			require.NoError(t, err)
			return v
		}
		require.Equal(t, []string{"ax"}, read())
		require.Equal(t, []string{"ax"}, read())
		require.EqualValues(t, 1, f.q.n.Load())

		_, err = f.vers.Exec(t.Context(), f.db, []string{other}, "update "+other+" set v = 'y'")
		require.NoError(t, err)
		require.Equal(t, []string{"ay"}, read())
		require.EqualValues(t, 2, f.q.n.Load())

		_, err = f.vers.Exec(t.Context(), f.db, []string{f.table}, "update "+f.table+" set v = 'b'")
		require.NoError(t, err)
		require.Equal(t, []string{"by"}, read())
		require.EqualValues(t, 3, f.q.n.Load())

		// Both in one transaction.
		require.NoError(t, f.vers.WithTx(t.Context(), f.db, nil, []string{f.table, other}, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(t.Context(), "update "+f.table+" set v = 'c'"); err != nil {
				return err
			}
			_, err := tx.ExecContext(t.Context(), "update "+other+" set v = 'w'")
			return err
		}))
		require.Equal(t, []string{"cw"}, read())
		require.Equal(t, []string{"cw"}, read())
		require.EqualValues(t, 4, f.q.n.Load())
	})
}

// TestSlowFillerRacingWrite is the key property: a filler reads the old
// rows, a writer commits and bumps, the filler stores what it read late;
// the next reader still sees the new rows.
func TestSlowFillerRacingWrite(t *testing.T) {
	forStores(t, func(t *testing.T, s store) {
		f := newFixture(t, s)
		f.insert(t, 1, "old")
		ctx := t.Context()
		tables := []string{f.table}
		query := "select v from " + f.table + " order by id"
		oldKey, err := f.qc.Key(ctx, tables, query)
		require.NoError(t, err)

		scanned := make(chan struct{})
		release := make(chan struct{})
		slowScan := func(rows *sql.Rows) ([]string, error) {
			v, err := scanStrings(rows)
			close(scanned) // the old rows are read
			<-release      // wait for the write and its Bump
			return v, err
		}
		type result struct {
			v   []string
			err error
		}
		filler := make(chan result, 1)
		go func() {
			v, err := f.qc.Query(ctx, f.q, tables, slowScan, query)
			filler <- result{v, err}
		}()
		<-scanned

		// The writer: commit, then bump, while the filler holds old rows.
		require.NoError(t, f.vers.WithTx(ctx, f.db, nil, tables, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "update "+f.table+" set v = 'new' where id = 1")
			return err
		}))
		close(release)
		r := <-filler
		require.NoError(t, r.err)
		require.Equal(t, []string{"old"}, r.v, "the racing read returns pre-write data, once")

		// The filler did store its old rows, late, under the old versions.
		raw, err := f.store.Get(ctx, oldKey)
		require.NoError(t, err, "the late fill is in the cache")
		require.Contains(t, string(raw), "old")

		newKey, err := f.qc.Key(ctx, tables, query)
		require.NoError(t, err)
		require.NotEqual(t, oldKey, newKey)
		require.Equal(t, []string{"new"}, f.all(t), "a reader after the Bump sees the new rows")
		require.Equal(t, []string{"new"}, f.all(t))
		require.EqualValues(t, 2, f.q.n.Load())
	})
}

// Losing a version (deleted, evicted, expired) causes a miss, never a
// stale read: here the table changes without a Bump, and the lost version
// alone makes the next read go to the database.
func TestLostVersionIsAMiss(t *testing.T) {
	forStores(t, func(t *testing.T, s store) {
		f := newFixture(t, s)
		f.insert(t, 1, "a")
		require.Equal(t, []string{"a"}, f.all(t))
		_, err := f.db.ExecContext(t.Context(), "update "+f.table+" set v = 'b'")
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, f.all(t))
		require.EqualValues(t, 1, f.q.n.Load())

		require.NoError(t, f.store.Delete(t.Context(), querycache.DefaultVersionPrefix+f.table))
		require.Equal(t, []string{"b"}, f.all(t))
		require.Equal(t, []string{"b"}, f.all(t))
		require.EqualValues(t, 2, f.q.n.Load())
	})
}

func TestBadArgTypeIsAnError(t *testing.T) {
	f := newFixture(t, stores[0])
	for _, arg := range []any{
		map[string]int{"a": 1},
		struct{ A int }{1},
		complex(1, 2),
		make(chan int),
		func() {},
		[]any{1, map[int]int{}},
	} {
		_, err := f.qc.Query(t.Context(), f.q, []string{f.table}, scanStrings,
			"select v from "+f.table+" where id = $1", arg)
		var ae *querycache.ArgError
		require.ErrorAs(t, err, &ae, "%T", arg)
		require.ErrorIs(t, err, querycache.ErrUnsupportedArg)
		require.Equal(t, 0, ae.Index)
	}
	_, err := f.qc.QueryRow(t.Context(), f.q, []string{f.table}, scanStrings,
		"select v from "+f.table+" where id = $1 and v = $2", 1, badValuer{})
	var ae *querycache.ArgError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 1, ae.Index)
	require.ErrorIs(t, err, errBadValue)
	require.EqualValues(t, 0, f.q.n.Load(), "no query runs with an argument that cannot be keyed")
}

var errBadValue = errors.New("bad value")

type badValuer struct{}

func (badValuer) Value() (driver.Value, error) { return nil, errBadValue }

func TestBumpFailureIsReported(t *testing.T) {
	db := openPG(t)
	table := newTable(t, db)
	fc := &failing{Memory: newMemory(t)}
	vers, err := querycache.NewVersions(fc, querycache.VersionsConfig{})
	require.NoError(t, err)
	ctx := t.Context()
	fc.failWrites.Store(true)

	// Exec: the row is in, the error says the Bump failed after it.
	_, err = vers.Exec(ctx, db, []string{table}, "insert into "+table+" values (1, 'a')")
	var be *querycache.BumpError
	require.ErrorAs(t, err, &be)
	require.ErrorIs(t, err, querycache.ErrBumpFailed)
	require.ErrorIs(t, err, errDown)
	require.True(t, be.Committed)
	require.Equal(t, []string{table}, be.Tables)
	require.Contains(t, err.Error(), "committed")
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "select count(*) from "+table).Scan(&n))
	require.Equal(t, 1, n, "the write is committed despite the failed Bump")

	// WithTx (CommitAndBump) likewise.
	err = vers.WithTx(ctx, db, nil, []string{table}, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "insert into "+table+" values (2, 'b')")
		return err
	})
	require.ErrorAs(t, err, &be)
	require.True(t, be.Committed)
	require.NoError(t, db.QueryRowContext(ctx, "select count(*) from "+table).Scan(&n))
	require.Equal(t, 2, n)

	// Bump alone: not committed by it; retrying once the cache is back works.
	err = vers.Bump(ctx, table, "other")
	require.ErrorAs(t, err, &be)
	require.False(t, be.Committed)
	fc.failWrites.Store(false)
	require.NoError(t, vers.Bump(ctx, be.Tables...))
}

func TestQueryRow(t *testing.T) {
	forStores(t, func(t *testing.T, s store) {
		db := openPG(t)
		q := &counting{q: db}
		c := s.new(t)
		vers, err := querycache.NewVersions(c, querycache.VersionsConfig{})
		require.NoError(t, err)
		qc, err := querycache.New(c, vers, querycache.Config[string]{
			Loader: cache.LoaderConfig[string]{NegativeTTL: time.Minute},
		})
		require.NoError(t, err)
		table := newTable(t, db)
		scan := func(rows *sql.Rows) (string, error) {
			var s string
			err := rows.Scan(&s)
			return s, err
		}
		get := func(id int) (string, error) {
			return qc.QueryRow(t.Context(), q, []string{table}, scan,
				"select v from "+table+" where id = $1", id)
		}
		_, err = get(1)
		require.ErrorIs(t, err, sql.ErrNoRows)
		require.ErrorIs(t, err, cache.ErrNotFound)
		_, err = get(1)
		require.ErrorIs(t, err, querycache.ErrNoRows, "the negative entry answers")
		require.EqualValues(t, 1, q.n.Load())

		_, err = vers.Exec(t.Context(), db, []string{table}, "insert into "+table+" values (1, 'a')")
		require.NoError(t, err)
		v, err := get(1)
		require.NoError(t, err)
		require.Equal(t, "a", v)
		v, err = get(1)
		require.NoError(t, err)
		require.Equal(t, "a", v)
		require.EqualValues(t, 2, q.n.Load())
	})
}

func TestExecRefusesTx(t *testing.T) {
	db := openPG(t)
	table := newTable(t, db)
	vers, err := querycache.NewVersions(newMemory(t), querycache.VersionsConfig{})
	require.NoError(t, err)
	tx, err := db.BeginTx(t.Context(), nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = vers.Exec(t.Context(), tx, []string{table}, "insert into "+table+" values (1, 'a')")
	require.ErrorIs(t, err, querycache.ErrExecInTx)
}

func TestWithTxRollbackKeepsVersions(t *testing.T) {
	db := openPG(t)
	table := newTable(t, db)
	vers, err := querycache.NewVersions(newMemory(t), querycache.VersionsConfig{})
	require.NoError(t, err)
	before, err := vers.Get(t.Context(), table)
	require.NoError(t, err)
	boom := errors.New("boom")
	err = vers.WithTx(t.Context(), db, nil, []string{table}, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(t.Context(), "insert into "+table+" values (1, 'a')"); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	after, err := vers.Get(t.Context(), table)
	require.NoError(t, err)
	require.Equal(t, before, after)
	var n int
	require.NoError(t, db.QueryRowContext(t.Context(), "select count(*) from "+table).Scan(&n))
	require.Zero(t, n)
}

// When the versions cannot be read, Query answers from the database and
// caches nothing.
func TestFailOpenWithoutVersions(t *testing.T) {
	db := openPG(t)
	table := newTable(t, db)
	fc := &failing{Memory: newMemory(t)}
	vers, err := querycache.NewVersions(fc, querycache.VersionsConfig{})
	require.NoError(t, err)
	qc, err := querycache.New(fc, vers, querycache.Config[[]string]{})
	require.NoError(t, err)
	q := &counting{q: db}
	_, err = db.ExecContext(t.Context(), "insert into "+table+" values (1, 'a')")
	require.NoError(t, err)
	fc.failReads.Store(true)
	for range 3 {
		v, err := qc.Query(t.Context(), q, []string{table}, scanStrings, "select v from "+table)
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, v)
	}
	require.EqualValues(t, 3, q.n.Load())
	require.Zero(t, fc.Stats().Entries, "nothing was cached")
}

// Concurrent creators of a missing version agree on it (Add on a
// SwapCache).
func TestConcurrentVersionCreationAgrees(t *testing.T) {
	for _, s := range stores[:2] {
		t.Run(s.name, func(t *testing.T) {
			c := s.new(t)
			vers, err := querycache.NewVersions(c, querycache.VersionsConfig{})
			require.NoError(t, err)
			const n = 16
			got := make([][]querycache.Version, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					v, err := vers.Get(context.Background(), "a", "b")
					if err == nil {
						got[i] = v
					}
				})
			}
			wg.Wait()
			for i := range n {
				require.Len(t, got[i], 2)
				require.Equal(t, got[0], got[i])
			}
			require.NotEqual(t, got[0][0], got[0][1])
			require.NoError(t, vers.Bump(t.Context(), "a", "b"))
			after, err := vers.Get(t.Context(), "a", "b")
			require.NoError(t, err)
			require.NotEqual(t, got[0][0], after[0])
			require.NotEqual(t, got[0][1], after[1])
		})
	}
}
