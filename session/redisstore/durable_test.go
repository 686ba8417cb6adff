package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/redisstore"
)

func TestWaitConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true}) // never dialled
	t.Cleanup(func() { _ = c.Close() })
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = ring.Close() })
	for _, tc := range []struct {
		name string
		c    redis.UniversalClient
		cfg  redisstore.Config
		ok   bool
	}{
		{"one replica", c, redisstore.Config{WaitReplicas: 1}, true},
		{"with timeout", c, redisstore.Config{WaitReplicas: 2, WaitTimeout: 50 * time.Millisecond}, true},
		{"negative replicas", c, redisstore.Config{WaitReplicas: -1}, false},
		{"negative timeout", c, redisstore.Config{WaitReplicas: 1, WaitTimeout: -time.Second}, false},
		{"timeout without replicas", c, redisstore.Config{WaitTimeout: time.Second}, false},
		{"timeout under a millisecond", c, redisstore.Config{WaitReplicas: 1, WaitTimeout: time.Microsecond}, false},
		{"ring cannot wait", ring, redisstore.Config{WaitReplicas: 1}, false},
		{"ring without wait", ring, redisstore.Config{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := redisstore.New(tc.c, tc.cfg)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, session.ErrInvalidConfig)
			}
		})
	}
}

// TestDurableConformance: the kit passes with every write waiting for a replica, on
// the Sentinel group and the Cluster (each has one replica per master).
func TestDurableConformance(t *testing.T) {
	t.Parallel()
	for _, b := range []testenv.RedisTopology{testenv.SentinelTopology, testenv.RedisTopologies[1]} {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			conformance(t, b, redisstore.Config{WaitReplicas: 1, WaitTimeout: 5 * time.Second})
		})
	}
}

