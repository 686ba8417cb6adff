package failover_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/observe"
)

// TestRunMetrics runs a known sequence of terms through Run and checks the
// figures of observe's table for failover: a won term, a self-fenced one
// (the candidate cut off from the store), the token, the leader gauge and
// the changes of leader, and the log records of the terms.
func TestRunMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a", "b")
		a, b := ms[0], ms[1]
		rec := observe.NewRecorder()
		var logs bytes.Buffer
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() {
			done <- failover.Run(ctx, a, failover.RunConfig{
				RetryInterval: testConfig.RetryInterval, Meter: rec,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			}, func(ctx context.Context, _ *failover.Term) error {
				<-ctx.Done()
				return ctx.Err()
			})
		}()
		synctest.Wait()
		require.EqualValues(t, 1, rec.Value("scaleout.failover.terms"))
		require.EqualValues(t, 1, rec.Value("scaleout.failover.leader"))
		require.EqualValues(t, 1, rec.Value("scaleout.failover.token"))

		// a is cut off: its term self-fences at its deadline, and b takes
		// over once the lease has run out in the store.
		a.Partition(true)
		bTerm := make(chan *failover.Term)
		go func() {
			term, err := b.Campaign(t.Context())
			if err == nil {
				bTerm <- term
			}
		}()
		time.Sleep(2 * testConfig.Lease)
		synctest.Wait()
		require.EqualValues(t, 1, rec.Value("scaleout.failover.self_fencing"))
		require.EqualValues(t, 0, rec.Value("scaleout.failover.leader"))
		term := <-bTerm

		// a reconnects, b resigns: a wins its second term, with b's token
		// plus one.
		a.Partition(false)
		time.Sleep(testConfig.RetryInterval)
		require.NoError(t, b.Resign(t.Context()))
		time.Sleep(2 * testConfig.RetryInterval)
		synctest.Wait()
		require.EqualValues(t, 2, rec.Value("scaleout.failover.terms"))
		require.EqualValues(t, 1, rec.Value("scaleout.failover.leader"))
		require.EqualValues(t, term.Token+1, rec.Value("scaleout.failover.token"))
		// Seen by a: a → (vacant →) b → vacant → a; at least a to b and b to a.
		require.GreaterOrEqual(t, rec.Value("scaleout.failover.leader_changes"), 2.0)

		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		require.EqualValues(t, 0, rec.Value("scaleout.failover.leader"))
		require.EqualValues(t, 1, rec.Value("scaleout.failover.self_fencing"), "a resignation is no self-fencing")
		out := logs.String()
		require.Equal(t, 2, strings.Count(out, `level=INFO msg="failover: leading" id=a`), out)
		require.Contains(t, out, `level=WARN msg="failover: term ended" id=a token=1`)
	})
}
