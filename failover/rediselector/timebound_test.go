package rediselector_test

// Real-time tests in this file, each against a private Redis that hangs,
// dies or refuses connections, with the client a user builds:
// TestCampaignReturnsByDeadline, TestRenewalUnderFault,
// TestRenewalLeavesSilentConnection and TestCloseDuringCampaign. Their
// bounds are the documented ones plus boundSlack.

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/rediselector"
	"github.com/scaleout/scaleout/internal/redisopt"
	"github.com/scaleout/scaleout/internal/testenv"
)

// boundSlack is how late past a documented bound a call may return on a
// loaded 2-core machine.
const boundSlack = 500 * time.Millisecond

// userClient is a client as a user builds it: go-redis's defaults (a
// ReadTimeout of 3 s, 3 retries, a DialTimeout of 5 s), with the one
// option New requires.
func userClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestNewRefusesClientIgnoringDeadlines: go-redis ignores a context's
// deadline on its sockets unless ContextTimeoutEnabled is set, so no
// bound of the elector could hold; New refuses such a client with an
// error that is both failover.ErrInvalidConfig and
// redisopt.ErrContextTimeouts.
func TestNewRefusesClientIgnoringDeadlines(t *testing.T) {
	clients := map[string]redis.UniversalClient{
		"client":  redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)}),
		"cluster": redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(t)}),
		"universal": redis.NewUniversalClient(&redis.UniversalOptions{
			Addrs: []string{testenv.RedisAddr(t)}}),
	}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			defer c.Close()
			e, err := rediselector.New(c, rediselector.Config{Role: "r"})
			if err == nil {
				_ = e.Close()
			}
			require.ErrorIs(t, err, failover.ErrInvalidConfig)
			require.ErrorIs(t, err, redisopt.ErrContextTimeouts)
		})
	}
}

// A redisFault makes a private Redis misbehave for one test: hung (it
// accepts and never answers) or dead (connections refused).
type redisFault struct {
	name string
	// start returns the address clients use; on() and off() start and end
	// the fault.
	start func(t *testing.T) (addr string, on, off func())
}

var redisFaults = []redisFault{
	{"paused", func(t *testing.T) (string, func(), func()) {
		srv := testenv.StartRedis(t, testenv.RedisOptions{})
		return srv.Addr(), srv.Pause, srv.Resume
	}},
	{"blackholed", func(t *testing.T) (string, func(), func()) {
		srv := testenv.StartRedis(t, testenv.RedisOptions{})
		px := testenv.StartFaultProxy(t, srv.Addr())
		return px.Addr(), func() { px.Blackhole(true) }, func() { px.Blackhole(false) }
	}},
	{"killed", func(t *testing.T) (string, func(), func()) {
		srv := testenv.StartRedis(t, testenv.RedisOptions{AppendOnly: true})
		return srv.Addr(), srv.Kill, srv.Restart
	}},
	{"refused", func(t *testing.T) (string, func(), func()) {
		srv := testenv.StartRedis(t, testenv.RedisOptions{})
		px := testenv.StartFaultProxy(t, srv.Addr())
		return px.Addr(), func() { px.Refuse(true) }, func() { px.Refuse(false) }
	}},
}

// TestCampaignReturnsByDeadline: against a hung or dead Redis, with the
// client as a user builds it, Campaign returns its context's error by the
// context's deadline, even while another Campaign of the same Elector,
// without a deadline, is trying to acquire; that one returns as soon as
// its context is cancelled, and Close returns within Lease.
func TestCampaignReturnsByDeadline(t *testing.T) {
	for _, f := range redisFaults {
		t.Run(f.name, func(t *testing.T) {
			addr, on, off := f.start(t)
			e := newElector(t, userClient(t, addr), "deadline", "a", failover.Config{})
			cfg := e.Config()
			on()
			defer off()

			bg, cancelBG := context.WithCancel(context.Background())
			defer cancelBG()
			bgDone := make(chan error, 1)
			go func() { _, err := e.Campaign(bg); bgDone <- err }()
			time.Sleep(100 * time.Millisecond) // the first Campaign is acquiring

			const deadline = time.Second
			ctx, cancel := context.WithTimeout(t.Context(), deadline)
			defer cancel()
			start := time.Now()
			_, err := e.Campaign(ctx)
			took := time.Since(start)
			t.Logf("%s Redis: Campaign with a %v deadline returned after %v: %v", f.name, deadline, took, err)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Less(t, took, deadline+boundSlack, "Campaign with a %v deadline returned after %v", deadline, took)

			cancelBG()
			start = time.Now()
			select {
			case err := <-bgDone:
				require.ErrorIs(t, err, context.Canceled)
				t.Logf("the Campaign without a deadline returned %v after its cancel", time.Since(start))
			case <-time.After(boundSlack):
				t.Fatalf("a cancelled Campaign still runs after %v", boundSlack)
			}

			start = time.Now()
			require.NoError(t, e.Close())
			require.Less(t, time.Since(start), cfg.Lease+boundSlack, "Close took %v", time.Since(start))
		})
	}
}

