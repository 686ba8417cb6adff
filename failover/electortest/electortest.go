// Package electortest is the conformance kit for failover.Elector: the
// tests every Elector runs (failover.Memory, failover/rediselector), and
// that authors of other Electors can run on their own.
//
// Run checks the contract:
//
//   - One leader at a time: 4 candidates compete for 2 s, each holding
//     each term for 0–150 ms and writing to a shared fenced resource every
//     10 ms while its Term lasts, then resigning. The resource rejects a
//     token lower than the highest it has seen: no write is ever rejected;
//     tokens strictly increase from term to term; no two terms overlap
//     (a term is counted from Campaign's return to the leader's last look
//     at Done; SafetyMargin of tolerance).
//   - Many candidates campaigning at once on a vacant role: exactly one
//     wins and keeps leading (it renews) for 2 leases while the others
//     wait; Leader reports it.
//   - Renewal: a leader keeps its Term, token and Leader entry over 3
//     leases, and its Deadline moves forward.
//   - Resign ends the Term at once (Done closed, Err is
//     failover.ErrResigned) and another waiting candidate leads within
//     300 ms, although RetryInterval is 800 ms (the store must wake
//     campaigners), with a larger token; Resign by a candidate that does
//     not lead does nothing and returns nil.
//   - A leader that stops renewing (cut off by Partitioner, when the
//     Elector implements it; else the subtest is skipped): its Term ends
//     by its Deadline (+100 ms) with failover.ErrLeaseExpired; another
//     candidate leads within Lease + RetryInterval + 250 ms, never before
//     the old Term's Deadline, with a larger token; reconnected, the old
//     leader sees the new one and cannot take over.
//   - Leader reports the leader's Term.ID and Token, and fails with
//     failover.ErrNoLeader on a fresh role and after Resign. Campaign
//     while leading returns the current Term. Term IDs of candidates are
//     distinct.
//   - Observe (when the Elector is a failover.Observer) sends the current
//     state (vacant on a fresh role), each new leader with its token, the
//     vacancy after Resign and after a leader's lease expired
//     (Partitioner only), and closes its channel when ctx ends.
//   - Campaign honours ctx: a deadline while another candidate leads
//     fails with context.DeadlineExceeded within 250 ms of it; a cancelled
//     ctx with context.Canceled.
//   - Close (when the Elector is an io.Closer; else the subtest is
//     skipped): two Closes of a leader at once each return nil once its
//     Term has ended and its Observe channels are closed; a waiting
//     candidate takes over within RetryInterval + 250 ms (Close resigns);
//     Close again returns nil; Campaign, Resign, Leader and Observe then
//     fail with failover.ErrClosed; a Campaign waiting while another
//     candidate leads returns failover.ErrClosed within 250 ms of its
//     Elector's Close.
//
// CheckConfig separately checks that a constructor rejects invalid
// durations with an error wrapping failover.ErrInvalidConfig.
//
// The kit uses a lease of 400 ms (2 s in the Resign subtest) and bounds
// with slack, never exact times, so that it passes on a loaded machine and
// against a real server; it takes about 6 s of real time. RunSynctest runs
// the same subtests each inside a testing/synctest bubble, where they take
// no real time and all times are exact, so its bounds allow 1 ms where Run
// allows 250 ms (an Elector that polls where the contract says it is
// woken, or lets a Term outlive its deadline, fails there even when the
// slack of Run hides it): for in-process Electors such as failover.Memory,
// whose timers and goroutines all live in the bubble.
//
// Each subtest calls newCandidates once for n candidates of one fresh
// role (a new store, or a random key on a shared server), configured by
// cfg with distinct IDs; newCandidates should register their cleanup
// (closing them, deleting keys) with t.Cleanup.
//
// Usage, in an Elector's tests:
//
//	func TestConformance(t *testing.T) {
//		electortest.Run(t, func(t *testing.T, n int, cfg failover.Config) []failover.Elector {
//			role := "test:" + rand.Text()
//			es := make([]failover.Elector, n)
//			for i := range es {
//				cfg.ID = fmt.Sprint("candidate-", i)
//				e, err := myelector.New(client, myelector.Config{Role: role, Config: cfg})
//				require.NoError(t, err)
//				t.Cleanup(func() { e.Close() })
//				es[i] = e
//			}
//			return es
//		})
//	}
package electortest

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/internal/kitcheck"
)

// NewCandidates returns n candidates of one fresh role, configured by cfg
// with distinct IDs.
type NewCandidates func(t *testing.T, n int, cfg failover.Config) []failover.Elector

