package failover_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/electortest"
)

// A second Run on one Elector returns ErrAlreadyRunning at once and leaves
// the first alone; once the first returned, Run may run on it again. Runs
// on other candidates of the role are not affected.
func TestRunTwiceOnOneElector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a", "b")
		ctx, cancel := context.WithCancel(t.Context())
		leading := make(chan *failover.Term, 1)
		first := make(chan error)
		go func() {
			first <- failover.Run(ctx, ms[0], testRunConfig, func(ctx context.Context, term *failover.Term) error {
				leading <- term
				<-ctx.Done()
				return nil
			})
		}()
		term := <-leading
		start := time.Now()
		err := failover.Run(t.Context(), ms[0], testRunConfig, func(ctx context.Context, term *failover.Term) error {
			t.Error("the second Run ran fn")
			return nil
		})
		require.ErrorIs(t, err, failover.ErrAlreadyRunning)
		require.Equal(t, start, time.Now(), "returned at once")
		require.NoError(t, term.Err(), "the second Run ended the first's term")

		other, cancelOther := context.WithTimeout(t.Context(), time.Second)
		defer cancelOther()
		require.ErrorIs(t, failover.Run(other, ms[1], testRunConfig, func(ctx context.Context, term *failover.Term) error {
			return nil
		}), context.DeadlineExceeded, "Run on another candidate")

		cancel()
		require.ErrorIs(t, <-first, context.Canceled)
		again, cancelAgain := context.WithCancel(t.Context())
		require.ErrorIs(t, failover.Run(again, ms[0], testRunConfig, func(ctx context.Context, term *failover.Term) error {
			cancelAgain()
			return nil
		}), context.Canceled, "Run after the first returned")
	})
}

// OnError is told each error fn returns while its term lasts, with the
// term, after Run resigned it; not the ctx errors of a term or Run that
// ended.
func TestRunOnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a")
		ctx, cancel := context.WithCancel(t.Context())
		boom := errors.New("boom")
		type report struct {
			token   uint64
			err     error
			termErr error
		}
		var reports []report
		cfg := testRunConfig
		cfg.OnError = func(term *failover.Term, err error) {
			reports = append(reports, report{term.Token, err, term.Err()})
		}
		err := failover.Run(ctx, ms[0], cfg, func(fctx context.Context, term *failover.Term) error {
			switch term.Token {
			case 1:
				return fmt.Errorf("job: %w", boom)
			case 2: // the term ends under fn: its ctx error is no failure
				ms[0].Partition(true)
				go func() {
					time.Sleep(2 * time.Second)
					ms[0].Partition(false)
				}()
				<-fctx.Done()
				return context.Cause(fctx)
			case 3: // also when fn wraps it
				require.NoError(t, ms[0].Resign(t.Context()))
				<-fctx.Done()
				return fmt.Errorf("stopped: %w", fctx.Err())
			case 4: // Run's ctx ends
				cancel()
				<-fctx.Done()
				return fctx.Err()
			}
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		require.Len(t, reports, 1, "%+v", reports)
		require.Equal(t, uint64(1), reports[0].token)
		require.ErrorIs(t, reports[0].err, boom)
		require.ErrorIs(t, reports[0].termErr, failover.ErrResigned, "OnError runs after Run resigned")
	})
}

// OnError may stop Run by cancelling its ctx.
func TestRunOnErrorStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a")
		ctx, cancel := context.WithCancel(t.Context())
		cfg := testRunConfig
		var got error
		cfg.OnError = func(_ *failover.Term, err error) { got = err; cancel() }
		terms := 0
		err := failover.Run(ctx, ms[0], cfg, func(ctx context.Context, term *failover.Term) error {
			terms++
			return errors.New("fatal")
		})
		require.ErrorIs(t, err, context.Canceled)
		require.EqualError(t, got, "fatal")
		require.Equal(t, 1, terms, "Run campaigned again after OnError cancelled it")
	})
}

// The zero RunConfig campaigns again DefaultLease/8 after fn returned,
// whatever the Elector's own RetryInterval; a negative one is refused.
func TestRunConfigRetryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a")
		ctx, cancel := context.WithCancel(t.Context())
		var at []time.Time
		err := failover.Run(ctx, ms[0], failover.RunConfig{}, func(ctx context.Context, term *failover.Term) error {
			if at = append(at, time.Now()); len(at) == 2 {
				cancel()
			}
			return nil
		})
		require.ErrorIs(t, err, context.Canceled)
		require.Len(t, at, 2)
		require.Equal(t, failover.DefaultLease/8, at[1].Sub(at[0]))
		require.NotEqual(t, testConfig.RetryInterval, failover.DefaultLease/8, "the test tells them apart")

		err = failover.Run(t.Context(), ms[0], failover.RunConfig{RetryInterval: -time.Second}, func(ctx context.Context, term *failover.Term) error {
			t.Error("fn ran")
			return nil
		})
		require.ErrorIs(t, err, failover.ErrInvalidConfig)
	})
}

// Config.Validate is the check the constructors make.
func TestConfigValidate(t *testing.T) {
	electortest.CheckConfig(t, failover.Config.Validate)
	require.NoError(t, failover.Config{}.Validate(), "the zero Config means the defaults")
}
