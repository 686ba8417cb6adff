package chaos

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scaleout/scaleout/failover"
)

// electorReusedTokens is a broken Elector: it hands each new Term the
// token of the previous one every other time (the store's token n
// becomes (n+1)/2), as an elector whose token counter missed an INCR
// would. The checker must catch it on the same workload.
type electorReusedTokens struct {
	inner failover.Elector

	mu     sync.Mutex
	inTerm *failover.Term // the inner Term the current wrapper mirrors
	term   *failover.Term
	wg     sync.WaitGroup
}

func (e *electorReusedTokens) Campaign(ctx context.Context) (*failover.Term, error) {
	in, err := e.inner.Campaign(ctx)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if in == e.inTerm {
		return e.term, nil
	}
	t := failover.NewTerm(in.ID, (in.Token+1)/2, in.Deadline())
	e.inTerm, e.term = in, t
	// Mirror the inner Term: its renewals and its end.
	e.wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-in.Done():
				t.End(in.Err())
				return
			case <-t.Done():
				return
			case <-tick.C:
				t.Extend(in.Deadline())
			}
		}
	})
	return t, nil
}

func (e *electorReusedTokens) Resign(ctx context.Context) error {
	e.mu.Lock()
	if e.term != nil {
		e.term.End(failover.ErrResigned)
	}
	e.mu.Unlock()
	return e.inner.Resign(ctx)
}

func (e *electorReusedTokens) Leader(ctx context.Context) (failover.Leader, error) {
	return e.inner.Leader(ctx)
}

// TestElectorChaosCatchesReusedTokens runs the memory backend's workload
// over electorReusedTokens: the checker must report the shared tokens
// (clause 1) and, once a paused leader's write went through after a
// newer leader's with the same token, the fence's two holders (clause 2).
func TestElectorChaosCatchesReusedTokens(t *testing.T) {
	b := electorBackends()[0](t)
	var wrapped []*electorReusedTokens
	for i := range b.clones {
		w := &electorReusedTokens{inner: b.clones[i].Elector}
		wrapped = append(wrapped, w)
		b.clones[i].Elector = w
	}
	d := min(*duration, 4*time.Second)
	ops, faults := electorRun(t, b, 1, d)
	for _, w := range wrapped {
		w.wg.Wait()
	}
	v := CheckElector(ops)
	t.Logf("%s; %s; checker:\n%s", ElectorSummary(ops), faults, v)
	if !strings.Contains(v, "clause 1: two terms share token") {
		t.Fatalf("the checker missed the reused tokens")
	}
}
