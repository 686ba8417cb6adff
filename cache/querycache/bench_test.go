package querycache_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/querycache"
)

// BenchmarkQueryHit reads a cached result on a cache.Memory: versions
// lookup, key hashing, the Loader's hit and decode. The fake driver stands
// in for the database, which a hit never reaches.
func BenchmarkQueryHit(b *testing.B) {
	db, err := sql.Open("querycache-fake", "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	m := newMemory(b)
	vers, err := querycache.NewVersions(m, querycache.VersionsConfig{})
	if err != nil {
		b.Fatal(err)
	}
	qc, err := querycache.New(m, vers, querycache.Config[[]string]{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	for _, bc := range []struct {
		name   string
		tables []string
		args   []any
	}{
		{"1table-2args", []string{"users"}, []any{42, "active"}},
		{"2tables-2args", []string{"teams", "users"}, []any{42, "active"}},
		{"3tables-6args", []string{"users", "teams", "orgs"}, []any{42, "active", int64(7), true, time.Unix(1e9, 0), []byte("xyz")}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const q = "select name from users join teams using (team_id) where id = $1 and state = $2"
			if _, err := qc.Query(ctx, db, bc.tables, scanStrings, q, bc.args...); err != nil {
				b.Fatal(err)
			}
			before := fake.queries.Load()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := qc.Query(ctx, db, bc.tables, scanStrings, q, bc.args...); err != nil {
					b.Fatal(err)
				}
			}
			if n := fake.queries.Load() - before; n != 0 {
				b.Fatalf("%d queries reached the database on hits", n)
			}
		})
	}
}

// BenchmarkKey is the key alone: versions lookup and hashing.
func BenchmarkKey(b *testing.B) {
	m := newMemory(b)
	vers, _ := querycache.NewVersions(m, querycache.VersionsConfig{})
	qc, _ := querycache.New(m, vers, querycache.Config[[]string]{})
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := qc.Key(ctx, []string{"users"}, "select name from users where id = $1 and state = $2", 42, "active"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoaderHit is a bare cache.Loader hit of the same value on a
// cache.Memory, for comparison: BenchmarkQueryHit minus it is the cost of
// this package (versions and key).
func BenchmarkLoaderHit(b *testing.B) {
	m := newMemory(b)
	l, err := cache.NewLoader(m, cache.LoaderConfig[[]string]{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	load := func(context.Context) ([]string, error) { return []string{"hello"}, nil }
	if _, err := l.Get(ctx, "qc:k", time.Hour, load); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Get(ctx, "qc:k", time.Hour, load); err != nil {
			b.Fatal(err)
		}
	}
}
