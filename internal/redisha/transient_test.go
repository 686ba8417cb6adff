package redisha

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// reply is a server's error reply, as go-redis returns it.
type reply string

func (r reply) Error() string { return string(r) }
func (reply) RedisError()     {}

func TestTransient(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{refused, true},
		{fmt.Errorf("wrapped: %w", refused), true},
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{redis.ErrPoolTimeout, true},
		{reply("READONLY You can't write against a read only replica."), true},
		{reply("ERR Error running script (call to f_1): @user_script:1: -READONLY You can't write against a read only replica."), true},
		{reply("LOADING Redis is loading the dataset in memory"), true},
		{reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true},
		{reply("TRYAGAIN Multiple keys request during rehashing of slot"), true},
		{reply("CLUSTERDOWN The cluster is down"), true},
		{reply("MOVED 3999 127.0.0.1:6381"), true},
		{reply("ASK 3999 127.0.0.1:6381"), true},
		{reply("NOREPLICAS Not enough good replicas to write."), true},
		{reply("ERR max number of clients reached"), true},
		{reply("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."), true},
		{reply("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{reply("ERR Error running script (call to f_1): @user_script:3: user error"), false},
		{reply("NOPERM this user has no permissions"), false},
		{redis.ErrClosed, false},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{redis.Nil, false},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, Transient(tc.err), "%v", tc.err)
	}
}

var errSwitch = reply("READONLY You can't write against a read only replica.")

// TestRetryRidesOutUntilDeadline: transient errors are retried while the deadline
// allows and the last one is returned only then; a try is made shortly before the
// deadline, not given up a pause early.
func TestRetryRidesOutUntilDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		var tries []time.Duration
		err := Retry(ctx, nil, func(context.Context) error {
			tries = append(tries, time.Since(start))
			return errSwitch
		})
		require.ErrorIs(t, err, errSwitch)
		last := tries[len(tries)-1]
		require.Greater(t, last, 1990*time.Millisecond, "the last try must come just before the 2 s deadline; tries at %v", tries)
		require.Less(t, len(tries), 20, "backoff doubles to 1 s: tries at %v", tries)
	})
}

func TestRetrySucceedsAfterSwitch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		v, err := Value(context.Background(), nil, func(context.Context) (int, error) {
			n++
			if n < 5 {
				return 0, errSwitch
			}
			return 42, nil
		})
		require.NoError(t, err)
		require.Equal(t, 42, v)
		require.Equal(t, 5, n)
	})
}

func TestRetryStopsAtOtherErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		other := errors.New("WRONGTYPE")
		n := 0
		err := Retry(context.Background(), nil, func(context.Context) error { n++; return other })
		require.ErrorIs(t, err, other)
		require.Equal(t, 1, n)
	})
}

// TestRetryBudgetWithoutDeadline: a context without deadline is retried for
// DefaultBudget, not for ever.
func TestRetryBudgetWithoutDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		err := Retry(context.Background(), nil, func(context.Context) error { return io.EOF })
		require.ErrorIs(t, err, io.EOF)
		took := time.Since(start)
		require.GreaterOrEqual(t, took, DefaultBudget-PauseMax)
		require.LessOrEqual(t, took, DefaultBudget)
	})
}
