//go:build unix

package testenv

import (
	"database/sql"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func inRecovery(t *testing.T, db *sql.DB) bool {
	t.Helper()
	var r bool
	require.NoError(t, db.QueryRowContext(t.Context(), "select pg_is_in_recovery()").Scan(&r))
	return r
}

// eventuallyValue waits until key k reads v on db (a standby replays asynchronously).
func eventuallyValue(t *testing.T, db *sql.DB, k, v string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var got string
		assert.NoError(c, db.QueryRowContext(t.Context(), "select v from kv where k = $1", k).Scan(&got))
		assert.Equal(c, v, got)
	}, 10*time.Second, 20*time.Millisecond)
}

// requireGone checks that postmaster pid and its children kids have exited.
func requireGone(t *testing.T, pid int, kids []proc) {
	t.Helper()
	require.True(t, gone(pid), "postmaster %d still exists", pid)
	if runtime.GOOS == "linux" {
		require.NotEmpty(t, kids, "a postmaster has children")
	}
	for _, k := range kids {
		require.False(t, k.alive(), "child %d of postmaster %d still runs", k.pid, pid)
	}
}

func TestStartPostgresPairPromote(t *testing.T) {
	t.Parallel()
	start := time.Now()
	pair := StartPostgresPair(t)
	t.Logf("pair started in %v", time.Since(start))
	ctx := t.Context()
	primary, standby := PostgresDB(t, pair.Primary.DSN()), PostgresDB(t, pair.Standby.DSN())
	require.NotEqual(t, pair.Primary.Addr(), pair.Standby.Addr())

	require.False(t, inRecovery(t, primary))
	require.True(t, inRecovery(t, standby))
	_, err := primary.ExecContext(ctx, "create table kv (k text primary key, v text)")
	require.NoError(t, err)
	_, err = primary.ExecContext(ctx, "insert into kv values ('a', '1')")
	require.NoError(t, err)
	eventuallyValue(t, standby, "a", "1")
	_, err = standby.ExecContext(ctx, "insert into kv values ('x', 'x')")
	require.Error(t, err, "a standby refuses writes")

	pid := pair.Primary.s.pid()
	kids := pgChildren(pid)
	pair.Primary.Stop()
	requireGone(t, pid, kids)
	require.Error(t, PostgresDB(t, pair.Primary.DSN()).PingContext(ctx), "primary should be down")
	pair.Primary.Stop() // no-op when not running
	pair.Primary.Kill()

	var promoted bool
	require.NoError(t, standby.QueryRowContext(ctx, "select pg_promote()").Scan(&promoted))
	require.True(t, promoted)
	require.False(t, inRecovery(t, standby))
	_, err = standby.ExecContext(ctx, "insert into kv values ('b', '2')")
	require.NoError(t, err)

	// The old primary comes back on its port with its data (a split brain now, which a
	// fault test may want).
	addr := pair.Primary.Addr()
	pair.Primary.Start()
	require.Equal(t, addr, pair.Primary.Addr())
	primary = PostgresDB(t, pair.Primary.DSN())
	require.False(t, inRecovery(t, primary))
	eventuallyValue(t, primary, "a", "1")
}

func TestStartPostgresPairKillStart(t *testing.T) {
	t.Parallel()
	pair := StartPostgresPair(t)
	ctx := t.Context()
	primary := PostgresDB(t, pair.Primary.DSN())
	_, err := primary.ExecContext(ctx, "create table kv (k text primary key, v text)")
	require.NoError(t, err)

	// A killed standby comes back and catches up with what it missed.
	pid := pair.Standby.s.pid()
	kids := pgChildren(pid)
	pair.Standby.Kill()
	requireGone(t, pid, kids)
	_, err = primary.ExecContext(ctx, "insert into kv values ('a', '1')")
	require.NoError(t, err)
	pair.Standby.Start()
	standby := PostgresDB(t, pair.Standby.DSN())
	require.True(t, inRecovery(t, standby))
	eventuallyValue(t, standby, "a", "1")

	// A killed primary recovers from its WAL; the standby reconnects to it by itself.
	// Only this session's commits must survive the kill, so only it waits for the flush.
	conn, err := primary.Conn(ctx)
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, "set synchronous_commit = on")
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, "insert into kv values ('b', '2')")
	require.NoError(t, err)
	pid = pair.Primary.s.pid()
	kids = pgChildren(pid)
	pair.Primary.Kill()
	requireGone(t, pid, kids)
	pair.Primary.Start()
	primary = PostgresDB(t, pair.Primary.DSN())
	eventuallyValue(t, primary, "b", "2")
	_, err = primary.ExecContext(ctx, "insert into kv values ('c', '3')")
	require.NoError(t, err)
	eventuallyValue(t, standby, "c", "3")
}

func TestFindPGBin(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}

	dir, act, msg := findPGBin(env(nil), []string{empty})
	require.Empty(t, dir)
	require.Equal(t, skip, act)
	require.Contains(t, msg, "postgresql")
	require.Contains(t, msg, "scripts/services.sh")

	_, act, _ = findPGBin(env(map[string]string{EnvRequireServices: "1"}), []string{empty})
	require.Equal(t, fail, act)

	if dirs := pgBinDirs(); len(dirs) > 0 {
		if dir, act, _ := findPGBin(env(nil), append([]string{empty}, dirs...)); act == use {
			require.NotEqual(t, empty, dir, "an empty directory does not qualify")
		}
	}
}

// TestPostgresPairCleanup checks that nothing of a pair is left once its test is over.
func TestPostgresPairCleanup(t *testing.T) {
	t.Parallel()
	var pids []int
	var kids [][]proc
	var dir string
	t.Run("pair", func(t *testing.T) {
		pair := StartPostgresPair(t)
		for _, s := range []*PostgresServer{pair.Primary, pair.Standby} {
			pids = append(pids, s.s.pid())
			kids = append(kids, pgChildren(s.s.pid()))
		}
		dir = pair.Primary.s.dir
	})
	if t.Failed() || pids == nil {
		return // skipped or failed: nothing to check
	}
	for i, pid := range pids {
		requireGone(t, pid, kids[i])
	}
	require.NoDirExists(t, dir)
}
