package rediselector_test

// Real-time tests in this file, all against a real Redis:
// TestResignWakesCampaigner (pub/sub wakes a waiting candidate),
// TestLostLease, TestCloseStopsGoroutines and TestRedisRestart (a private
// Redis killed and restarted: self-fencing checked by requireSelfFenced).
// Term's deadline rules are tested on the fake clock in failover.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/electortest"
	"github.com/scaleout/scaleout/failover/rediselector"
	"github.com/scaleout/scaleout/internal/testenv"
)

func prefixOf(t *testing.T) string { return testenv.Prefix(t) }

// TestConformance runs the kit on the shared Redis, where candidate 0
// reaches Redis through a proxy that the kit can cut (Partitioner), and on
// the Redis Cluster.
func TestConformance(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		electortest.Run(t, func(t *testing.T, n int, cfg failover.Config) []failover.Elector {
			role := randomRole()
			c := testenv.RedisClient(t)
			px := newProxy(t, testenv.RedisAddr(t))
			// Short timeouts: a cut link must fail fast, not hang the renewer.
			pc := redis.NewClient(&redis.Options{Addr: px.Addr(), DialTimeout: 100 * time.Millisecond,
				ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1, ContextTimeoutEnabled: true})
			t.Cleanup(func() { _ = pc.Close() })
			es := make([]failover.Elector, n)
			for i := range es {
				if i == 0 {
					es[i] = partitionable{newElector(t, pc, role, candidateID(i), cfg), px}
					continue
				}
				es[i] = newElector(t, c, role, candidateID(i), cfg)
			}
			return es
		})
	})
	t.Run("cluster", func(t *testing.T) {
		electortest.Run(t, func(t *testing.T, n int, cfg failover.Config) []failover.Elector {
			role := randomRole()
			c := testenv.RedisClusterClient(t)
			es := make([]failover.Elector, n)
			for i := range es {
				es[i] = newElector(t, c, role, candidateID(i), cfg)
			}
			return es
		})
	})
}

func TestConfig(t *testing.T) {
	c := testenv.RedisClient(t)
	electortest.CheckConfig(t, func(cfg failover.Config) error {
		e, err := rediselector.New(c, rediselector.Config{Role: "cfg", Config: cfg})
		if err == nil {
			_ = e.Close()
		}
		return err
	})
	for _, role := range []string{"", "a{b", "a}b"} {
		_, err := rediselector.New(c, rediselector.Config{Role: role})
		require.ErrorIs(t, err, failover.ErrInvalidConfig, role)
	}
	_, err := rediselector.New(c, rediselector.Config{Role: "r", Config: failover.Config{ID: "has space"}})
	require.ErrorIs(t, err, failover.ErrInvalidConfig)
	_, err = rediselector.New(nil, rediselector.Config{Role: "r"})
	require.ErrorIs(t, err, failover.ErrInvalidConfig)
}

var fastConfig = failover.Config{
	Lease:         400 * time.Millisecond,
	RenewInterval: 100 * time.Millisecond,
	RetryInterval: 50 * time.Millisecond,
	SafetyMargin:  50 * time.Millisecond,
}

// TestKeyLayout: the keys and their values, under the role's hash tag.
func TestKeyLayout(t *testing.T) {
	c := testenv.RedisClient(t)
	p := testenv.Prefix(t)
	e := newElector(t, c, "layout", "me", fastConfig)
	term, err := e.Campaign(t.Context())
	require.NoError(t, err)
	v, err := c.Get(t.Context(), p+"{layout}:lease").Result()
	require.NoError(t, err)
	require.Equal(t, "me "+itoa(term.Token), v)
	tok, err := c.Get(t.Context(), p+"{layout}:token").Uint64()
	require.NoError(t, err)
	require.Equal(t, term.Token, tok)
	ttl, err := c.PTTL(t.Context(), p+"{layout}:lease").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0))
	require.LessOrEqual(t, ttl, fastConfig.Lease)
	require.NoError(t, e.Resign(t.Context()))
	require.ErrorIs(t, c.Get(t.Context(), p+"{layout}:lease").Err(), redis.Nil)
}

