package failover_test

import (
	"testing"
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