// A Partitioner can be cut off from its store, as by a network partition,
// for tests: while cut, it cannot renew, so its Term ends at its deadline.
// failover.Memory implements it. The kit only ever cuts the first of the
// candidates that newCandidates returns, so a factory may make only that
// one a Partitioner (say, through a TCP proxy it can cut).
type Partitioner interface {
	Partition(cut bool)
}

// The kit's configurations.
var (
	kitConfig = failover.Config{
		Lease:         400 * time.Millisecond,
		RenewInterval: 100 * time.Millisecond,
		RetryInterval: 50 * time.Millisecond,
		SafetyMargin:  50 * time.Millisecond,
	}
	// resignConfig polls slowly, to tell a woken campaigner from a polling one.
	resignConfig = failover.Config{
		Lease:         2 * time.Second,
		RenewInterval: time.Second,
		RetryInterval: 800 * time.Millisecond,
		SafetyMargin:  200 * time.Millisecond,
	}
)

// realSlack is what Run allows on top of every bound, for a loaded machine
// and a real server. RunSynctest allows only bubbleSlack, a timer's tick:
// in a bubble time is exact, and an Elector that is late by more than that
// (one that polls where it should be woken) is late.
const (
	realSlack   = 250 * time.Millisecond
	bubbleSlack = time.Millisecond
)

// A kit is one run of the clauses: the factory, and the slack its bounds
// allow.
type kit struct {
	newCandidates NewCandidates
	slack         time.Duration
}

type testCase struct {
	name string
	f    func(t *testing.T, k kit)
}

var cases = []testCase{
	{"OneLeaderAtATime", testOneLeader},
	{"ConcurrentCampaign", testConcurrentCampaign},
	{"Renewal", testRenewal},
	{"ResignHandsOver", testResign},
	{"StoppedLeaderIsReplaced", testStopped},
	{"Leader", testLeader},
	{"Observe", testObserve},
	{"CampaignHonoursContext", testCampaignContext},
	{"Close", testClose},
}

// Run runs the conformance kit on real time, one subtest per clause of
// the contract.
func Run(t *testing.T, newCandidates NewCandidates) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, kit{newCandidates, realSlack}) })
	}
}

// RunSynctest runs the same subtests, each inside synctest.Test, so that
// they take no real time and are deterministic; a subtest the Elector does
// not support is reported skipped, as by Run. Only for Electors whose
// timers and goroutines all live in the bubble: newCandidates is called
// inside it, and the candidates must be closed (by t.Cleanup) in it.
func RunSynctest(t *testing.T, newCandidates NewCandidates) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kitcheck.InBubble(t, func(t *testing.T) { tc.f(t, kit{newCandidates, bubbleSlack}) })
		})
	}
}

// CheckConfig checks that build, which constructs an Elector with cfg,
// rejects invalid configurations with an error wrapping
// failover.ErrInvalidConfig and accepts valid ones (the zero Config means
// the defaults).
func CheckConfig(t *testing.T, build func(cfg failover.Config) error) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		cfg   failover.Config
		valid bool
	}{
		{"defaults", failover.Config{ID: "a"}, true},
		{"kit", withID(kitConfig, "b"), true},
		{"lease only", failover.Config{ID: "c", Lease: 10 * time.Second}, true},
		{"lease equals renew", failover.Config{ID: "d", Lease: 100 * ms, RenewInterval: 100 * ms, RetryInterval: 10 * ms, SafetyMargin: ms}, false},
		{"lease under renew", failover.Config{ID: "e", Lease: 100 * ms, RenewInterval: 200 * ms, RetryInterval: 10 * ms, SafetyMargin: ms}, false},
		{"renew equals retry", failover.Config{ID: "f", Lease: 400 * ms, RenewInterval: 100 * ms, RetryInterval: 100 * ms, SafetyMargin: ms}, false},
		{"margin too large", failover.Config{ID: "g", Lease: 400 * ms, RenewInterval: 100 * ms, RetryInterval: 50 * ms, SafetyMargin: 300 * ms}, false},
		{"negative lease", failover.Config{ID: "h", Lease: -time.Second}, false},
		{"negative margin", failover.Config{ID: "i", SafetyMargin: -ms}, false},
		{"long ID", failover.Config{ID: string(make([]byte, 201))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := build(tc.cfg)
			if tc.valid {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, failover.ErrInvalidConfig)
			}
		})
	}
}

func withID(c failover.Config, id string) failover.Config {
	c.ID = id
	return c
}

