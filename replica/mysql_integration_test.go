package replica_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/replica"
)

// These tests run on the shared MariaDB primary (server_id 1) and read-only
// replica (server_id 2) of scripts/services.sh. Two of them stop the
// replica's SQL thread for a moment, so none of them is parallel, and each
// restarts replication in its cleanup, waiting until it runs again, so the
// next test (or package) finds the pair as it was.

// mysqlDB opens dsn and checks that it answers; the pool is closed when the
// test ends.
func mysqlDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, db.PingContext(ctx), "MariaDB at %s", dsn)
	return db
}

// mysqlPair returns pools on the shared primary and replica, once the
// replica runs both replication threads and has caught up.
func mysqlPair(t *testing.T) (primary, rep *sql.DB) {
	t.Helper()
	primary = mysqlDB(t, testenv.MySQLPrimaryDSN(t))
	rep = mysqlDB(t, testenv.MySQLReplicaDSN(t))
	waitAttached(t, t.Context(), rep)
	return primary, rep
}

// waitAttached waits until the probe sees rep as an attached replica with
// no lag: another test's cleanup may still be restarting its threads.
func waitAttached(t *testing.T, ctx context.Context, rep *sql.DB) {
	t.Helper()
	var last replica.State
	var lastErr error
	require.Eventually(t, func() bool {
		last, lastErr = replica.MySQL{}.Probe(ctx, rep)
		return lastErr == nil && last.Role == replica.RoleReplica && !last.Detached && last.Lag == 0
	}, 10*time.Second, 20*time.Millisecond, "replica never attached: last state %+v, error %v", &last, &lastErr)
}

// stopSQLThread stops the replica's SQL thread (the I/O thread keeps
// receiving, so Seconds_Behind_Master turns NULL) and registers the
// restart, which waits until replication runs again.
func stopSQLThread(t *testing.T, rep *sql.DB) {
	t.Helper()
	t.Cleanup(func() { startReplication(t, rep) })
	_, err := rep.ExecContext(t.Context(), "STOP SLAVE SQL_THREAD")
	require.NoError(t, err)
}

// startReplication runs START SLAVE (a note, not an error, when the
// threads already run) and waits until the replica is attached again. It
// uses its own context: in a cleanup t.Context() is already canceled.
func startReplication(t *testing.T, rep *sql.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err := rep.ExecContext(ctx, "START SLAVE")
	require.NoError(t, err)
	waitAttached(t, ctx, rep)
}

// mysqlTable returns a table name no other test or run uses: MySQL
// identifiers are at most 64 characters, and testenv.Prefix may be longer.
func mysqlTable(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("scaleout_replica_%x", b)
}

func serverID(t *testing.T, ctx context.Context, d interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) int {
	t.Helper()
	var id int
	require.NoError(t, d.QueryRowContext(ctx, "SELECT @@server_id").Scan(&id))
	return id
}

func TestMySQLPairProbe(t *testing.T) {
	primary, rep := mysqlPair(t)
	ctx := t.Context()

	st, err := replica.MySQL{}.Probe(ctx, primary)
	require.NoError(t, err)
	require.Equal(t, replica.State{Role: replica.RolePrimary}, st)

	st, err = replica.MySQL{}.Probe(ctx, rep)
	require.NoError(t, err)
	require.Equal(t, replica.State{Role: replica.RoleReplica}, st, "attached, caught up, lag 0")
}

func TestMySQLPairDetached(t *testing.T) {
	_, rep := mysqlPair(t)
	stopSQLThread(t, rep)

	st, err := replica.MySQL{}.Probe(t.Context(), rep)
	require.NoError(t, err)
	require.Equal(t, replica.RoleReplica, st.Role)
	require.True(t, st.Detached, "SQL thread stopped: %+v", st)
}

// TestMySQLPairRouting: the nodes are not declared (and are given in the wrong
// order on purpose); the probes find out which is which.
func TestMySQLPairRouting(t *testing.T) {
	const interval = 100 * time.Millisecond
	primary, rep := mysqlPair(t)
	r, err := replica.New(replica.Config{Probe: replica.MySQL{}, ProbeInterval: interval, MaxLag: 2 * time.Second},
		replica.Node{Name: "replica", DB: rep}, replica.Node{Name: "primary", DB: primary})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	d, ctx := r.DB(), t.Context()

	table := mysqlTable(t)
	_, err = d.ExecContext(ctx, fmt.Sprintf("CREATE TABLE `%s` (id INT AUTO_INCREMENT PRIMARY KEY, sid INT NOT NULL)", table))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = primary.ExecContext(ctx, fmt.Sprintf("DROP TABLE IF EXISTS `%s`", table))
	})

	for range 10 {
		require.Equal(t, 2, serverID(t, ctx, d), "reads land on the replica")
	}
	// @@server_id is evaluated where the INSERT runs.
	_, err = d.ExecContext(ctx, fmt.Sprintf("INSERT INTO `%s` (sid) VALUES (@@server_id)", table))
	require.NoError(t, err)
	var sid int
	require.NoError(t, primary.QueryRowContext(ctx, fmt.Sprintf("SELECT sid FROM `%s`", table)).Scan(&sid))
	require.Equal(t, 1, sid, "the write ran on the primary")
	// And it replicates: a routed read (on the replica) sees it soon.
	require.Eventually(t, func() bool {
		var n int
		return d.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) FROM `%s`", table)).Scan(&n) == nil && n == 1
	}, 5*time.Second, 10*time.Millisecond, "the row reaches the replica")

	// A detached replica serves no reads while the primary is up: the next
	// probe (at most one interval away, plus its own round trips) sees it.
	stopSQLThread(t, rep)
	start := time.Now()
	require.Eventually(t, func() bool { return serverID(t, ctx, d) == 1 },
		10*interval, 5*time.Millisecond, "reads move to the primary")
	t.Logf("reads moved to the primary %v after STOP SLAVE SQL_THREAD", time.Since(start).Round(time.Millisecond))
	st := r.Status()
	require.True(t, st[0].State.Detached && !st[0].Serving, "%+v", st[0])
	require.True(t, st[1].Serving, "%+v", st[1])

	// Replication restarted, the replica gets the reads back.
	startReplication(t, rep)
	require.Eventually(t, func() bool { return serverID(t, ctx, d) == 2 },
		10*interval, 5*time.Millisecond, "reads return to the replica")
}
