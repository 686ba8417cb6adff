package rediselector_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/electortest"
	"github.com/scaleout/scaleout/failover/rediselector"
	"github.com/scaleout/scaleout/internal/testenv"
)

func TestWaitConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true}) // never dialled
	t.Cleanup(func() { _ = c.Close() })
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = ring.Close() })
	for _, tc := range []struct {
		name string
		c    redis.UniversalClient
		cfg  rediselector.Config
		ok   bool
	}{
		{"one replica", c, rediselector.Config{WaitReplicas: 1}, true},
		{"with timeout", c, rediselector.Config{WaitReplicas: 2, WaitTimeout: 100 * time.Millisecond}, true},
		{"negative replicas", c, rediselector.Config{WaitReplicas: -1}, false},
		{"negative timeout", c, rediselector.Config{WaitReplicas: 1, WaitTimeout: -time.Second}, false},
		{"timeout without replicas", c, rediselector.Config{WaitTimeout: 100 * time.Millisecond}, false},
		{"timeout under a millisecond", c, rediselector.Config{WaitReplicas: 1, WaitTimeout: time.Microsecond}, false},
		{"timeout not under RenewInterval", c, rediselector.Config{WaitReplicas: 1, WaitTimeout: 250 * time.Millisecond}, false},
		{"ring cannot wait", ring, rediselector.Config{WaitReplicas: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Role = "r"
			e, err := rediselector.New(tc.c, tc.cfg)
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, tc.cfg.WaitReplicas, e.Config().WaitReplicas)
				if tc.cfg.WaitTimeout == 0 {
					require.Equal(t, e.Config().RenewInterval/2, e.Config().WaitTimeout, "the default")
				}
				require.NoError(t, e.Close())
			} else {
				require.ErrorIs(t, err, failover.ErrInvalidConfig)
			}
		})
	}
}

// TestConformanceReplicated runs the kit on the Sentinel client, by default and
// with every term confirmed by the replica, and durable on the Cluster.
func TestConformanceReplicated(t *testing.T) {
	for _, tc := range []struct {
		name     string
		topo     testenv.RedisTopology
		replicas int
	}{
		{"sentinel", testenv.SentinelTopology, 0},
		{"sentinel durable", testenv.SentinelTopology, 1},
		{"cluster durable", testenv.RedisTopologies[1], 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			electortest.Run(t, func(t *testing.T, n int, cfg failover.Config) []failover.Elector {
				role := randomRole()
				c := tc.topo.Client(t)
				es := make([]failover.Elector, n)
				for i := range es {
					cfg.ID = candidateID(i)
					e, err := rediselector.New(c, rediselector.Config{Role: role, Prefix: prefixOf(t), Config: cfg, WaitReplicas: tc.replicas})
					require.NoError(t, err)
					t.Cleanup(func() { _ = e.Close() })
					es[i] = e
				}
				return es
			})
		})
	}
}

// fastCfg: a switch takes a few seconds; terms of 2 s keep the tests short.
var fastCfg = failover.Config{Lease: 2 * time.Second}

// TestLossyFailoverTokens forces the dangerous case exactly: candidate b wins a
// term while the replica is cut off, so the INCR of b's token reaches the master
// only; the master is killed and the replica promoted, and a candidate started
// afresh (it never heard of b's token) campaigns. By default it is handed b's
// token again: two terms share a token, which no fence can tell apart (the test
// checks that it sees this, or it would not test the case). With WaitReplicas 1, b
// never leads with an unconfirmed token, and every term's token is larger than
// every earlier term's.
func TestLossyFailoverTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		replicas int
	}{{"default", 0}, {"durable", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := testenv.StartSentinelGroup(t, testenv.SentinelGroupOptions{})
			role := randomRole()
			elector := func(id string) *rediselector.Elector {
				cfg := fastCfg
				cfg.ID = id
				e, err := rediselector.New(g.Client(t), rediselector.Config{Role: role, Config: cfg, WaitReplicas: tc.replicas})
				require.NoError(t, err)
				t.Cleanup(func() { _ = e.Close() })
				return e
			}
			var terms []*failover.Term // in the order they started
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			a := elector("a")
			ta, err := a.Campaign(ctx)
			require.NoError(t, err)
			terms = append(terms, ta)
			require.NoError(t, a.Resign(ctx))
			require.NoError(t, g.Client(t).Wait(ctx, 1, 5*time.Second).Err(), "a's term is on the replica")

			b := elector("b")
			heal := g.CutReplication()
			// Short: a replica paused longer than DownAfter is seen down, and
			// the sentinels would not promote it.
			bctx, bcancel := context.WithTimeout(ctx, 400*time.Millisecond)
			tb, berr := b.Campaign(bctx)
			bcancel()
			killed := g.KillMaster()
			heal()
			if berr == nil {
				terms = append(terms, tb)
			}
			g.WaitSwitched(killed)
			g.Rejoin(killed) // durable terms need a replica to confirm them
			require.NoError(t, b.Close())

			c := elector("c")
			tc2, err := c.Campaign(ctx)
			require.NoError(t, err)
			terms = append(terms, tc2)

			var tokens []uint64
			for _, tm := range terms {
				tokens = append(tokens, tm.Token)
			}
			bad := tokenViolations(tokens)
			t.Logf("%s: b's campaign: %v; tokens of the terms in start order: %v; regressions or duplicates: %d", tc.name, berr, tokens, bad)
			if tc.replicas == 0 {
				require.NoError(t, berr)
				require.Equal(t, tb.Token, tc2.Token, "the lossy failover must hand b's token out again, or the test does not test it")
			} else {
				require.ErrorIs(t, berr, context.DeadlineExceeded, "b must not lead with a token the replica did not confirm")
				require.Zero(t, bad, "tokens %v", tokens)
			}
		})
	}
}