// TestResignWakesCampaigner: a candidate waiting in Campaign takes over
// as soon as the leader resigns, woken by the vacancy's pub/sub message:
// the design's target is 100 ms (about 13 ms on an idle machine). Its
// next retry is at least 0.9 × RetryInterval (3.6 s) after its first
// attempt, so a take-over within boundSlack of the Resign can only be the
// wake-up; the bound is boundSlack so that it holds on a loaded machine.
func TestResignWakesCampaigner(t *testing.T) {
	c := testenv.RedisClient(t)
	cfg := failover.Config{Lease: 20 * time.Second, RenewInterval: 5 * time.Second, RetryInterval: 4 * time.Second, SafetyMargin: time.Second}
	a := newElector(t, c, "wake", "a", cfg)
	b := newElector(t, c, "wake", "b", cfg)
	ta, err := a.Campaign(t.Context())
	require.NoError(t, err)
	got := make(chan *failover.Term, 1)
	go func() {
		tb, err := b.Campaign(t.Context())
		if err != nil {
			t.Error(err)
		}
		got <- tb
	}()
	events := prefixOf(t) + "{wake}:events"
	require.Eventually(t, func() bool {
		n, err := c.PubSubNumSub(t.Context(), events).Result()
		return err == nil && n[events] >= 2
	}, 10*time.Second, 10*time.Millisecond, "the electors never subscribed to %s", events)
	time.Sleep(300 * time.Millisecond) // b past its first attempt, waiting
	start := time.Now()
	require.NoError(t, a.Resign(t.Context()))
	tb := <-got
	took := time.Since(start)
	t.Logf("new leader %v after Resign", took)
	require.Less(t, took, boundSlack, "new leader %v after Resign: not woken by the vacancy (its next retry was seconds away)", took)
	require.Greater(t, tb.Token, ta.Token)
}

// TestLostLease: a lease taken over behind the leader's back (here by
// deleting it) ends the Term with ErrLost at the next renewal.
func TestLostLease(t *testing.T) {
	c := testenv.RedisClient(t)
	e := newElector(t, c, "lost", "a", fastConfig)
	term, err := e.Campaign(t.Context())
	require.NoError(t, err)
	require.NoError(t, c.Set(t.Context(), testenv.Prefix(t)+"{lost}:lease", "intruder 999", time.Minute).Err())
	select {
	case <-term.Done():
		require.ErrorIs(t, term.Err(), failover.ErrLost)
	case <-time.After(fastConfig.Lease):
		t.Fatal("Term lasts after its lease was taken")
	}
	l, err := e.Leader(t.Context())
	require.NoError(t, err)
	require.Equal(t, failover.Leader{ID: "intruder", Token: 999}, l)
}

// TestTokenFloor: a candidate that saw token t never gets a smaller one,
// even if Redis lost its counter (restart without AOF, or the last second
// of an everysec AOF).
func TestTokenFloor(t *testing.T) {
	c := testenv.RedisClient(t)
	p := testenv.Prefix(t)
	a := newElector(t, c, "floor", "a", fastConfig)
	b := newElector(t, c, "floor", "b", fastConfig)
	for range 3 {
		ta, err := a.Campaign(t.Context())
		require.NoError(t, err)
		require.NoError(t, a.Resign(t.Context()))
		_ = ta
	}
	l, err := b.Leader(t.Context())
	require.ErrorIs(t, err, failover.ErrNoLeader)
	require.True(t, l.Vacant)
	require.Equal(t, uint64(3), l.Token)
	require.NoError(t, c.Del(t.Context(), p+"{floor}:token").Err()) // the counter is lost
	tb, err := b.Campaign(t.Context())
	require.NoError(t, err)
	require.Equal(t, uint64(4), tb.Token)
}