// TestRenewalUnderFault: a leader whose Redis hangs or dies self-fences:
// its Term ends with ErrLeaseExpired no later than Lease - SafetyMargin
// after the fault began (before its lease could run out in Redis and
// another candidate take over); Close, with an Observe running, returns
// within Lease and leaves no goroutine behind; once Redis is back, a
// leader is elected again.
func TestRenewalUnderFault(t *testing.T) {
	for _, f := range redisFaults {
		t.Run(f.name, func(t *testing.T) {
			addr, on, off := f.start(t)
			checkGoroutines := testenv.CheckGoroutines(t)
			cfg := failover.Config{ID: "a"} // the defaults: Lease 1 s
			e, err := rediselector.New(userClient(t, addr), rediselector.Config{Role: "renew", Prefix: testenv.Prefix(t), Config: cfg})
			require.NoError(t, err)
			cfg = e.Config().Config
			term := leadWithWorkingRenewals(t, e)
			obs, cancelObs := context.WithCancel(context.Background())
			defer cancelObs()
			ch, err := e.Observe(obs)
			require.NoError(t, err)

			on()
			faulted := time.Now() // on returns once the fault is complete: no renewal sent later succeeded
			requireSelfFenced(t, term, faulted, cfg)

			start := time.Now()
			require.NoError(t, e.Close())
			took := time.Since(start)
			t.Logf("Close took %v", took)
			require.Less(t, took, cfg.Lease+boundSlack, "Close took %v while Redis was %s", took, f.name)
			for range ch {
			}
			checkGoroutines()

			off()
			e2 := newElector(t, userClient(t, addr), "renew", "b", cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			t2, err := e2.Campaign(ctx)
			require.NoError(t, err, "no leader once Redis is back")
			require.Greater(t, t2.Token, term.Token)
		})
	}
}

// TestRenewalLeavesSilentConnection: one connection that goes silent (a
// dropped NAT entry, a half-open TCP connection) while Redis itself
// answers must not end the term: each renewal gives up on it within
// RenewInterval and the next goes out on a fresh connection.
func TestRenewalLeavesSilentConnection(t *testing.T) {
	px := newProxy(t, testenv.RedisAddr(t))
	e := newElector(t, userClient(t, px.Addr()), "silent", "a", failover.Config{})
	cfg := e.Config()
	term, err := e.Campaign(t.Context())
	require.NoError(t, err)
	time.Sleep(2 * cfg.RenewInterval)
	px.Silence()
	select {
	case <-term.Done():
		t.Fatalf("the term ended (%v) although Redis answers on new connections", term.Err())
	case <-time.After(2 * cfg.Lease):
	}
}

// TestCloseDuringCampaign: Close while Campaigns wait on a hung or dead
// Redis makes them return ErrClosed at once; Close returns within Lease
// and leaves no goroutine behind.
func TestCloseDuringCampaign(t *testing.T) {
	for _, f := range redisFaults {
		t.Run(f.name, func(t *testing.T) {
			addr, on, off := f.start(t)
			checkGoroutines := testenv.CheckGoroutines(t) // before off restarts the server
			e, err := rediselector.New(userClient(t, addr), rediselector.Config{Role: "close", Prefix: testenv.Prefix(t), Config: failover.Config{ID: "a"}})
			require.NoError(t, err)
			cfg := e.Config()
			on()
			defer off()
			results := make(chan error, 3)
			for range 3 {
				go func() { _, err := e.Campaign(context.Background()); results <- err }()
			}
			time.Sleep(100 * time.Millisecond) // one acquiring, two waiting for their turn
			start := time.Now()
			require.NoError(t, e.Close())
			took := time.Since(start)
			for range 3 {
				select {
				case err := <-results:
					require.ErrorIs(t, err, failover.ErrClosed)
				case <-time.After(boundSlack):
					t.Fatalf("a Campaign still runs %v after Close returned", boundSlack)
				}
			}
			t.Logf("%s Redis: Close during Campaigns took %v", f.name, took)
			require.Less(t, took, cfg.Lease+boundSlack, "Close took %v", took)
			checkGoroutines()
		})
	}
}