// tokenViolations counts the terms whose token is not larger than every earlier
// term's.
func tokenViolations(tokens []uint64) int {
	bad := 0
	var top uint64
	for _, tok := range tokens {
		if tok <= top {
			bad++
		}
		top = max(top, tok)
	}
	return bad
}

// electionWorkload runs candidates that campaign, lead for a while and resign, in
// a loop, recording every term as it starts, while the test fails the master over.
type electionWorkload struct {
	mu    sync.Mutex
	terms []termRecord
	errs  []error
	stop  chan struct{}
	wg    sync.WaitGroup
}

type termRecord struct {
	id    string
	token uint64
	at    time.Time
}

func runElection(t *testing.T, es []*rediselector.Elector) *electionWorkload {
	w := &electionWorkload{stop: make(chan struct{})}
	for _, e := range es {
		w.wg.Go(func() {
			for {
				ctx, cancel := context.WithCancel(context.Background())
				go func() {
					select {
					case <-w.stop:
					case <-ctx.Done():
					}
					cancel()
				}()
				term, err := e.Campaign(ctx)
				if err != nil {
					cancel()
					if !errors.Is(err, context.Canceled) {
						w.mu.Lock()
						w.errs = append(w.errs, err)
						w.mu.Unlock()
					}
					return
				}
				w.mu.Lock()
				w.terms = append(w.terms, termRecord{term.ID, term.Token, time.Now()})
				w.mu.Unlock()
				select {
				case <-w.stop:
				case <-term.Done():
				case <-time.After(300 * time.Millisecond):
				}
				rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
				_ = e.Resign(rctx)
				rcancel()
				cancel()
				select {
				case <-w.stop:
					return
				default:
				}
			}
		})
	}
	return w
}

func (w *electionWorkload) finish() ([]termRecord, []error) {
	close(w.stop)
	w.wg.Wait()
	slices.SortStableFunc(w.terms, func(a, b termRecord) int { return a.at.Compare(b.at) })
	return w.terms, w.errs
}

// firstAfter returns the delay from at to the first term that started after it.
func firstAfter(terms []termRecord, at time.Time) time.Duration {
	for _, tr := range terms {
		if tr.at.After(at) {
			return tr.at.Sub(at)
		}
	}
	return -1
}

// TestFailoverElection: three candidates elect leaders in a loop through
// testenv.Failovers() switches, alternately forced and the SIGKILL of the master, on Sentinel and on a Cluster, each by
// default and durable. Durable, no term's token is ever at or below an earlier
// term's; by default the figures are logged (a failover that loses the last INCR
// may repeat a token; TestLossyFailoverTokens forces that case).
func TestFailoverElection(t *testing.T) {
	t.Parallel()
	for _, topo := range []string{"sentinel", "cluster"} {
		for _, tc := range []struct {
			name     string
			replicas int
		}{{"default", 0}, {"durable", 1}} {
			t.Run(topo+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				role := randomRole()
				var c redis.UniversalClient
				var sw testenv.Switcher
				if topo == "sentinel" {
					g := testenv.StartSentinelGroup(t, testenv.SentinelGroupOptions{})
					c, sw = g.Client(t), g.Switcher()
				} else {
					cl := testenv.StartCluster(t, testenv.ClusterOptions{})
					c, sw = cl.Client(t), cl.Switcher("{"+role+"}:token")
				}
				var es []*rediselector.Elector
				for i := range 3 {
					cfg := fastCfg
					cfg.ID = fmt.Sprint("c", i)
					e, err := rediselector.New(c, rediselector.Config{Role: role, Config: cfg, WaitReplicas: tc.replicas})
					require.NoError(t, err)
					t.Cleanup(func() { _ = e.Close() })
					es = append(es, e)
				}
				w := runElection(t, es)
				var kills []time.Time
				testenv.RunSwitches(sw, time.Second, func() { kills = append(kills, time.Now()) }, nil)
				time.Sleep(2 * time.Second)
				terms, errs := w.finish()
				tokens := make([]uint64, len(terms))
				for i, tr := range terms {
					tokens[i] = tr.token
				}
				bad := tokenViolations(tokens)
				var delays []time.Duration
				for _, k := range kills {
					delays = append(delays, firstAfter(terms, k))
				}
				t.Logf("%s/%s, %d switches: %d terms, %d token regressions or duplicates, kill to the next term %v",
					topo, tc.name, testenv.Failovers(), len(terms), bad, delays)
				testenv.LogFailoverFigures(t, testenv.FailoverFigures{Primitive: "elector", Topology: topo, Setting: tc.name, Switches: testenv.Failovers(),
					Counts:      map[string]int{testenv.CountAcknowledged: len(terms), testenv.CountFailed: len(errs), testenv.CountTokenFaults: bad},
					KillToFirst: delays})
				require.Empty(t, errs)
				require.NotEmpty(t, terms)
				if tc.replicas > 0 {
					require.Zero(t, bad, "tokens in start order: %v", tokens)
				}
			})
		}
	}
}
