package chaos

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/rediselector"
	"github.com/scaleout/scaleout/internal/testenv"
)

// electorConfig is short, so that pauses and blackholes of a few hundred
// milliseconds end terms and elect new leaders within a run: Lease 400ms,
// renewal every 100ms, retry every 50ms, self-fencing 40ms before the
// lease runs out (the defaults' ratios).
func electorConfig(clone int) failover.Config {
	return failover.Config{ID: "clone-" + strconv.Itoa(clone), Lease: 400 * time.Millisecond}
}

// electorRunConfig campaigns again after the RetryInterval of
// electorConfig's Lease.
var electorRunConfig = failover.RunConfig{RetryInterval: 400 * time.Millisecond / 8}

// electorPauseFor: pauses last 225ms to 1125ms, most longer than a Lease,
// a campaign and a new leader's first writes, so that the paused leader's
// write arrives after them.
const electorPauseFor = 900 * time.Millisecond

// An electorBackend is the elector of each clone, the fences they write
// through, the records that settle the fences' outcomes, and what the
// schedule may break.
type electorBackend struct {
	name    string
	clones  []ElectorClone
	records map[string]ElectorFenceRecord
	links   []*testenv.FaultProxy
	procs   []Process
	request func([]byte) bool
}

// electorPG is the PostgreSQL fence: FenceTx on a resource private to the
// run, then an insert into a table private to the run whose serial column
// is the fence's commit order (FenceTx's row lock runs the fenced
// transactions on the resource one at a time).
type electorPG struct {
	db              *sql.DB
	resource, table string
}

func (f electorPG) Name() string { return "pg" }

func (f electorPG) Write(ctx context.Context, token uint64, w ElectorWriteOp) error {
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := failover.FenceTx(ctx, tx, f.resource, token); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+f.table+` (token, term, write_id) VALUES ($1, $2, $3)`,
		int64(token), w.Term, w.ID); err != nil {
		return err
	}
	return tx.Commit()
}

func (f electorPG) Committed(ctx context.Context) (map[int64]int64, ElectorFenceState, error) {
	var st ElectorFenceState
	rows, err := f.db.QueryContext(ctx, `SELECT seq, write_id FROM `+f.table+` ORDER BY seq`)
	if err != nil {
		return nil, st, err
	}
	defer rows.Close()
	committed := map[int64]int64{}
	n := int64(0)
	for rows.Next() {
		var seq, id int64
		if err := rows.Scan(&seq, &id); err != nil {
			return nil, st, err
		}
		n++
		committed[id] = n
		st.Last = id
	}
	if err := rows.Err(); err != nil {
		return nil, st, err
	}
	var tok int64
	err = f.db.QueryRowContext(ctx, `SELECT token FROM scaleout_fence WHERE resource = $1`, f.resource).Scan(&tok)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		st.Empty = true
	case err != nil:
		return nil, st, err
	}
	st.Token = uint64(tok)
	return committed, st, nil
}

