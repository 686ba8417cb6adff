package electortest_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/electortest"
	"github.com/scaleout/scaleout/internal/kitcheck"
)

// Real-time tests in this file: TestKitCatchesBrokenElectors, whose
// child processes run each clause by Run as well as by RunSynctest (Run
// is what Electors on real servers use; its bounds are the kit's own).

// The kit is a product: an Elector that breaks a clause must fail it.
// Each broken Elector below is failover.Memory with one promise broken by
// a wrapper, written as a third party's would be, with exported API only
// (the Term it hands out may be its own, made with failover.NewTerm);
// TestKitCatchesBrokenElectors runs each clause it breaks in a child
// process, by Run and by RunSynctest, and requires that clause to fail.

// brokenEnv names the broken Elector the child process runs the kit on,
// runnerEnv the runner ("Run" or "RunSynctest").
const (
	brokenEnv = "ELECTORTEST_BROKEN_ELECTOR"
	runnerEnv = "ELECTORTEST_BROKEN_RUNNER"
)

// brokenElectors maps each broken behaviour to the clauses that must catch
// it.
var brokenElectors = map[string][]string{
	"Campaign wins while another leads":          {"OneLeaderAtATime", "ConcurrentCampaign"},
	"tokens do not increase":                     {"OneLeaderAtATime", "Leader"},
	"the leader never renews":                    {"Renewal", "ConcurrentCampaign"},
	"Campaign while leading starts a new Term":   {"Renewal", "Leader"},
	"Resign does not free the lease":             {"ResignHandsOver", "Leader"},
	"Resign does not end the Term":               {"ResignHandsOver", "OneLeaderAtATime"},
	"Resign while not leading fails":             {"ResignHandsOver"},
	"Resign frees the role whoever holds it":     {"ResignHandsOver"},
	"Campaign polls every RetryInterval":         {"ResignHandsOver"},
	"Campaign polls every three leases":          {"StoppedLeaderIsReplaced"},
	"the Term ends a lease late":                 {"StoppedLeaderIsReplaced"},
	"the Term never expires":                     {"StoppedLeaderIsReplaced", "Renewal"},
	"an expired leader claims the role back":     {"StoppedLeaderIsReplaced"},
	"Leader reports an older token":              {"Leader", "ConcurrentCampaign"},
	"Leader reports a vacancy as a leader":       {"Leader"},
	"all candidates share one Term ID":           {"Leader"},
	"Observe sends no current value":             {"Observe"},
	"Observe skips vacancies":                    {"Observe"},
	"Observe does not close its channel at once": {"Observe"},
	"Campaign overstays its context":             {"CampaignHonoursContext"},
	"Close does not wait for its goroutines":     {"Close"},
	"Close does not resign":                      {"Close"},
	"Resign after Close succeeds":                {"Close"},
}

// brokenInBubble maps the broken behaviours that only RunSynctest's exact
// bounds catch (Run's slack for a loaded machine hides them) to their
// clauses.
var brokenInBubble = map[string][]string{
	"Campaign polls every two leases": {"StoppedLeaderIsReplaced"},
}

// overstay is how long a broken call blocks past its context.
const overstay = time.Second

type broken struct {
	*failover.Memory
	how   string
	peers []*broken // every candidate of the role, this one included
	// closed is closed when the test ends, for the wrapper's goroutines.
	closed chan struct{}

	observers sync.WaitGroup // the wrapper's Observe goroutines
	closing   chan struct{}  // closed by Close, for them

	mu          sync.Mutex
	closeCalled bool
	orig        *failover.Term // the Memory's latest Term
	handed      *failover.Term // the Term handed out for it
}

func (b *broken) id() string { return b.Config().ID }

// leads reports whether the Memory's latest Term lasts.
func (b *broken) leads() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.orig != nil && b.orig.Err() == nil
}

