//go:build unix

package replica_test

// Real-time tests in this file: FuzzReadOnly (runs each statement ReadOnly
// lets through on the real PostgreSQL standby and MariaDB replica; each run
// is bounded by a 1 s server-side statement timeout and a 5 s context, so a
// statement that sleeps or waits on a lock cannot hang the fuzzer).

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/replica"
)

// fuzzTable is what seeds call their table; each run replaces it with a
// table of its own, created on the primaries, before a server sees the
// statement (and before ReadOnly does, so the classified text is the text
// run).
const fuzzTable = "fuzz_t"

// readOnlySeeds are ordinary reads and writes, and writes and locks
// hidden in reads: behind comments (MySQL's executable ones included),
// quotes, dollar quotes, a second statement, SELECT INTO.
var readOnlySeeds = []string{
	"SELECT * FROM fuzz_t WHERE id = 1",
	"SELECT v FROM fuzz_t ORDER BY id LIMIT 1",
	"WITH x AS (SELECT id FROM fuzz_t) SELECT count(*) FROM x",
	"SELECT 1; SELECT 2",
	"SHOW TABLES",
	"EXPLAIN SELECT * FROM fuzz_t",
	"SELECT 'a;b', \"c\" FROM fuzz_t",
	"INSERT INTO fuzz_t (id, v) VALUES (2, 'x')",
	"UPDATE fuzz_t SET v = 'y'",
	"DELETE FROM fuzz_t",
	"SELECT * FROM fuzz_t FOR UPDATE",
	"SELECT * FROM fuzz_t FOR SHARE",
	"SELECT * FROM fuzz_t FOR UPDATE NOWAIT",
	"SELECT * FROM fuzz_t FOR UPDATE SKIP LOCKED",
	"SELECT * FROM fuzz_t FOR SHARE SKIP LOCKED",
	"SELECT * FROM fuzz_t LOCK IN SHARE MODE",
	"SELECT 1 /*! ; DELETE FROM fuzz_t */",
	"SELECT 1 /*!80000 ; DELETE FROM fuzz_t */",
	"SELECT 1 /*M!100100 ; DELETE FROM fuzz_t */",
	"SELECT 1 /* /* */ ; DELETE FROM fuzz_t; -- */",
	"/* /* */ ; DELETE FROM fuzz_t; -- */ SELECT 1",
	"SELECT 1; DELETE FROM fuzz_t",
	"SELECT 1; DROP TABLE fuzz_t",
	"SELECT 1 --1; DELETE FROM fuzz_t",
	"SELECT 1 # x\n; DELETE FROM fuzz_t",
	"SELECT * FROM fuzz_t --\rFOR UPDATE",
	"SELECT 'a\\' FROM fuzz_t FOR UPDATE -- '",
	"SELECT \"a\\\" ; DELETE FROM fuzz_t; -- \"",
	"SELECT $$ ; DELETE FROM fuzz_t; $$",
	"SELECT 1 INTO fuzz_t2",
	"SELECT 1into fuzz_t2",
	"CREATE TABLE fuzz_t2 AS SELECT 1",
	"EXPLAIN ANALYZE INSERT INTO fuzz_t VALUES (3, 'z')",
}

// standby runs a statement where writes are refused, and says whether the
// error is that refusal.
type standby struct {
	name    string
	run     func(ctx context.Context, query string) error
	refused func(error) bool
}

func FuzzReadOnly(f *testing.F) {
	for _, q := range readOnlySeeds {
		f.Add(q)
	}
	table := "scaleout_fuzz_" + randomHex(f)
	standbys := []standby{postgresStandby(f, table), mariaDBReplica(f, table)}
	f.Fuzz(func(t *testing.T, query string) {
		query = strings.ReplaceAll(query, fuzzTable, table)
		if !replica.ReadOnly(query) {
			return // only what would go to a replica runs: nothing else must
		}
		for _, s := range standbys {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := s.run(ctx, query)
			cancel()
			if s.refused(err) {
				t.Fatalf("ReadOnly(%q) = true, but the %s refused it as a write: %v", query, s.name, err)
			}
		}
	})
}