// TestCloseStopsGoroutines: Close resigns and leaves no goroutine behind;
// Campaign and Observe then fail with ErrClosed.
func TestCloseStopsGoroutines(t *testing.T) {
	c := testenv.RedisClient(t)
	require.NoError(t, c.Ping(t.Context()).Err())
	defer testenv.CheckGoroutines(t)()
	cfg := fastConfig
	cfg.ID = "a"
	a, err := rediselector.New(c, rediselector.Config{Role: "close", Prefix: testenv.Prefix(t), Config: cfg})
	require.NoError(t, err)
	cfg.ID = "b"
	b, err := rediselector.New(c, rediselector.Config{Role: "close", Prefix: testenv.Prefix(t), Config: cfg})
	require.NoError(t, err)
	_, err = a.Campaign(t.Context())
	require.NoError(t, err)
	ch, err := b.Observe(t.Context())
	require.NoError(t, err)
	waiting := make(chan error, 1)
	go func() { _, err := b.Campaign(context.Background()); waiting <- err }()
	require.NoError(t, a.Close())
	require.NoError(t, a.Close(), "idempotent")
	_, err = a.Campaign(t.Context())
	require.ErrorIs(t, err, failover.ErrClosed)
	_, err = b.Leader(t.Context()) // a resigned, so b may already lead
	if err != nil {
		require.ErrorIs(t, err, failover.ErrNoLeader)
	}
	require.NoError(t, b.Close())
	err = <-waiting
	if err != nil {
		require.ErrorIs(t, err, failover.ErrClosed)
	}
	for range ch {
	}
	_, err = b.Observe(t.Context())
	require.ErrorIs(t, err, failover.ErrClosed)
	require.NoError(t, c.Ping(t.Context()).Err(), "Close must not close the client")
}

// TestRedisRestart: while Redis is down the leader self-fences by its
// deadline; after a restart (with the append-only file, which keeps the
// token counter) a leader is elected again with a larger token.
func TestRedisRestart(t *testing.T) {
	srv := testenv.StartRedis(t, testenv.RedisOptions{AppendOnly: true})
	// The default timings (Lease 1 s) and clients as a user builds them:
	// with fastConfig's 400 ms lease and 200 ms read timeouts, a Redis
	// starved of CPU on a loaded machine answered no renewal in time for
	// 350 ms, and the term rightly ended before the kill.
	cfg := failover.Config{}
	a := newElector(t, userClient(t, srv.Addr()), "restart", "a", cfg)
	b := newElector(t, userClient(t, srv.Addr()), "restart", "b", cfg)
	cfg = a.Config().Config
	ta := leadWithWorkingRenewals(t, a)
	srv.Kill()
	down := time.Now() // Kill returns once Redis is gone: no renewal sent later succeeded
	requireSelfFenced(t, ta, down, cfg)
	srv.Restart()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	type result struct {
		term *failover.Term
		err  error
	}
	results := make(chan result, 2)
	for _, e := range []*rediselector.Elector{a, b} {
		go func() { tm, err := e.Campaign(ctx); results <- result{tm, err} }()
	}
	r := <-results
	require.NoError(t, r.err)
	require.Greater(t, r.term.Token, ta.Token, "a token after the restart must be larger")
	cancel()
	<-results
}

// leadWithWorkingRenewals campaigns with e and returns a term that has
// been renewed for two RenewIntervals: the leader the fault tests start
// from. A Redis with appendfsync always, starved of CPU and disk on a
// loaded machine, can miss every renewal's RenewInterval until the term
// rightly self-fences before any fault; then it campaigns again, a few
// times, and fails the test if it never gets such a leader.
func leadWithWorkingRenewals(t *testing.T, e *rediselector.Elector) *failover.Term {
	t.Helper()
	cfg := e.Config()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		term, err := e.Campaign(ctx)
		cancel()
		require.NoError(t, err)
		time.Sleep(2 * cfg.RenewInterval)
		err = term.Err()
		if err == nil {
			return term
		}
		t.Logf("attempt %d: the term ended before any fault (%v): Redis answered no renewal within RenewInterval (%v) for Lease - SafetyMargin", attempt, err, cfg.RenewInterval)
		require.Less(t, attempt, 5, "no term lasted two renewals in 5 attempts: Redis too slow for Lease %v", cfg.Lease)
	}
}