func (b *broken) Campaign(ctx context.Context) (*failover.Term, error) {
	cfg := b.Config()
	switch b.how {
	case "Campaign wins while another leads":
		// It looks again every RetryInterval, so it breaks the promise
		// whenever another leads while it campaigns, not only when
		// another led before it started.
		for {
			if l, err := b.Memory.Leader(ctx); err == nil && l.ID != b.id() {
				return failover.NewTerm(b.id(), l.Token, time.Now().Add(cfg.Lease-cfg.SafetyMargin)), nil
			}
			try, cancel := context.WithTimeout(ctx, cfg.RetryInterval)
			term, err := b.Memory.Campaign(try)
			cancel()
			if err == nil {
				return b.hand(term), nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	case "Campaign while leading starts a new Term":
		if b.leads() {
			if err := b.Memory.Resign(ctx); err != nil {
				return nil, err
			}
		}
	case "Campaign polls every RetryInterval":
		return b.poll(ctx, cfg.RetryInterval)
	case "Campaign polls every two leases":
		return b.poll(ctx, 2*cfg.Lease)
	case "Campaign polls every three leases":
		return b.poll(ctx, 3*cfg.Lease)
	case "an expired leader claims the role back":
		b.mu.Lock()
		last := b.orig
		b.mu.Unlock()
		if last != nil && errors.Is(last.Err(), failover.ErrLeaseExpired) {
			return failover.NewTerm(b.id(), last.Token, time.Now().Add(cfg.Lease-cfg.SafetyMargin)), nil
		}
	case "Campaign overstays its context":
		own, cancel := context.WithTimeout(context.WithoutCancel(ctx), overstay)
		defer cancel()
		term, err := b.Memory.Campaign(own)
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return b.hand(term), err
	}
	term, err := b.Memory.Campaign(ctx)
	if err != nil {
		return nil, err
	}
	if b.how == "the leader never renews" {
		b.Partition(true) // its renewals are lost from now on
	}
	return b.hand(term), nil
}

// poll campaigns by looking for a vacant role every interval, never woken
// by a Resign.
func (b *broken) poll(ctx context.Context, interval time.Duration) (*failover.Term, error) {
	for {
		if _, err := b.Memory.Leader(ctx); errors.Is(err, failover.ErrNoLeader) || b.leads() {
			try, cancel := context.WithTimeout(ctx, interval)
			term, err := b.Memory.Campaign(try)
			cancel()
			if err == nil {
				return b.hand(term), nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// hand returns the Term handed out for the Memory's term orig: orig
// itself, or a Term of the wrapper's own that follows orig as the broken
// behaviour says.
func (b *broken) hand(orig *failover.Term) *failover.Term {
	if orig == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if orig == b.orig {
		return b.handed
	}
	b.orig, b.handed = orig, orig
	var (
		id     = orig.ID
		token  = orig.Token
		late   time.Duration // how far its deadline trails orig's
		ignore error         // a cause of orig's end it does not follow
	)
	switch b.how {
	case "tokens do not increase":
		token = 1
	case "all candidates share one Term ID":
		id = "candidate"
	case "Resign does not end the Term":
		ignore = failover.ErrResigned
	case "the Term ends a lease late":
		late, ignore = b.Config().Lease, failover.ErrLeaseExpired
	case "the Term never expires":
		late, ignore = time.Hour, failover.ErrLeaseExpired
	default:
		return orig
	}
	b.handed = follow(orig, id, token, late, ignore, b.Config().RenewInterval/2)
	return b.handed
}

// follow returns a Term of id and token that ends when orig ends, unless
// orig ended with ignore, and whose deadline trails orig's by late,
// looked up every step.
func follow(orig *failover.Term, id string, token uint64, late time.Duration, ignore error, step time.Duration) *failover.Term {
	t := failover.NewTerm(id, token, orig.Deadline().Add(late))
	go func() {
		for {
			select {
			case <-orig.Done():
				if ignore == nil || !errors.Is(orig.Err(), ignore) {
					t.End(orig.Err())
				}
				return
			case <-t.Done():
				return
			case <-time.After(step):
				t.Extend(orig.Deadline().Add(late))
			}
		}
	}()
	return t
}

func (b *broken) Resign(ctx context.Context) error {
	switch b.how {
	case "Resign after Close succeeds":
		if err := b.Memory.Resign(ctx); !errors.Is(err, failover.ErrClosed) {
			return err
		}
		return nil
	case "Resign does not free the lease":
		// Cut off, Memory ends its Term and leaves the lease to expire.
		b.Partition(true)
		defer b.Partition(false)
		_ = b.Memory.Resign(ctx)
		return nil
	case "Resign while not leading fails":
		if !b.leads() {
			return failover.ErrNoLeader
		}
	case "Resign frees the role whoever holds it":
		if !b.leads() {
			for _, p := range b.peers {
				if p != b && p.leads() {
					return p.Memory.Resign(ctx)
				}
			}
		}
	}
	return b.Memory.Resign(ctx)
}

func (b *broken) Leader(ctx context.Context) (failover.Leader, error) {
	l, err := b.Memory.Leader(ctx)
	switch b.how {
	case "Leader reports an older token":
		if err == nil {
			l.Token--
		}
	case "Leader reports a vacancy as a leader":
		if errors.Is(err, failover.ErrNoLeader) {
			l.Vacant = false
			return l, nil
		}
	case "all candidates share one Term ID":
		if err == nil {
			l.ID = "candidate"
		}
	}
	return l, err
}

func (b *broken) Observe(ctx context.Context) (<-chan failover.Leader, error) {
	in, err := b.Memory.Observe(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan failover.Leader)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closeCalled {
		return nil, failover.ErrClosed
	}
	b.observers.Go(func() { // under mu: never after Close's Wait began
		first := true
		for l := range in {
			skip := (b.how == "Observe sends no current value" && first) ||
				(b.how == "Observe skips vacancies" && l.Vacant)
			first = false
			if skip {
				continue
			}
			select {
			case out <- l:
			case <-ctx.Done():
			case <-b.closing:
			}
		}
		if b.how == "Close does not wait for its goroutines" {
			time.Sleep(10 * time.Millisecond) // winding down, as Close returns
		}
		if b.how == "Observe does not close its channel at once" {
			select {
			case <-time.After(2 * time.Second):
			case <-b.closed:
			}
		}
		close(out)
	})
	return out, nil
}

// Close closes the Memory, which closes the channels the wrapper's Observe
// goroutines read, and waits for them.
func (b *broken) Close() error {
	b.mu.Lock()
	if !b.closeCalled {
		b.closeCalled = true
		close(b.closing)
	}
	b.mu.Unlock()
	switch b.how {
	case "Close does not wait for its goroutines":
		return b.Memory.Close()
	case "Close does not resign":
		// Cut off, Memory ends its Term and leaves the lease to expire.
		b.Partition(true)
	}
	err := b.Memory.Close()
	b.observers.Wait()
	return err
}

// newBroken returns n candidates of one fresh role, broken the way how
// says; how "" is the wrapper breaking nothing.
func newBroken(t *testing.T, how string, n int, cfg failover.Config) []failover.Elector {
	peers := make([]*broken, n)
	made := 0
	return memoryCandidates(t, n, cfg, func(m *failover.Memory) failover.Elector {
		b := &broken{Memory: m, how: how, peers: peers, closed: make(chan struct{}), closing: make(chan struct{})}
		t.Cleanup(func() { close(b.closed) })
		peers[made] = b
		made++
		return b
	})
}

// runners are the kit's two ways to run.
var runners = map[string]func(*testing.T, electortest.NewCandidates){
	"Run": electortest.Run, "RunSynctest": electortest.RunSynctest,
}

// TestKitOnUnbrokenWrapper is the baseline: breaking nothing, the wrapper
// passes every clause, so a clause that fails below fails for the break.
func TestKitOnUnbrokenWrapper(t *testing.T) {
	electortest.RunSynctest(t, func(t *testing.T, n int, cfg failover.Config) []failover.Elector {
		return newBroken(t, "", n, cfg)
	})
}

// TestBrokenElectorChild runs the kit on the broken Elector the parent
// names, by the runner it names; it is skipped in a normal run.
func TestBrokenElectorChild(t *testing.T) {
	how := os.Getenv(brokenEnv)
	if how == "" {
		t.Skip("run by TestKitCatchesBrokenElectors")
	}
	runners[os.Getenv(runnerEnv)](t, func(t *testing.T, n int, cfg failover.Config) []failover.Elector {
		return newBroken(t, how, n, cfg)
	})
}

func TestKitCatchesBrokenElectors(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in the child process")
	}
	for how, clauses := range brokenElectors {
		for _, clause := range clauses {
			for runner := range runners {
				catches(t, how, clause, runner)
			}
		}
	}
	for how, clauses := range brokenInBubble {
		for _, clause := range clauses {
			catches(t, how, clause, "RunSynctest")
		}
	}
}

// catches requires that runner's clause fails on the Elector broken as how
// says.
func catches(t *testing.T, how, clause, runner string) {
	t.Run(how+"/"+clause+"/"+runner, func(t *testing.T) {
		t.Parallel() // each child mostly waits on leases; load only makes a broken Elector later
		kitcheck.Catches(t, "TestBrokenElectorChild", clause, "an Elector where "+how+" under "+runner, brokenEnv+"="+how, runnerEnv+"="+runner)
	})
}