// background runs goroutines that end, with their context, before the
// candidates are closed.
type background struct {
	ctx context.Context
	wg  sync.WaitGroup
}

// newBackground is called after newCandidates: cleanups run last-in
// first-out, so its goroutines end before the candidates are closed.
func newBackground(t *testing.T) *background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{ctx: ctx}
	t.Cleanup(func() { cancel(); b.wg.Wait() })
	return b
}

type campaignResult struct {
	i    int // which candidate
	term *failover.Term
	err  error
	at   time.Time // when Campaign returned
}

// campaign starts Campaign on each of es in the background; results arrive
// on the channel, which has room for all.
func (b *background) campaign(es ...failover.Elector) <-chan campaignResult {
	ch := make(chan campaignResult, len(es))
	for i, e := range es {
		b.wg.Go(func() {
			term, err := e.Campaign(b.ctx)
			ch <- campaignResult{i, term, err, time.Now()}
		})
	}
	return ch
}

// lead campaigns until e leads, within 2 leases.
func lead(t *testing.T, k kit, e failover.Elector, cfg failover.Config) *failover.Term {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*cfg.Lease+k.slack)
	defer cancel()
	term, err := e.Campaign(ctx)
	require.NoError(t, err, "Campaign on a role that should be free")
	require.NotNil(t, term)
	require.NoError(t, term.Err(), "fresh Term already ended")
	require.NotZero(t, term.Token, "token")
	return term
}

func requireLeader(t *testing.T, e failover.Elector, term *failover.Term, msgAndArgs ...any) {
	t.Helper()
	l, err := e.Leader(context.Background())
	require.NoError(t, err, msgAndArgs...)
	require.Equal(t, failover.Leader{ID: term.ID, Token: term.Token}, l, msgAndArgs...)
}

func requireNoLeader(t *testing.T, e failover.Elector, msgAndArgs ...any) {
	t.Helper()
	_, err := e.Leader(context.Background())
	require.ErrorIs(t, err, failover.ErrNoLeader, msgAndArgs...)
}

func requireEnded(t *testing.T, term *failover.Term, within time.Duration, cause error) time.Time {
	t.Helper()
	select {
	case <-term.Done():
	case <-time.After(within):
		require.FailNow(t, "Term did not end", "within %v", within)
	}
	at := time.Now()
	require.ErrorIs(t, term.Err(), cause)
	return at
}

// fencedResource is a shared resource that rejects tokens lower than the
// highest it has seen.
type fencedResource struct {
	mu       sync.Mutex
	highest  uint64
	accepted int
	rejected []string
}

func (r *fencedResource) write(id string, token uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if token < r.highest {
		r.rejected = append(r.rejected, id)
		return
	}
	r.highest = token
	r.accepted++
}

type termRecord struct {
	id         string
	token      uint64
	start, end time.Time
}

func testOneLeader(t *testing.T, k kit) {
	const n = 4
	cfg := kitConfig
	es := k.newCandidates(t, n, cfg)
	require.Len(t, es, n)
	var (
		res     fencedResource
		mu      sync.Mutex
		records []termRecord
		wg      sync.WaitGroup
	)
	stop := time.Now().Add(2 * time.Second)
	for i, e := range es {
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		wg.Go(func() {
			for {
				ctx, cancel := context.WithDeadline(context.Background(), stop)
				term, err := e.Campaign(ctx)
				cancel()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("candidate %d: Campaign: %v", i, err)
					}
					return
				}
				rec := termRecord{id: term.ID, token: term.Token, start: time.Now()}
				hold := time.Now().Add(time.Duration(rng.IntN(150)) * time.Millisecond)
				for {
					rec.end = time.Now()
					select {
					case <-term.Done():
					default:
						res.write(term.ID, term.Token)
						if time.Now().Before(hold) {
							time.Sleep(10 * time.Millisecond)
							continue
						}
					}
					break
				}
				mu.Lock()
				records = append(records, rec)
				mu.Unlock()
				if err := e.Resign(context.Background()); err != nil {
					t.Errorf("candidate %d: Resign: %v", i, err)
				}
				if term.Err() == nil {
					t.Errorf("candidate %d: Term lasts after Resign", i)
				}
			}
		})
	}
	wg.Wait()
	require.Empty(t, res.rejected, "writes with stale tokens: two leaders acted at once")
	require.GreaterOrEqual(t, len(records), 4, "too few terms in 2 s of contention")
	slices.SortFunc(records, func(a, b termRecord) int { return a.start.Compare(b.start) })
	for k := 1; k < len(records); k++ {
		prev, cur := records[k-1], records[k]
		require.Greater(t, cur.token, prev.token, "tokens must strictly increase from term to term")
		require.False(t, cur.start.Before(prev.end.Add(-cfg.SafetyMargin)),
			"term %d (%s) started %v before term %d (%s) ended", cur.token, cur.id, prev.end.Sub(cur.start), prev.token, prev.id)
	}
}

