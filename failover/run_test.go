package failover_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
)

// testRunConfig campaigns again after testConfig's RetryInterval.
var testRunConfig = failover.RunConfig{RetryInterval: testConfig.RetryInterval}

type runTerm struct {
	token uint64
	at    time.Time
}

// fn returning nil ends the term: Run resigns and campaigns again after
// RetryInterval.
func TestRunCampaignsAgainAfterFnReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a")
		ctx, cancel := context.WithCancel(t.Context())
		var terms []runTerm
		start := time.Now()
		err := failover.Run(ctx, ms[0], testRunConfig, func(ctx context.Context, term *failover.Term) error {
			terms = append(terms, runTerm{term.Token, time.Now()})
			if len(terms) == 3 {
				cancel()
			}
			time.Sleep(50 * time.Millisecond)
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		step := 50*time.Millisecond + testConfig.RetryInterval
		require.Equal(t, []runTerm{{1, start}, {2, start.Add(step)}, {3, start.Add(2 * step)}}, terms)
		_, err = ms[0].Leader(t.Context())
		require.ErrorIs(t, err, failover.ErrNoLeader, "Run resigned on return")
	})
}

// fn returning an error resigns at once: another candidate takes over.
func TestRunFnErrorHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a", "b")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		var failedAt time.Time
		go func() {
			done <- failover.Run(ctx, ms[0], testRunConfig, func(ctx context.Context, term *failover.Term) error {
				if term.Token == 1 {
					time.Sleep(time.Second)
					failedAt = time.Now()
					return errors.New("boom")
				}
				<-ctx.Done()
				return nil
			})
		}()
		synctest.Wait()
		tb, err := ms[1].Campaign(t.Context())
		require.NoError(t, err)
		require.Equal(t, failedAt, time.Now(), "b took over at once")
		require.Equal(t, uint64(2), tb.Token)
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		require.NoError(t, tb.Err(), "a's Run did not disturb b")
	})
}

// fn's ctx ends with the term, cause the term's Err; Run campaigns again.
func TestRunCancelsFnWhenTermEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a")
		ctx, cancel := context.WithCancel(t.Context())
		var causes []error
		var terms []runTerm
		start := time.Now()
		err := failover.Run(ctx, ms[0], testRunConfig, func(fctx context.Context, term *failover.Term) error {
			terms = append(terms, runTerm{term.Token, time.Now()})
			if term.Token == 1 {
				ms[0].Partition(true)
				go func() {
					time.Sleep(2 * time.Second)
					ms[0].Partition(false)
				}()
			} else {
				cancel()
			}
			<-fctx.Done()
			causes = append(causes, context.Cause(fctx))
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		require.Len(t, causes, 2)
		require.ErrorIs(t, causes[0], failover.ErrLeaseExpired)
		require.ErrorIs(t, causes[1], context.Canceled)
		require.Equal(t, runTerm{1, start}, terms[0])
		require.Equal(t, uint64(2), terms[1].token)
		require.False(t, terms[1].at.Before(start.Add(2*time.Second)), "re-elected only once reconnected")
		require.LessOrEqual(t, terms[1].at.Sub(start.Add(2*time.Second)), testConfig.RetryInterval)
	})
}

// Run waits for fn, even one slow to notice that ctx ended.
func TestRunWaitsForFn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a")
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		returned := false
		start := time.Now()
		err := failover.Run(ctx, ms[0], testRunConfig, func(ctx context.Context, term *failover.Term) error {
			<-ctx.Done()
			time.Sleep(3 * time.Second)
			returned = true
			return nil
		})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.True(t, returned)
		require.Equal(t, start.Add(4*time.Second), time.Now())
	})
}

// A closed Elector ends Run with ErrClosed.
func TestRunClosedElector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a")
		err := failover.Run(t.Context(), ms[0], testRunConfig, func(ctx context.Context, term *failover.Term) error {
			require.NoError(t, ms[0].Close())
			<-ctx.Done()
			require.ErrorIs(t, context.Cause(ctx), failover.ErrResigned)
			return nil
		})
		require.ErrorIs(t, err, failover.ErrClosed)
	})
}

// Run with a cancelled ctx returns at once.
func TestRunCancelledContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := failover.Run(ctx, ms[0], testRunConfig, func(ctx context.Context, term *failover.Term) error {
			t.Error("fn ran")
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
	})
}

// Several Runs of one role: one leader at a time, every candidate leads
// in turn, and no goroutine outlives them (synctest checks).
func TestRunManyCandidates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a", "b", "c")
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var leading int
		led := map[string]int{}
		var lastToken uint64
		errs := make(chan error, len(ms))
		for _, m := range ms {
			go func() {
				errs <- failover.Run(ctx, m, testRunConfig, func(ctx context.Context, term *failover.Term) error {
					leading++ // no mutex: only one leader at a time, and -race would tell
					defer func() { leading-- }()
					if leading != 1 || term.Token <= lastToken {
						t.Errorf("%d leaders, token %d after %d", leading, term.Token, lastToken)
					}
					lastToken = term.Token
					led[term.ID]++
					time.Sleep(500 * time.Millisecond)
					return nil
				})
			}()
		}
		for range ms {
			require.ErrorIs(t, <-errs, context.DeadlineExceeded)
		}
		require.Len(t, led, 3)
		require.GreaterOrEqual(t, lastToken, uint64(15))
	})
}
