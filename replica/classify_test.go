package replica_test

import (
	"testing"

	"github.com/scaleout/scaleout/replica"
)

func TestReadOnly(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT * FROM users WHERE id = $1":               true,
		"  select 1":                                      true,
		"-- who\nSELECT name FROM users":                  true,
		"/* outer /* nested */ still comment */ SELECT 1": true,
		"WITH x AS (SELECT 1) SELECT * FROM x":            true,
		"VALUES (1), (2)":                                 true,
		"TABLE users":                                     true,
		"SHOW server_version":                             true,
		"EXPLAIN SELECT 1":                                true,
		"SELECT 'insert into x' AS s":                     true,
		`SELECT "update" FROM t`:                          true,
		"SELECT $$ delete $$":                             true,
		"SELECT $tag$ update $tag$, $1":                   true,
		"SELECT 1 -- for update":                          true,
		"SELECT format FROM sharers":                      true,
		"SELECT count(*) FROM t WHERE updated_at > now() - interval '1h'": true,

		"INSERT INTO t VALUES (1) RETURNING id":                        false,
		"insert into t values (1)":                                     false,
		"UPDATE t SET v = 1":                                           false,
		"DELETE FROM t":                                                false,
		"SELECT * FROM t FOR UPDATE":                                   false,
		"SELECT * FROM t FOR NO KEY UPDATE":                            false,
		"SELECT * FROM t FOR SHARE":                                    false,
		"SELECT * FROM t for key share skip locked":                    false,
		"SELECT * INTO backup FROM t":                                  false,
		"WITH d AS (DELETE FROM q RETURNING *) SELECT * FROM d":        false,
		"WITH u AS (UPDATE t SET v = 1 RETURNING v) SELECT v FROM u":   false,
		"EXPLAIN ANALYZE INSERT INTO t VALUES (1)":                     false,
		"SELECT nextval('seq')":                                        false,
		"SELECT setval('seq', 1)":                                      false,
		"SELECT pg_advisory_lock(1)":                                   false,
		"SELECT pg_try_advisory_xact_lock(1)":                          false,
		"SELECT txid_current()":                                        false,
		"SELECT pg_notify('c', 'x')":                                   false,
		"SELECT lo_create(0)":                                          false,
		"SELECT GET_LOCK('x', 1)":                                      false,
		"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE": false,
		"CREATE TABLE t (id int)":                                      false,
		"CALL proc()":                                                  false,
		"LOCK TABLE t":                                                 false,
		"":                                                             false,
		"/* only a comment */":                                         false,
		`SELECT 'it''s' FROM t FOR UPDATE`:                             false,
		`SELECT 'a\' FROM t FOR UPDATE -- '`:                           false, // a backslash: both readings must be read-only
		`SELECT E'a\' b' FROM t FOR UPDATE`:                            false,
		"SELECT 1; DELETE FROM t":                                      false,
	} {
		if got := replica.ReadOnly(q); got != want {
			t.Errorf("ReadOnly(%q) = %v, want %v", q, got, want)
		}
	}
}

func BenchmarkReadOnly(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		replica.ReadOnly("SELECT id, name, email FROM users WHERE id = $1 AND deleted_at IS NULL")
	}
}