func testConcurrentCampaign(t *testing.T, k kit) {
	const n = 5
	cfg := kitConfig
	es := k.newCandidates(t, n, cfg)
	require.Len(t, es, n)
	b := newBackground(t)
	results := b.campaign(es...)
	var won campaignResult
	select {
	case won = <-results:
	case <-time.After(2*cfg.Lease + k.slack):
		require.FailNow(t, "nobody won a vacant role")
	}
	require.NoError(t, won.err)
	select {
	case r := <-results:
		require.FailNow(t, "two winners", "candidate %d (%v) while %d leads", r.i, r.err, won.i)
	case <-time.After(2 * cfg.Lease):
	}
	require.NoError(t, won.term.Err(), "the winner's Term ended while nobody else could lead")
	for _, e := range es {
		requireLeader(t, e, won.term)
	}
}

func testRenewal(t *testing.T, k kit) {
	cfg := kitConfig
	es := k.newCandidates(t, 2, cfg)
	term := lead(t, k, es[0], cfg)
	d0 := term.Deadline()
	require.True(t, d0.After(time.Now()), "deadline in the past")
	require.False(t, d0.After(time.Now().Add(cfg.Lease)), "deadline beyond a lease")
	time.Sleep(3 * cfg.Lease)
	require.NoError(t, term.Err(), "leader lost its Term although it renews")
	require.True(t, term.Deadline().After(d0.Add(2*cfg.Lease)), "deadline did not move forward")
	require.True(t, term.Deadline().After(time.Now()), "deadline in the past")
	requireLeader(t, es[1], term)
	again := lead(t, k, es[0], cfg)
	require.Equal(t, term.Token, again.Token, "Campaign while leading must return the current Term")
}

func testResign(t *testing.T, k kit) {
	cfg := resignConfig
	es := k.newCandidates(t, 3, cfg)
	ta := lead(t, k, es[0], cfg)
	b := newBackground(t)
	results := b.campaign(es[1], es[2])
	time.Sleep(100 * time.Millisecond) // both tried once and now wait
	require.NoError(t, es[1].Resign(context.Background()), "Resign while not leading")
	require.NoError(t, ta.Err(), "another candidate's Resign ended the Term")
	requireLeader(t, es[1], ta)

	resigned := time.Now()
	require.NoError(t, es[0].Resign(context.Background()))
	select {
	case <-ta.Done():
	default:
		require.FailNow(t, "Term not ended when Resign returned")
	}
	require.ErrorIs(t, ta.Err(), failover.ErrResigned)
	var r campaignResult
	select {
	case r = <-results:
	case <-time.After(time.Second):
		require.FailNow(t, "nobody took over after Resign")
	}
	require.NoError(t, r.err)
	require.LessOrEqual(t, r.at.Sub(resigned), 300*time.Millisecond,
		"take-over after Resign took longer than 300 ms: campaigners must be woken, not wait for RetryInterval (%v)", cfg.RetryInterval)
	require.Greater(t, r.term.Token, ta.Token)
	require.NotEqual(t, ta.ID, r.term.ID)
	requireLeader(t, es[0], r.term)
	require.NoError(t, es[0].Resign(context.Background()), "second Resign")
	require.NoError(t, r.term.Err(), "a former leader's Resign ended the new Term")
}