// postgresStandby returns the shared hot standby, with table created on
// the primary and replayed. Statements run in a transaction rolled back,
// under a 1 s statement_timeout; the standby refuses a write with SQLSTATE
// 25006 (read_only_sql_transaction).
func postgresStandby(f *testing.F, table string) standby {
	primary := testenv.PostgresDB(f, testenv.PGPrimaryDSN(f))
	db := testenv.PostgresDB(f, testenv.PGReplicaDSN(f))
	ctx := context.Background()
	_, err := primary.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s (id int PRIMARY KEY, v text); INSERT INTO %[1]s VALUES (1, 'a')`, table))
	require.NoError(f, err)
	f.Cleanup(func() { _, _ = primary.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table) })
	require.Eventually(f, func() bool {
		var n int
		return db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n) == nil && n == 1
	}, 10*time.Second, 20*time.Millisecond, "table %s never replayed on the standby", table)

	s := standby{
		name: "PostgreSQL standby",
		run: func(ctx context.Context, query string) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			if _, err := tx.ExecContext(ctx, "SET LOCAL statement_timeout = '1s'"); err != nil {
				return err
			}
			// No arguments: pgx sends the simple protocol, which runs
			// several statements.
			_, err = tx.ExecContext(ctx, query)
			return err
		},
		refused: func(err error) bool {
			var pe *pgconn.PgError
			return errors.As(err, &pe) && pe.Code == "25006"
		},
	}
	// The oracle must work: a write is refused.
	require.True(f, s.refused(s.run(ctx, "INSERT INTO "+table+" VALUES (2, 'b')")), "the standby took a write")
	return s
}

// mariaDBReplica returns the shared MariaDB replica, reached as a user of
// this run's own: root holds READ_ONLY ADMIN, which read_only does not
// stop, so its writes would land on the replica. The user, created on the
// primary, may do anything in the scaleout database but bypass read_only;
// the replica refuses its writes with error 1290 (or 1836 under
// innodb_read_only). Statements may be several (multiStatements) and run
// under max_statement_time = 1 s.
func mariaDBReplica(f *testing.F, table string) standby {
	ctx := context.Background()
	primary, err := sql.Open("mysql", testenv.MySQLPrimaryDSN(f))
	require.NoError(f, err)
	f.Cleanup(func() { _ = primary.Close() })
	user, password := "scaleout_fuzz_"+randomHex(f)[:8], randomHex(f)
	for _, stmt := range []string{
		fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'", user, password),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON scaleout.* TO '%s'@'127.0.0.1'", user),
		fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v text)", table),
		fmt.Sprintf("INSERT INTO %s VALUES (1, 'a')", table),
	} {
		_, err := primary.ExecContext(ctx, stmt)
		require.NoError(f, err, stmt)
	}
	f.Cleanup(func() {
		_, _ = primary.ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table)
		_, _ = primary.ExecContext(context.Background(), fmt.Sprintf("DROP USER IF EXISTS '%s'@'127.0.0.1'", user))
	})

	cfg, err := mysql.ParseDSN(testenv.MySQLReplicaDSN(f))
	require.NoError(f, err)
	cfg.User, cfg.Passwd = user, password
	cfg.MultiStatements = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["max_statement_time"] = "1"
	db, err := sql.Open("mysql", cfg.FormatDSN())
	require.NoError(f, err)
	f.Cleanup(func() { _ = db.Close() })
	require.Eventually(f, func() bool {
		var n int
		return db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n) == nil && n == 1
	}, 10*time.Second, 20*time.Millisecond, "user %s or table %s never reached the replica", user, table)

	s := standby{
		name: "MariaDB replica",
		run: func(ctx context.Context, query string) error {
			_, err := db.ExecContext(ctx, query)
			return err
		},
		refused: func(err error) bool {
			var me *mysql.MySQLError
			return errors.As(err, &me) && (me.Number == 1290 || me.Number == 1836)
		},
	}
	require.True(f, s.refused(s.run(ctx, "INSERT INTO "+table+" VALUES (2, 'b')")), "the replica took a write")
	return s
}

func randomHex(t testing.TB) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