// TestNotReplicated: with the replica cut off a commit, a logout and a delete are
// applied on the master but fail with ErrNotReplicated after WaitTimeout: the caller
// is never told a write is safe that a failover could undo.
func TestNotReplicated(t *testing.T) {
	t.Parallel()
	g := testenv.StartSentinelGroup(t, testenv.SentinelGroupOptions{})
	s, err := redisstore.New(g.Client(t), redisstore.Config{WaitReplicas: 1, WaitTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exp := time.Now().Add(time.Hour)
	v, err := s.SaveIf(ctx, "a", []byte("1"), exp, 0)
	require.NoError(t, err)
	heal := g.CutReplication()
	defer heal()
	_, err = s.SaveIf(ctx, "a", []byte("2"), exp, v)
	require.ErrorIs(t, err, redisstore.ErrNotReplicated)
	require.ErrorIs(t, s.Delete(ctx, "a"), redisstore.ErrNotReplicated)
	require.ErrorIs(t, s.Save(ctx, "b", []byte("x"), exp), redisstore.ErrNotReplicated)
	require.ErrorIs(t, s.AddUserSession(ctx, "u", "b", exp), redisstore.ErrNotReplicated)
	_, found, err := s.Load(ctx, "b")
	require.NoError(t, err, "reads do not wait")
	require.True(t, found, "the master has the write")
}

// sessionWorkload commits to its sessions in a loop, each session one writer, and
// logs some out, while the test fails the master over; it checks what users rely
// on: a read never finds a session older than its last acknowledged commit, and a
// logged-out session never comes back.
type sessionWorkload struct {
	s     *redisstore.Store
	ids   []string
	stop  atomic.Bool
	wg    sync.WaitGroup
	mu    sync.Mutex
	stats sessionStats
	kill  atomic.Int64 // UnixNano of the master's kill, 0 before
	first atomic.Int64 // UnixNano of the first commit acknowledged after it
}

type sessionStats struct {
	commits, notReplicated, failed int
	rolledBack                     map[string]bool // sessions whose acknowledged commit was undone
	resurrected                    map[string]bool // sessions whose acknowledged logout was undone
	errs                           []error
}

func newSessionWorkload(s *redisstore.Store, ids []string) *sessionWorkload {
	w := &sessionWorkload{s: s, ids: ids}
	w.stats.rolledBack, w.stats.resurrected = map[string]bool{}, map[string]bool{}
	return w
}

func (w *sessionWorkload) start() {
	for i, id := range w.ids {
		logout := i%4 == 3 // a quarter of the sessions are logged out mid-way
		w.wg.Go(func() { w.run(id, logout) })
	}
}

// opTimeout is the deadline of each call: it outlasts a switch (kill to a new
// master about 2-5 s on an idle machine), so no call should fail.
const opTimeout = 20 * time.Second

func (w *sessionWorkload) run(id string, logout bool) {
	exp := time.Now().Add(time.Hour)
	acked := 0 // the counter of the last acknowledged commit
	loggedOut := false
	tried := false // a logout was sent but not acknowledged: it may have been applied
	for n := 0; !w.stop.Load(); n++ {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		d, v, err := w.s.LoadVersion(ctx, id)
		if err != nil {
			cancel()
			w.fail(err)
			continue
		}
		cur := 0
		if v != 0 {
			cur, _ = strconv.Atoi(string(d))
		}
		if tried && v == 0 {
			loggedOut = true // the unacknowledged logout stuck: fine either way
		}
		w.mu.Lock()
		switch {
		case loggedOut && v != 0 && !tried:
			w.stats.resurrected[id] = true
		case !loggedOut && cur < acked:
			w.stats.rolledBack[id] = true
		}
		w.mu.Unlock()
		if loggedOut {
			cancel()
			time.Sleep(10 * time.Millisecond)
			continue
		}
		logoutNow := logout && (n == 30 || tried)
		if logoutNow {
			tried = true
			_, err = w.s.SaveIf(ctx, id, nil, time.Now().Add(-time.Second), v)
		} else {
			_, err = w.s.SaveIf(ctx, id, []byte(strconv.Itoa(cur+1)), exp, v)
		}
		cancel()
		switch {
		case err == nil:
			if logoutNow {
				loggedOut, tried = true, false
			} else {
				acked = cur + 1
			}
			w.mu.Lock()
			w.stats.commits++
			w.mu.Unlock()
			if k := w.kill.Load(); k != 0 {
				w.first.CompareAndSwap(0, time.Now().UnixNano())
			}
		case errors.Is(err, session.ErrConflict):
			// A lost reply re-sent (go-redis or redisha.Retry): the first
			// copy may have been applied. Read again.
		case errors.Is(err, redisstore.ErrNotReplicated):
			w.mu.Lock()
			w.stats.notReplicated++
			w.mu.Unlock()
		default:
			w.fail(err)
		}
	}
}

func (w *sessionWorkload) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.failed++
	if len(w.stats.errs) < 5 {
		w.stats.errs = append(w.stats.errs, err)
	}
}

func (w *sessionWorkload) finish() sessionStats {
	w.stop.Store(true)
	w.wg.Wait()
	return w.stats
}

// killed marks the master dead from now on; the next killToFirst measures from it.
func (w *sessionWorkload) killed() {
	w.first.Store(0)
	w.kill.Store(time.Now().UnixNano())
}

// killToFirst returns the time from the last kill to the first commit acknowledged
// after it, or -1 if none was, and stops measuring.
func (w *sessionWorkload) killToFirst() time.Duration {
	k, f := w.kill.Swap(0), w.first.Load()
	if k == 0 || f == 0 {
		return -1
	}
	return time.Duration(f - k)
}

// switches runs testenv.Failovers() switches of sw while the workload runs,
// alternately forced and a killed master, and returns the kill-to-first-commit
// delays.
func (w *sessionWorkload) switches(sw testenv.Switcher) []time.Duration {
	var delays []time.Duration
	// killed: the master is dead, every later success is the new master's.
	testenv.RunSwitches(sw, 300*time.Millisecond, w.killed, func() {
		time.Sleep(300 * time.Millisecond)
		delays = append(delays, w.killToFirst())
	})
	time.Sleep(300 * time.Millisecond)
	return delays
}

// check stops the workload, logs its figures and asserts what the setting
// promises: no call failed within its deadline and, durable, no acknowledged
// commit or logout undone.
func (w *sessionWorkload) check(t *testing.T, topo, setting string, durable bool, delays []time.Duration) {
	t.Helper()
	st := w.finish()
	t.Logf("%s %s, %d switches: %d commits, %d not replicated, %d failed, %d of %d sessions rolled back, %d logouts undone, kill to first commit %v",
		topo, setting, testenv.Failovers(), st.commits, st.notReplicated, st.failed, len(st.rolledBack), len(w.ids), len(st.resurrected), delays)
	testenv.LogFailoverFigures(t, testenv.FailoverFigures{Primitive: "session", Topology: topo, Setting: setting, Switches: testenv.Failovers(),
		Counts: map[string]int{testenv.CountAcknowledged: st.commits, testenv.CountFailed: st.failed,
			testenv.CountRolledBack: len(st.rolledBack), testenv.CountLogoutUndone: len(st.resurrected)},
		KillToFirst: delays})
	require.Zero(t, st.failed, "calls failed within their %v deadline: %v", opTimeout, st.errs)
	require.Positive(t, st.commits)
	if durable {
		require.Empty(t, st.rolledBack, "acknowledged commits undone")
		require.Empty(t, st.resurrected, "acknowledged logouts undone")
	}
}

func sessionIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("s%d", i)
	}
	return ids
}

