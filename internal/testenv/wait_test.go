package testenv

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPoll(t *testing.T) {
	t.Parallel()
	t.Run("times out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start, calls := time.Now(), 0
			err := poll(ctx, 3*time.Second, func() (bool, error) { calls++; return false, nil })
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Equal(t, 10*time.Second, time.Since(start))
			require.Equal(t, 4, calls) // at 0s, 3s, 6s and 9s
		})
	})
	t.Run("succeeds", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start, calls := time.Now(), 0
			err := poll(t.Context(), time.Second, func() (bool, error) { calls++; return calls == 3, nil })
			require.NoError(t, err)
			require.Equal(t, 2*time.Second, time.Since(start))
		})
	})
	t.Run("stops on error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			boom := errors.New("boom")
			start := time.Now()
			err := poll(t.Context(), time.Second, func() (bool, error) { return false, boom })
			require.ErrorIs(t, err, boom)
			require.Zero(t, time.Since(start))
		})
	})
}