// electorPGFences creates the run's resource and table (both named with a
// random suffix: the backends are built under one test, whose Prefix they
// share) and returns the
// record and, per clone, a fence on a pool through a proxy of its own.
func electorPGFences(t *testing.T) (ElectorFenceRecord, []ElectorFence, []*testenv.FaultProxy) {
	dsn := testenv.PGPrimaryDSN(t)
	direct := testenv.PostgresDB(t, dsn)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := failover.CreateFenceTable(ctx, direct); err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	record := electorPG{db: direct, resource: testenv.Prefix(t) + "elector-" + suffix, table: "chaos_elector_" + suffix}
	if _, err := direct.ExecContext(ctx, `CREATE TABLE `+record.table+
		` (seq bigserial PRIMARY KEY, token bigint NOT NULL, term int NOT NULL, write_id bigint NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = direct.ExecContext(ctx, `DROP TABLE IF EXISTS `+record.table)
		_, _ = direct.ExecContext(ctx, `DELETE FROM scaleout_fence WHERE resource = $1`, record.resource)
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var fences []ElectorFence
	var links []*testenv.FaultProxy
	for range clones {
		p := testenv.StartFaultProxy(t, u.Host)
		pu := *u
		pu.Host = p.Addr()
		db := testenv.PostgresDB(t, pu.String())
		fences = append(fences, electorPG{db: db, resource: record.resource, table: record.table})
		links = append(links, p)
	}
	return record, fences, links
}

// electorRedisFence is rediselector.FenceSet on one key; it keeps no
// commit order, and its final state is the key's value (the ID of the
// last write) and the fence key's token.
type electorRedisFence struct {
	client redis.UniversalClient
	key    string
}

func (f electorRedisFence) Name() string { return "redis" }

func (f electorRedisFence) Write(ctx context.Context, token uint64, w ElectorWriteOp) error {
	return rediselector.FenceSet(ctx, f.client, f.key, []byte(strconv.FormatInt(w.ID, 10)), token)
}

func (f electorRedisFence) Committed(ctx context.Context) (map[int64]int64, ElectorFenceState, error) {
	var st ElectorFenceState
	fk, err := rediselector.FenceKey(f.key)
	if err != nil {
		return nil, st, err
	}
	// Two GETs: the key and its fence key share a slot, but the run is
	// over and nothing writes them any more.
	v, err := f.client.Get(ctx, f.key).Result()
	if errors.Is(err, redis.Nil) {
		st.Empty = true
		return nil, st, nil
	}
	if err != nil {
		return nil, st, err
	}
	if st.Last, err = strconv.ParseInt(v, 10, 64); err != nil {
		return nil, st, err
	}
	tok, err := f.client.Get(ctx, fk).Uint64()
	if err != nil {
		return nil, st, err
	}
	st.Token = tok
	return nil, st, nil
}

// electorPartition pauses a Memory candidate by cutting it off its store.
func electorPartition(m *failover.Memory) func(bool) { return m.Partition }

func electorBackends() []func(t *testing.T) electorBackend {
	return []func(t *testing.T) electorBackend{
		// Memory: the candidates share a MemoryStore; a pause partitions
		// one from it. The schedule breaks the links to PostgreSQL.
		func(t *testing.T) electorBackend {
			store := failover.NewMemoryStore()
			record, pg, links := electorPGFences(t)
			b := electorBackend{name: "memory", records: map[string]ElectorFenceRecord{"pg": record}, links: links}
			for i := range clones {
				m, err := store.Candidate(electorConfig(i))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = m.Close() })
				b.clones = append(b.clones, ElectorClone{Elector: m, Fences: []ElectorFence{pg[i]}, Pause: electorPartition(m), UseRun: i%2 == 0, RunConfig: electorRunConfig})
			}
			return b
		},
		func(t *testing.T) electorBackend {
			srv := testenv.StartRedis(t, testenv.RedisOptions{AppendOnly: true})
			return electorRedis(t, "redis (appendfsync always)", []string{srv.Addr()}, func(c *redis.Options) redis.UniversalClient {
				return redis.NewClient(c)
			}, []Process{srv})
		},
		func(t *testing.T) electorBackend {
			addrs := testenv.RedisClusterAddrs(t)
			testenv.RedisClusterClient(t) // deletes Prefix(t) at the end
			return electorRedis(t, "redis-cluster", addrs, nil, nil)
		},
	}
}

// electorRedis builds the Redis backends: per clone, an elector client
// whose every node is reached through a pause proxy (the workload's) in
// front of a fault proxy (the schedule's), and a fence client through the
// fault proxies alone. single builds a single-server client; nil means a
// Cluster client over addrs.
func electorRedis(t *testing.T, name string, addrs []string, single func(*redis.Options) redis.UniversalClient, procs []Process) electorBackend {
	record, pg, links := electorPGFences(t)
	b := electorBackend{name: name, links: links, procs: procs, request: redisCommand,
		records: map[string]ElectorFenceRecord{"pg": record}}
	prefix := testenv.Prefix(t)
	key := prefix + "{elector}:data"
	newClient := func(route map[string]string) redis.UniversalClient {
		var d net.Dialer
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			if a, ok := route[addr]; ok {
				addr = a
			}
			return d.DialContext(ctx, network, addr)
		}
		var c redis.UniversalClient
		if single != nil {
			c = single(&redis.Options{Addr: addrs[0], ContextTimeoutEnabled: true, Dialer: dial})
		} else {
			c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true, Dialer: dial})
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	for i := range clones {
		faulty, paused := map[string]string{}, map[string]string{}
		var pauses []*testenv.FaultProxy
		for _, a := range addrs {
			f := testenv.StartFaultProxy(t, a)
			p := testenv.StartFaultProxy(t, f.Addr())
			faulty[a], paused[a] = f.Addr(), p.Addr()
			b.links = append(b.links, f)
			pauses = append(pauses, p)
		}
		e, err := rediselector.New(newClient(paused), rediselector.Config{Role: "chaos-elector", Prefix: prefix, Config: electorConfig(i)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		fence := electorRedisFence{client: newClient(faulty), key: key}
		if i == 0 {
			b.records["redis"] = electorRedisFence{client: newClient(nil), key: key}
		}
		pause := func(on bool) {
			for _, p := range pauses {
				p.Blackhole(on)
			}
		}
		b.clones = append(b.clones, ElectorClone{Elector: e, Fences: []ElectorFence{pg[i], fence}, Pause: pause, UseRun: i%2 == 0, RunConfig: electorRunConfig})
	}
	return b
}

// TestElectorChaos runs the elector model on every backend: clones
// campaign, lead and write through the fences with their tokens, a leader
// now and then pausing between its check and its write, while the
// schedule breaks links and servers; the history must keep tokens
// increasing, one holder at a time at every fence, and self-fencing.
func TestElectorChaos(t *testing.T) {
	runModel(t, "elector", electorBackends(), func(b electorBackend) string { return b.name },
		func(t *testing.T, b electorBackend, s uint64, d time.Duration) modelRun {
			ops, faults := electorRun(t, b, s, d)
			t.Log(ElectorSummary(ops))
			return modelRun{len(ops), faults, CheckElector(ops)}
		})
}

// electorRun drives b's clones under b's schedule for d and returns the
// settled history and the faults injected.
func electorRun(t *testing.T, b electorBackend, s uint64, d time.Duration) ([]porcupine.Operation, string) {
	w := NewElectorWorkload(b.clones, s)
	w.PauseFor = electorPauseFor
	sched := NewSchedule(s, b.links, b.procs, b.request)
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	driven := make(chan struct{})
	go func() { defer close(driven); w.Drive(ctx) }()
	sched.Run(ctx) // on the test's goroutine: it restarts servers
	<-driven
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	ops, err := w.Settle(sctx, b.records)
	if err != nil {
		t.Fatal(err)
	}
	return ops, sched.String()
}
