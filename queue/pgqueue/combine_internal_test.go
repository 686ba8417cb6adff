package pgqueue

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"
)

// A call on an idle key runs alone and at once; the calls that come while
// it runs wait, and run as one batch after it, each answered with its own
// result.
func TestCombinerBatchesCallsDuringAStatement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c combiner[string, int, int]
		release := make(chan struct{})
		var mu sync.Mutex
		var batches [][]int
		run := func(reqs []int) ([]int, error) {
			mu.Lock()
			batches = append(batches, slices.Clone(reqs))
			first := len(batches) == 1
			mu.Unlock()
			if first {
				<-release
			}
			out := make([]int, len(reqs))
			for i, r := range reqs {
				out[i] = r * 10
			}
			return out, nil
		}
		got := make([]int, 6)
		var wg sync.WaitGroup
		wg.Go(func() { got[0], _ = c.do(t.Context(), "k", 0, run) })
		synctest.Wait() // the first call's statement is in flight
		for i := 1; i < 6; i++ {
			wg.Go(func() { got[i], _ = c.do(t.Context(), "k", i, run) })
			synctest.Wait()
		}
		// Another key is not held back by k's statement.
		other, err := c.do(t.Context(), "other", 7, run)
		require.NoError(t, err)
		require.Equal(t, 70, other)
		close(release)
		wg.Wait()
		require.Equal(t, []int{0, 10, 20, 30, 40, 50}, got)
		require.Equal(t, [][]int{{0}, {7}, {1, 2, 3, 4, 5}}, batches)
		require.EqualValues(t, 1, c.batches.Load())
		require.Empty(t, c.groups, "an idle key keeps no state")
	})
}

// A call whose context ends while it waits for its batch returns the
// context's error and its request is never run; an error of a batch's
// statement answers every call of the batch.
func TestCombinerCanceledWaiterAndErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c combiner[string, int, int]
		release := make(chan struct{})
		boom := errors.New("boom")
		var ran [][]int
		var mu sync.Mutex
		run := func(reqs []int) ([]int, error) {
			mu.Lock()
			ran = append(ran, slices.Clone(reqs))
			first := len(ran) == 1
			mu.Unlock()
			if first {
				<-release
				return []int{1}, nil
			}
			return nil, boom
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			v, err := c.do(t.Context(), "k", 1, run)
			require.NoError(t, err)
			require.Equal(t, 1, v)
		})
		synctest.Wait()
		ctx, cancel := context.WithCancel(t.Context())
		canceled := make(chan error, 1)
		go func() {
			_, err := c.do(ctx, "k", 2, run)
			canceled <- err
		}()
		errs := make(chan error, 2)
		for i := 3; i <= 4; i++ {
			wg.Go(func() {
				_, err := c.do(t.Context(), "k", i, run)
				errs <- err
			})
			synctest.Wait()
		}
		cancel()
		require.ErrorIs(t, <-canceled, context.Canceled)
		close(release)
		wg.Wait()
		require.ErrorIs(t, <-errs, boom)
		require.ErrorIs(t, <-errs, boom)
		require.Equal(t, [][]int{{1}, {3, 4}}, ran, "the canceled call's request never ran")
	})
}

// With width 2, a second call runs at once beside the first, and only a
// third waits for one of them.
func TestCombinerWidth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := combiner[string, int, int]{width: 2}
		release := make(chan struct{})
		var mu sync.Mutex
		var batches [][]int
		run := func(reqs []int) ([]int, error) {
			mu.Lock()
			batches = append(batches, slices.Clone(reqs))
			mu.Unlock()
			<-release
			return make([]int, len(reqs)), nil
		}
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() { _, _ = c.do(t.Context(), "k", i, run) })
			synctest.Wait()
		}
		mu.Lock()
		require.Equal(t, [][]int{{0}, {1}}, batches, "two statements in flight, the rest waiting")
		mu.Unlock()
		close(release)
		wg.Wait()
		require.Equal(t, [][]int{{0}, {1}, {2, 3}}, batches)
	})
}
