package memdb_test

import (
	"context"
	"database/sql"
	"net"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/examples/webfarm/memdb"
	"github.com/scaleout/scaleout/replica"
)

// The statements, with the text the farm runs on PostgreSQL too.
const (
	sqlCreate = `CREATE TABLE IF NOT EXISTS kv (k text PRIMARY KEY, v text NOT NULL)`
	sqlDrop   = `DROP TABLE IF EXISTS kv`
	sqlGet    = `SELECT v FROM kv WHERE k = $1`
	sqlCount  = `SELECT count(*) FROM kv`
	sqlScan   = `SELECT k, v FROM kv ORDER BY k`
	sqlPut    = `INSERT INTO kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`
	sqlDelete = `DELETE FROM kv WHERE k = $1`
	sqlRecov  = `SELECT pg_is_in_recovery()`
)

func newCluster(t *testing.T, cfg memdb.Config) (*memdb.Cluster, []*sql.DB) {
	t.Helper()
	c := memdb.NewCluster("pg", cfg)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	var dbs []*sql.DB
	for _, n := range c.Nodes() {
		dbs = append(dbs, n.DB)
	}
	return c, dbs
}

func get(t *testing.T, db *sql.DB, k string) (string, error) {
	t.Helper()
	var v string
	err := db.QueryRowContext(t.Context(), sqlGet, k).Scan(&v)
	return v, err
}

func count(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var n int64
	require.NoError(t, db.QueryRowContext(t.Context(), sqlCount).Scan(&n))
	return n
}

func scan(t *testing.T, db *sql.DB) [][2]string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), sqlScan)
	require.NoError(t, err)
	defer func() { require.NoError(t, rows.Close()) }()
	out := [][2]string{}
	for rows.Next() {
		var kv [2]string
		require.NoError(t, rows.Scan(&kv[0], &kv[1]))
		out = append(out, kv)
	}
	require.NoError(t, rows.Err())
	return out
}

func exec(t *testing.T, db *sql.DB, query string, args ...any) int64 {
	t.Helper()
	res, err := db.ExecContext(t.Context(), query, args...)
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	return n
}

func sqlState(t *testing.T, err error) string {
	t.Helper()
	var e *memdb.Error
	require.ErrorAs(t, err, &e)
	return e.SQLState()
}

func TestNodes(t *testing.T) {
	c, _ := newCluster(t, memdb.Config{})
	var names []string
	var roles []replica.Role
	for _, n := range c.Nodes() {
		names, roles = append(names, n.Name), append(roles, n.Role)
	}
	require.Equal(t, []string{"pg-primary", "pg-replica-1", "pg-replica-2"}, names)
	require.Equal(t, []replica.Role{replica.RolePrimary, replica.RoleReplica, replica.RoleReplica}, roles)

	c3 := memdb.NewCluster("", memdb.Config{Replicas: -1})
	defer func() { require.NoError(t, c3.Close()) }()
	require.Len(t, c3.Nodes(), 1)
	require.Equal(t, "db-primary", c3.Nodes()[0].Name)
}

func TestPrimary(t *testing.T) {
	_, dbs := newCluster(t, memdb.Config{})
	p := dbs[0]

	_, err := get(t, p, "a")
	require.ErrorContains(t, err, `relation "kv" does not exist`)
	require.Equal(t, "42P01", sqlState(t, err))

	exec(t, p, sqlCreate)
	exec(t, p, sqlCreate) // IF NOT EXISTS
	_, err = get(t, p, "a")
	require.ErrorIs(t, err, sql.ErrNoRows)
	require.Equal(t, int64(0), count(t, p))
	require.Equal(t, [][2]string{}, scan(t, p))

	require.Equal(t, int64(1), exec(t, p, sqlPut, "b", "2"))
	require.Equal(t, int64(1), exec(t, p, sqlPut, []byte("a"), []byte("1")))
	require.Equal(t, int64(1), exec(t, p, sqlPut, "b", "two")) // the upsert updates
	v, err := get(t, p, "b")
	require.NoError(t, err)
	require.Equal(t, "two", v)
	require.Equal(t, int64(2), count(t, p))
	require.Equal(t, [][2]string{{"a", "1"}, {"b", "two"}}, scan(t, p))

	require.Equal(t, int64(1), exec(t, p, sqlDelete, "a"))
	require.Equal(t, int64(0), exec(t, p, sqlDelete, "a"))
	require.Equal(t, [][2]string{{"b", "two"}}, scan(t, p))

	var recovering bool
	require.NoError(t, p.QueryRowContext(t.Context(), sqlRecov).Scan(&recovering))
	require.False(t, recovering)

	// Whitespace, case, a semicolon, a schema; prepared statements.
	exec(t, p, "create table if not exists Farm . KV(\n\tk TEXT primary key,v text not null);")
	exec(t, p, "insert into farm.kv(k,v)values($2,$1)\n on conflict(k) do update set v=excluded.v", "x", "k1")
	st, err := p.PrepareContext(t.Context(), "SELECT  v\nFROM farm.kv WHERE k=$1")
	require.NoError(t, err)
	defer func() { require.NoError(t, st.Close()) }()
	require.NoError(t, st.QueryRowContext(t.Context(), "k1").Scan(&v))
	require.Equal(t, "x", v)

	exec(t, p, sqlDrop)
	exec(t, p, sqlDrop) // IF EXISTS
	_, err = get(t, p, "b")
	require.Equal(t, "42P01", sqlState(t, err))
}