// TestFailoverSentinel: sessions committed and logged out through
// testenv.Failovers() switches (SCALEOUT_FAILOVERS, 2 by default), alternately a
// forced failover and the SIGKILL of the master. In every mode no call fails while
// its deadline allows (ErrNotReplicated aside, in durable mode, while the group
// has no replica); with WaitReplicas 1 no acknowledged commit or logout is undone.
func TestFailoverSentinel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		replicas int
	}{{"default", 0}, {"durable", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := testenv.StartSentinelGroup(t, testenv.SentinelGroupOptions{})
			cfg := redisstore.Config{WaitReplicas: tc.replicas}
			if tc.replicas > 0 {
				cfg.WaitTimeout = 200 * time.Millisecond
			}
			s, err := redisstore.New(g.Client(t), cfg)
			require.NoError(t, err)
			w := newSessionWorkload(s, sessionIDs(16))
			w.start()
			delays := w.switches(g.Switcher())
			w.check(t, "sentinel", tc.name, tc.replicas > 0, delays)
		})
	}
}

// TestLossyFailover forces the case asynchronous replication loses: commits and
// logouts acknowledged while the replica is cut off, then the master killed and the
// replica promoted. By default they are undone (the test sees it: this is what
// WaitReplicas is for); with WaitReplicas 1 they are not acknowledged in the first
// place, and nothing acknowledged is undone.
func TestLossyFailover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		replicas int
	}{{"default", 0}, {"durable", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := testenv.StartSentinelGroup(t, testenv.SentinelGroupOptions{})
			cfg := redisstore.Config{WaitReplicas: tc.replicas}
			if tc.replicas > 0 {
				cfg.WaitTimeout = 50 * time.Millisecond
			}
			s, err := redisstore.New(g.Client(t), cfg)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			exp := time.Now().Add(time.Hour)
			v, err := s.SaveIf(ctx, "commit", []byte("1"), exp, 0)
			require.NoError(t, err)
			lv, err := s.SaveIf(ctx, "logout", []byte("1"), exp, 0)
			require.NoError(t, err)
			require.NoError(t, g.Client(t).Wait(ctx, 1, 5*time.Second).Err())

			heal := g.CutReplication()
			_, commitErr := s.SaveIf(ctx, "commit", []byte("2"), exp, v)
			_, logoutErr := s.SaveIf(ctx, "logout", nil, time.Now().Add(-time.Second), lv)
			killed := g.KillMaster()
			heal()
			g.WaitSwitched(killed)

			d, _, err := s.LoadVersion(ctx, "commit")
			require.NoError(t, err)
			_, lv2, err := s.LoadVersion(ctx, "logout")
			require.NoError(t, err)
			commitUndone := commitErr == nil && string(d) != "2"
			logoutUndone := logoutErr == nil && lv2 != 0
			t.Logf("%s: commit %v, read back %q; logout %v, session there after: %v", tc.name, commitErr, d, logoutErr, lv2 != 0)
			if tc.replicas == 0 {
				require.True(t, commitUndone && logoutUndone, "the lossy failover must undo the acknowledged commit and logout, or the test does not test it")
			} else {
				require.ErrorIs(t, commitErr, redisstore.ErrNotReplicated)
				require.ErrorIs(t, logoutErr, redisstore.ErrNotReplicated)
				require.False(t, commitUndone || logoutUndone)
			}
			g.Rejoin(killed)
		})
	}
}

// TestFailoverCluster: the same workload on a private Cluster, its sessions on the
// shard whose master is failed over (CLUSTER FAILOVER) and then killed.
func TestFailoverCluster(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		replicas int
	}{{"default", 0}, {"durable", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cl := testenv.StartCluster(t, testenv.ClusterOptions{})
			cfg := redisstore.Config{Prefix: "s:", WaitReplicas: tc.replicas}
			if tc.replicas > 0 {
				cfg.WaitTimeout = 200 * time.Millisecond
			}
			s, err := redisstore.New(cl.Client(t), cfg)
			require.NoError(t, err)
			// Sessions on the shard of the first one's slot.
			target := cl.MasterOf("s:{s0}")
			var ids []string
			for i := 0; len(ids) < 16; i++ {
				id := fmt.Sprintf("s%d", i)
				if cl.MasterOf("s:{"+id+"}") == target {
					ids = append(ids, id)
				}
			}
			w := newSessionWorkload(s, ids)
			w.start()
			delays := w.switches(cl.Switcher("s:{s0}"))
			w.check(t, "cluster", tc.name, tc.replicas > 0, delays)
		})
	}
}
