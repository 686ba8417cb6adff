package replica_test

import (
	"testing"

	"github.com/scaleout/scaleout/replica"
)

func TestReadOnly(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT * FROM users WHERE id = $1":    true,
		"  select 1":                           true,
		"-- who\nSELECT name FROM users":       true,
		"WITH x AS (SELECT 1) SELECT * FROM x": true,
		"VALUES (1), (2)":                      true,
		"TABLE users":                          true,
		"SHOW server_version":                  true,
		"EXPLAIN SELECT 1":                     true,
		"SELECT 'insert into x' AS s":          true,
		`SELECT "update" FROM t`:               true,
		"SELECT $$ it's $$":                    true,
		"SELECT $tag$ a, b $tag$, $1":          true,
		"SELECT 1 -- for update":               true,
		"SELECT format FROM sharers":           true,
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

		// Several statements: each must be a read.
		"SELECT 1; SELECT 2;":         true,
		"SELECT 1; DROP TABLE t":      false,
		"SELECT 1;\nCREATE TABLE t()": false,
		"SELECT ';' ; TRUNCATE t":     false,

		// MySQL's row locks and sequences.
		"SELECT * FROM t LOCK IN SHARE MODE":         false,
		"SELECT * FROM t FOR UPDATE NOWAIT":          false,
		"SELECT * FROM t FOR UPDATE SKIP LOCKED":     false,
		"SELECT * FROM t FOR SHARE NOWAIT":           false,
		"SELECT * FROM t FOR SHARE SKIP LOCKED":      false,
		"SELECT lock, share FROM t":                  false, // refused for nothing: a cost, not a misroute
		"SELECT next_value FROM t":                   true,
		"SELECT NEXT VALUE FOR s":                    false,
		"SELECT RELEASE_ALL_LOCKS()":                 false,
		"EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1": false,
		"EXPLAIN ANALYZE EXECUTE stmt":               false,

		// MySQL's executable comments: run as code, or skipped, by version.
		"SELECT 1 /*! ; DELETE FROM t */":              false,
		"SELECT 1 /*!80000 , GET_LOCK('x', 1) */":      false,
		"SELECT 1 /*M!100100 , GET_LOCK('x', 1) */":    false,
		"SELECT /*!40001 SQL_NO_CACHE */ * FROM t":     false,
		"SELECT /*+ MAX_EXECUTION_TIME(1) */ * FROM t": true, // an optimizer hint is a comment
		"SELECT 1 /* /*! DELETE */":                    true, // inside a comment in MySQL, in an unterminated one in PostgreSQL
		"SELECT '/*!' FROM t":                          true,

		// Comments: MySQL ends one at the first */, PostgreSQL nests them.
		"/* /* */ ; DELETE FROM t; -- */ SELECT 1":        false,
		"SELECT 1 /* /* */ ; DELETE FROM t; -- */":        false,
		"/* outer /* nested */ still comment */ SELECT 1": false, // MySQL reads still comment */ SELECT 1
		"/* one */ SELECT 1 /* two */":                    true,
		// -- is a comment in MySQL only before a space or control character.
		"SELECT 1 --1; DROP TABLE t": false,
		"SELECT 1 --\tx\nFROM t":     true,
		"SELECT 1 --":                true,
		// # is a comment in MySQL only, to the end of the line.
		"SELECT 1 # x FROM t":           true,
		"SELECT 1 # ; DELETE FROM t":    false, // PostgreSQL: # is an operator
		"SELECT 1 # x\n; DELETE FROM t": false,
		"SELECT 1 # '\n' FOR UPDATE":    false, // MySQL: a comment, then FOR UPDATE
		// PostgreSQL ends -- at a carriage return too, MySQL at a newline only.
		"SELECT * FROM t --\rFOR UPDATE":       false,
		"SELECT * FROM t -- '\r'\n FOR UPDATE": false,

		// Quotes MySQL and PostgreSQL read otherwise.
		"SELECT $$ delete $$":                      false, // MySQL: identifier $$, then DELETE
		"SELECT 1 AS $$; DELETE FROM t; SELECT $$": false,
		"SELECT `a; DELETE FROM t` FROM t":         false, // PostgreSQL: ` is an operator
		"SELECT `a b` FROM t":                      true,
		"SELECT \"a\\\" ; DELETE FROM t; -- \"":    false, // MySQL: a string escaping its quote
		`SELECT '\'', "\" FROM t FOR UPDATE --"`:   false, // PostgreSQL with standard_conforming_strings off
		`SELECT timE'\' FROM t FOR UPDATE --'`:     false, // timE is a word, not the E of an E'' string
		"SELECT 1into t":                           false, // PostgreSQL before 15: SELECT 1 INTO t
		"SELECT $1into t":                          false,
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