func TestBadInput(t *testing.T) {
	_, dbs := newCluster(t, memdb.Config{})
	p := dbs[0]
	exec(t, p, sqlCreate)
	ctx := t.Context()

	_, err := p.ExecContext(ctx, "UPDATE kv SET v = $1", "x")
	require.ErrorContains(t, err, `unsupported statement "UPDATE kv SET v = $1"`)
	_, err = p.PrepareContext(ctx, "SELECT 1")
	require.ErrorContains(t, err, "unsupported statement")
	_, err = p.ExecContext(ctx, sqlPut, 1, "x")
	require.ErrorContains(t, err, "argument $1 is a int64")
	_, err = p.ExecContext(ctx, sqlPut, "k", nil)
	require.ErrorContains(t, err, "null value for $2")
	_, err = p.ExecContext(ctx, sqlPut, "k")
	require.ErrorContains(t, err, "statement takes 2 arguments, got 1")
	_, err = p.ExecContext(ctx, sqlGet, sql.Named("k", "x"))
	require.ErrorContains(t, err, "named argument")
	_, err = p.ExecContext(ctx, `SELECT v FROM kv WHERE k = $2`, "x")
	require.ErrorContains(t, err, "statement takes 2 arguments, got 1")
	_, err = p.ExecContext(ctx, `INSERT INTO nope (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`, "k", "v")
	require.ErrorContains(t, err, `relation "nope" does not exist`)
	require.Equal(t, int64(0), count(t, p), "no failed statement wrote")

	c, _ := newCluster(t, memdb.Config{})
	c.Kill("no such node")
	c.Revive("no such node")
	other, _ := newCluster(t, memdb.Config{})
	_, err = c.Probe().Probe(ctx, other.Nodes()[0].DB)
	require.ErrorContains(t, err, "not a node of this cluster")
}

func TestWriteOnReplica(t *testing.T) {
	_, dbs := newCluster(t, memdb.Config{})
	exec(t, dbs[0], sqlCreate)
	r := dbs[1]
	for query, verb := range map[string]string{
		sqlCreate: "CREATE TABLE", sqlDrop: "DROP TABLE", sqlPut: "INSERT", sqlDelete: "DELETE",
	} {
		args := []any{"k", "v"}[:map[string]int{sqlPut: 2, sqlDelete: 1}[query]]
		_, err := r.ExecContext(t.Context(), query, args...)
		require.ErrorContains(t, err, "cannot execute "+verb+" in a read-only transaction")
		require.Equal(t, "25006", sqlState(t, err))
	}
	var recovering bool
	require.NoError(t, r.QueryRowContext(t.Context(), sqlRecov).Scan(&recovering))
	require.True(t, recovering)
}