// requireSelfFenced waits for term, whose store became unreachable at
// down, to end, and checks how it ended (at ended, when Done was seen
// closed): with
// ErrLeaseExpired; at a deadline no later than Lease - SafetyMargin after
// down (the last successful renewal was sent before it: exact, no timing
// noise); with Done not closed before that deadline, and closed less than
// a Lease after it. Done is closed by a timer, which a loaded machine runs
// late (655 ms late has been seen under two cpuhogs); the guard a leader
// acts on is Err, which reports the expiry at the deadline exactly, and
// Done closes exactly at the deadline on the fake clock (failover's
// TestTermErrAtDeadline).
func requireSelfFenced(t *testing.T, term *failover.Term, down time.Time, cfg failover.Config) {
	t.Helper()
	// Lease - SafetyMargin, then less than a Lease of lateness. When the
	// wait's own timer fires, Done is looked at once more: after a stall
	// of the whole process both are ready, and select picks either.
	wait := time.NewTimer(cfg.Lease - cfg.SafetyMargin + cfg.Lease)
	defer wait.Stop()
	select {
	case <-term.Done():
	case <-wait.C:
		select {
		case <-term.Done():
		default:
			t.Fatalf("the leader did not self-fence: its term lasts %v after the store went away", time.Since(down))
		}
	}
	ended := time.Now()
	require.ErrorIs(t, term.Err(), failover.ErrLeaseExpired)
	deadline := term.Deadline()
	require.False(t, deadline.After(down.Add(cfg.Lease-cfg.SafetyMargin)),
		"the term's deadline was %v after the store went away, past Lease - SafetyMargin (%v)", deadline.Sub(down), cfg.Lease-cfg.SafetyMargin)
	require.False(t, ended.Before(deadline), "the term ended %v before its deadline", deadline.Sub(ended))
	late := ended.Sub(deadline)
	t.Logf("self-fenced %v after the store went away, Done seen %v after the deadline", ended.Sub(down), late)
	require.Less(t, late, cfg.Lease, "Done was seen closed %v after the term's deadline", late)
}

func itoa(u uint64) string { return strings.TrimSpace(strings.Repeat(" ", 0) + uintString(u)) }

func uintString(u uint64) string {
	if u == 0 {
		return "0"
	}
	var b []byte
	for u > 0 {
		b = append([]byte{byte('0' + u%10)}, b...)
		u /= 10
	}
	return string(b)
}

var _ = errors.Is

// TestLostAcquireReplyIsTakenUp: an acquire whose reply was lost (a
// timeout) leaves a lease with this candidate's ID and a token it never
// learned; its next Campaign takes that lease up at once instead of
// leaving the role vacant until it expires. A lease of a term it did
// learn is not taken up again: the next term gets a new token.
func TestLostAcquireReplyIsTakenUp(t *testing.T) {
	c := testenv.RedisClient(t)
	p := testenv.Prefix(t)
	e := newElector(t, c, "lost-reply", "me", fastConfig)
	// What the lost acquire left behind.
	require.NoError(t, c.Set(t.Context(), p+"{lost-reply}:token", 7, 0).Err())
	require.NoError(t, c.Set(t.Context(), p+"{lost-reply}:lease", "me 7", time.Minute).Err())
	ctx, cancel := context.WithTimeout(t.Context(), fastConfig.Lease/2)
	defer cancel()
	term, err := e.Campaign(ctx)
	require.NoError(t, err, "taken up at once, not after the lease")
	require.Equal(t, uint64(7), term.Token)
	ttl, err := c.PTTL(t.Context(), p+"{lost-reply}:lease").Result()
	require.NoError(t, err)
	require.LessOrEqual(t, ttl, fastConfig.Lease, "the lease is renewed to Lease, not kept at a minute")

	// That term ends (as a self-fenced leader's would, its lease left
	// behind): the same lease is not taken up a second time.
	require.NoError(t, e.Resign(t.Context()))
	require.NoError(t, c.Set(t.Context(), p+"{lost-reply}:lease", "me 7", fastConfig.Lease).Err())
	ctx2, cancel2 := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel2()
	again, err := e.Campaign(ctx2)
	require.NoError(t, err)
	require.Greater(t, again.Token, uint64(7), "a new term, a new token")
}
