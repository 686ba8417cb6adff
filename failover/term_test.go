package failover_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
)

// A term whose deadline has already passed ends at once, and safely: its
// timer fires while NewTerm is still setting it up (run with -race).
func TestTermWithPastDeadlineEnds(t *testing.T) {
	for range 200 {
		term := failover.NewTerm("a", 1, time.Now().Add(-time.Millisecond))
		<-term.Done()
		require.ErrorIs(t, term.Err(), failover.ErrLeaseExpired)
	}
}

// TestTermErrAtDeadline: from its deadline on, a term's Err reports
// ErrLeaseExpired and Extend cannot revive it, whether or not the timer
// that closes Done has run yet; Done closes at the deadline, an extended
// one included (on a busy machine it runs late; here the
// goroutine that reads Err wakes at the same instant as the timer, in
// either order). A leader that checks Err before acting never acts past
// its deadline.
func TestTermErrAtDeadline(t *testing.T) {
	for range 100 {
		synctest.Test(t, func(t *testing.T) {
			term := failover.NewTerm("a", 1, time.Now().Add(time.Second))
			time.Sleep(time.Second - time.Nanosecond)
			require.NoError(t, term.Err(), "a nanosecond before the deadline")
			time.Sleep(time.Nanosecond)
			require.ErrorIs(t, term.Err(), failover.ErrLeaseExpired, "at the deadline")
			require.False(t, term.Extend(time.Now().Add(time.Second)), "a late renewal revived the term")
			<-term.Done()
		})
		synctest.Test(t, func(t *testing.T) {
			term := failover.NewTerm("a", 1, time.Now().Add(time.Second))
			time.Sleep(500 * time.Millisecond)
			require.True(t, term.Extend(time.Now().Add(time.Second)), "a renewal before the deadline")
			time.Sleep(time.Second - time.Nanosecond)
			synctest.Wait()
			select {
			case <-term.Done():
				t.Fatal("Done closed before the extended deadline")
			default:
			}
			time.Sleep(time.Nanosecond)
			synctest.Wait()
			select {
			case <-term.Done():
			default:
				t.Fatal("Done still open at the extended deadline")
			}
		})
		synctest.Test(t, func(t *testing.T) {
			term := failover.NewTerm("a", 1, time.Now().Add(time.Second))
			time.Sleep(time.Second)
			require.False(t, term.Extend(time.Now().Add(time.Second)), "a late renewal revived the term")
			require.ErrorIs(t, term.Err(), failover.ErrLeaseExpired)
		})
	}
}