func TestReplication(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = time.Second
		c, dbs := newCluster(t, memdb.Config{ReplicationDelay: delay})
		p, r1, r2 := dbs[0], dbs[1], dbs[2]
		probe := c.Probe().(replica.PositionProbe)
		state := func(db *sql.DB) replica.State {
			t.Helper()
			st, err := probe.Probe(t.Context(), db)
			require.NoError(t, err)
			return st
		}

		require.Equal(t, replica.State{Role: replica.RoleReplica}, state(r1), "caught up with nothing")
		exec(t, p, sqlCreate)
		exec(t, p, sqlPut, "a", "1")
		require.Equal(t, replica.State{Role: replica.RolePrimary, Position: 2, Generation: 1}, state(p))
		pos, err := probe.WritePosition(t.Context(), p)
		require.NoError(t, err)
		require.Equal(t, uint64(2), pos)
		_, err = probe.WritePosition(t.Context(), r1)
		require.Error(t, err, "a replica has no write position")

		_, err = get(t, r1, "a")
		require.ErrorContains(t, err, `relation "kv" does not exist`, "the replica has not applied the CREATE")
		time.Sleep(delay / 4)
		require.Equal(t, replica.State{Role: replica.RoleReplica, Lag: delay / 4}, state(r1))

		time.Sleep(delay - delay/4 - time.Nanosecond)
		_, err = get(t, r1, "a")
		require.Error(t, err, "1ns early")
		time.Sleep(time.Nanosecond)
		v, err := get(t, r1, "a")
		require.NoError(t, err, "applied at commit + ReplicationDelay")
		require.Equal(t, "1", v)
		require.Equal(t, replica.State{Role: replica.RoleReplica, Position: 2}, state(r2))

		// Writes spread in time are applied one by one.
		exec(t, p, sqlPut, "a", "2")
		time.Sleep(delay / 2)
		exec(t, p, sqlDelete, "a")
		st := state(r1)
		require.Equal(t, delay/2, st.Lag, "the age of the oldest commit not applied")
		require.Equal(t, uint64(2), st.Position)
		time.Sleep(delay / 2)
		v, err = get(t, r1, "a")
		require.NoError(t, err)
		require.Equal(t, "2", v)
		st = state(r1)
		require.Equal(t, delay/2, st.Lag)
		require.Equal(t, uint64(3), st.Position)
		time.Sleep(delay / 2)
		_, err = get(t, r1, "a")
		require.ErrorIs(t, err, sql.ErrNoRows)
		require.Equal(t, replica.State{Role: replica.RoleReplica, Position: 4}, state(r1))
		require.Equal(t, [][2]string{}, scan(t, r2))
	})
}

func TestLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const latency = 20 * time.Millisecond
		c, dbs := newCluster(t, memdb.Config{Latency: latency})
		start := time.Now()
		exec(t, dbs[0], sqlCreate)
		require.Equal(t, latency, time.Since(start))
		start = time.Now()
		_, err := c.Probe().Probe(t.Context(), dbs[1])
		require.NoError(t, err)
		require.Equal(t, latency, time.Since(start))

		ctx, cancel := context.WithTimeout(t.Context(), latency/2)
		defer cancel()
		_, err = dbs[0].ExecContext(ctx, sqlPut, "a", "1")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, int64(0), count(t, dbs[0]), "a statement cancelled in flight did not run")
	})
}

func TestKillRevive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, dbs := newCluster(t, memdb.Config{ReplicationDelay: time.Second})
		p, r1 := dbs[0], dbs[1]
		exec(t, p, sqlCreate)
		time.Sleep(time.Second)
		exec(t, p, sqlPut, "a", "1")

		refused := func(err error) {
			t.Helper()
			var op *net.OpError
			require.ErrorAs(t, err, &op)
			require.ErrorIs(t, err, syscall.ECONNREFUSED)
			require.Contains(t, err.Error(), "pg-replica-1")
		}
		c.Kill("pg-replica-1")
		_, err := get(t, r1, "a")
		refused(err)
		_, err = c.Probe().Probe(t.Context(), r1)
		refused(err)
		refused(r1.PingContext(t.Context()))
		_, err = r1.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
		refused(err)

		time.Sleep(2 * time.Second)
		v, err := get(t, dbs[2], "a")
		require.NoError(t, err, "the other replica applies")
		require.Equal(t, "1", v)

		c.Revive("pg-replica-1")
		st, err := c.Probe().Probe(t.Context(), r1)
		require.NoError(t, err)
		require.Equal(t, replica.State{Role: replica.RoleReplica, Position: 2}, st, "caught up")
		v, err = get(t, r1, "a")
		require.NoError(t, err)
		require.Equal(t, "1", v)

		// A killed primary: statements fail, replicas still apply what it
		// committed.
		exec(t, p, sqlPut, "a", "2")
		c.Kill("pg-primary")
		_, err = p.ExecContext(t.Context(), sqlPut, "a", "3")
		var op *net.OpError
		require.ErrorAs(t, err, &op)
		_, err = c.Probe().(replica.PositionProbe).WritePosition(t.Context(), p)
		require.ErrorAs(t, err, &op)
		time.Sleep(time.Second)
		v, err = get(t, r1, "a")
		require.NoError(t, err)
		require.Equal(t, "2", v)
		c.Revive("pg-primary")
		v, err = get(t, p, "a")
		require.NoError(t, err)
		require.Equal(t, "2", v)
	})
}