func testStopped(t *testing.T, k kit) {
	cfg := kitConfig
	es := k.newCandidates(t, 2, cfg)
	p, ok := es[0].(Partitioner)
	if !ok {
		t.Skip("the Elector does not implement electortest.Partitioner")
	}
	ta := lead(t, k, es[0], cfg)
	b := newBackground(t)
	results := b.campaign(es[1])
	select {
	case r := <-results:
		require.FailNow(t, "took over from a leader that renews", "err %v", r.err)
	case <-time.After(2 * cfg.RenewInterval):
	}
	cut := time.Now()
	p.Partition(true)
	doneAt := requireEnded(t, ta, cfg.Lease+k.slack, failover.ErrLeaseExpired)
	require.False(t, doneAt.After(ta.Deadline().Add(100*time.Millisecond)),
		"Term ended %v after its deadline", doneAt.Sub(ta.Deadline()))
	var r campaignResult
	select {
	case r = <-results:
	case <-time.After(cfg.Lease + cfg.RetryInterval + k.slack - time.Since(cut)):
		require.FailNow(t, "nobody took over from a stopped leader", "within Lease + RetryInterval + %v", k.slack)
	}
	require.NoError(t, r.err)
	require.False(t, r.at.Before(ta.Deadline()), "new leader elected before the old Term's deadline")
	require.Greater(t, r.term.Token, ta.Token)
	p.Partition(false)
	requireLeader(t, es[0], r.term, "reconnected old leader")
	ctx, cancel := context.WithTimeout(context.Background(), 2*cfg.RenewInterval)
	defer cancel()
	_, err := es[0].Campaign(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "reconnected old leader must not take over")
	require.NoError(t, es[0].Resign(context.Background()))
	require.NoError(t, r.term.Err())
	requireLeader(t, es[1], r.term)
}

func testLeader(t *testing.T, k kit) {
	cfg := kitConfig
	es := k.newCandidates(t, 2, cfg)
	requireNoLeader(t, es[0], "fresh role")
	requireNoLeader(t, es[1], "fresh role")
	ta := lead(t, k, es[0], cfg)
	requireLeader(t, es[0], ta)
	requireLeader(t, es[1], ta)
	same := lead(t, k, es[0], cfg)
	require.Equal(t, ta.ID, same.ID)
	require.Equal(t, ta.Token, same.Token)
	require.NoError(t, same.Err())
	require.NoError(t, es[0].Resign(context.Background()))
	requireNoLeader(t, es[0], "after Resign")
	requireNoLeader(t, es[1], "after Resign")
	tb := lead(t, k, es[1], cfg)
	require.NotEqual(t, ta.ID, tb.ID, "candidates need distinct IDs")
	require.Greater(t, tb.Token, ta.Token)
	requireLeader(t, es[0], tb)
	requireLeader(t, es[1], tb)
}

// waitFor reads ch until a value satisfies ok.
func waitFor(t *testing.T, ch <-chan failover.Leader, what string, ok func(failover.Leader) bool) {
	t.Helper()
	timeout := time.After(2 * time.Second)
	for {
		select {
		case l, open := <-ch:
			require.True(t, open, "Observe channel closed while waiting for %s", what)
			if ok(l) {
				return
			}
		case <-timeout:
			require.FailNow(t, "Observe did not send "+what)
		}
	}
}

func isLeader(term *failover.Term) func(failover.Leader) bool {
	return func(l failover.Leader) bool { return l == failover.Leader{ID: term.ID, Token: term.Token} }
}

func isVacant(l failover.Leader) bool { return l.Vacant }

func testObserve(t *testing.T, k kit) {
	cfg := kitConfig
	es := k.newCandidates(t, 3, cfg)
	obs, ok := es[2].(failover.Observer)
	if !ok {
		t.Skip("the Elector is not a failover.Observer")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := obs.Observe(ctx)
	require.NoError(t, err)
	select {
	case l, open := <-ch:
		require.True(t, open)
		require.True(t, l.Vacant, "first value on a fresh role: %+v", l)
	case <-time.After(time.Second):
		require.FailNow(t, "Observe sent no current value")
	}
	ta := lead(t, k, es[1], cfg)
	waitFor(t, ch, "the first leader", isLeader(ta))
	require.NoError(t, es[1].Resign(context.Background()))
	waitFor(t, ch, "the vacancy after Resign", isVacant)
	tb := lead(t, k, es[0], cfg)
	waitFor(t, ch, "the second leader", isLeader(tb))
	if p, ok := es[0].(Partitioner); ok {
		p.Partition(true)
		waitFor(t, ch, "the vacancy after the lease expired", isVacant)
		p.Partition(false)
		tc := lead(t, k, es[1], cfg)
		require.Greater(t, tc.Token, tb.Token)
		waitFor(t, ch, "the third leader", isLeader(tc))
	}
	cancel()
	timeout := time.After(time.Second)
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-timeout:
			require.FailNow(t, "Observe channel not closed after ctx ended")
		}
	}
}

func testCampaignContext(t *testing.T, k kit) {
	cfg := kitConfig
	es := k.newCandidates(t, 2, cfg)
	ta := lead(t, k, es[0], cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := es[1].Campaign(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 150*time.Millisecond+k.slack, "Campaign returned late after its deadline")
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = es[1].Campaign(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, ta.Err())
	requireLeader(t, es[1], ta)
}