func TestTransactions(t *testing.T) {
	_, dbs := newCluster(t, memdb.Config{})
	p, r1 := dbs[0], dbs[1]
	ctx := t.Context()
	exec(t, p, sqlCreate)

	tx, err := p.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, sqlPut, "a", "1")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.Equal(t, int64(1), count(t, r1))

	tx, err = p.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, sqlPut, "a", "2")
	require.NoError(t, err)
	require.ErrorContains(t, tx.Rollback(), "cannot roll back")

	tx, err = p.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, sqlPut, "a", "3")
	require.ErrorContains(t, err, "cannot execute INSERT in a read-only transaction")
	var v string
	require.NoError(t, tx.QueryRowContext(ctx, sqlGet, "a").Scan(&v))
	require.Equal(t, "2", v)
	require.NoError(t, tx.Rollback())

	tx, err = r1.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	require.NoError(t, err)
	require.NoError(t, tx.QueryRowContext(ctx, sqlGet, "a").Scan(&v))
	require.Equal(t, "2", v)
	require.NoError(t, tx.Commit())
}

// TestRouter runs the cluster behind a replica.Router: reads go to the
// replicas and writes to the primary, a tracked context reads its own
// writes (on the primary until a replica has applied them, then on the
// replica), and a killed replica is taken out of the reads.
func TestRouter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			interval = 100 * time.Millisecond
			delay    = 500 * time.Millisecond
		)
		c, _ := newCluster(t, memdb.Config{ReplicationDelay: delay})
		r, err := replica.New(replica.Config{Probe: c.Probe(), ProbeInterval: interval, MaxLag: time.Second}, c.Nodes()...)
		require.NoError(t, err)
		defer func() { require.NoError(t, r.Close()) }()
		db := r.DB()
		ctx := t.Context()
		served := func(ctx context.Context) string {
			t.Helper()
			reader, err := r.Reader(ctx)
			require.NoError(t, err)
			for _, n := range c.Nodes() {
				if n.DB == reader {
					return n.Name
				}
			}
			return "?"
		}
		readGet := func(ctx context.Context) (string, error) {
			t.Helper()
			var v string
			err := db.QueryRowContext(ctx, sqlGet, "a").Scan(&v)
			return v, err
		}

		_, err = db.ExecContext(ctx, sqlCreate)
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, sqlPut, "a", "1")
		require.NoError(t, err, "the write went to the primary")
		time.Sleep(delay + 2*interval)
		v, err := readGet(ctx)
		require.NoError(t, err)
		require.Equal(t, "1", v)
		require.Contains(t, served(ctx), "pg-replica-")
		var recovering bool
		require.NoError(t, db.QueryRowContext(ctx, sqlRecov).Scan(&recovering))
		require.True(t, recovering, "SELECTs are served by a replica")

		// Right after a write, an untracked read sees the replica's old
		// value; a tracked one sees the write, on the primary.
		tracked := replica.Track(ctx)
		_, err = db.ExecContext(tracked, sqlPut, "a", "2")
		require.NoError(t, err)
		v, err = readGet(ctx)
		require.NoError(t, err)
		require.Equal(t, "1", v, "stale read on a lagging replica")
		v, err = readGet(tracked)
		require.NoError(t, err)
		require.Equal(t, "2", v, "read-your-writes")
		require.Equal(t, "pg-primary", served(tracked))
		mark, ok := replica.MarkOf(tracked)
		require.True(t, ok)
		require.Equal(t, uint64(3), mark.Position, "the write's position, from WritePosition")

		// Once the replicas have applied it, and a probe has seen so, the
		// tracked reads go back to the replicas.
		time.Sleep(delay + 2*interval)
		require.Contains(t, served(tracked), "pg-replica-")
		v, err = readGet(tracked)
		require.NoError(t, err)
		require.Equal(t, "2", v)

		// A killed replica gets no reads; revived, it gets them again.
		c.Kill("pg-replica-1")
		time.Sleep(3 * interval)
		for range 4 {
			require.Equal(t, "pg-replica-2", served(ctx))
		}
		c.Revive("pg-replica-1")
		time.Sleep(3 * interval)
		seen := map[string]bool{}
		for range 4 {
			seen[served(ctx)] = true
		}
		require.True(t, seen["pg-replica-1"], "readmitted: %v", seen)
	})
}
