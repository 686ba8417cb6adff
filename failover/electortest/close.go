package electortest

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
)

// testClose checks the Close of an Elector that has one (an io.Closer):
// it resigns, ends the goroutines it started before it returns (an
// Observe channel is closed by then), wakes a Campaign waiting, is
// idempotent, and leaves every other method failing with
// failover.ErrClosed.
func testClose(t *testing.T, k kit) {
	cfg := kitConfig
	es := k.newCandidates(t, 3, cfg)
	a, ok := es[0].(io.Closer)
	if !ok {
		t.Skip("the Elector has no Close")
	}
	ta := lead(t, k, es[0], cfg)
	var observed <-chan failover.Leader
	if obs, ok := es[0].(failover.Observer); ok {
		ch, err := obs.Observe(context.Background()) // only Close ends it
		require.NoError(t, err)
		observed = ch
	}
	b := newBackground(t)
	results := b.campaign(es[1])
	time.Sleep(2 * cfg.RetryInterval) // it tried and now waits

	// Two Closes at once: each returns only once the goroutines ended.
	type closeResult struct {
		err, termErr error
		observeOpen  bool
		at           time.Time
	}
	results2 := make(chan closeResult, 2)
	var closes sync.WaitGroup
	for range 2 {
		closes.Go(func() {
			err := a.Close()
			r := closeResult{err: err, termErr: ta.Err(), at: time.Now()}
			r.observeOpen = observed != nil && !closedNow(observed)
			results2 <- r
		})
	}
	closes.Wait()
	close(results2)
	var closed time.Time
	for r := range results2 {
		require.NoError(t, r.err, "Close")
		require.Error(t, r.termErr, "the Term lasts after Close returned")
		require.False(t, r.observeOpen, "an Observe channel is open when Close returned")
		closed = r.at
	}
	require.NoError(t, a.Close(), "Close after Close")

	var r campaignResult
	select {
	case r = <-results:
	case <-time.After(cfg.Lease + cfg.RetryInterval + k.slack):
		require.FailNow(t, "nobody took over after the leader's Close")
	}
	require.NoError(t, r.err)
	require.LessOrEqual(t, r.at.Sub(closed), cfg.RetryInterval+k.slack,
		"take-over after Close took longer than RetryInterval (%v) + %v: Close must resign", cfg.RetryInterval, k.slack)
	require.Greater(t, r.term.Token, ta.Token)

	ctx := context.Background()
	_, err := es[0].Campaign(ctx)
	require.ErrorIs(t, err, failover.ErrClosed, "Campaign after Close")
	require.ErrorIs(t, es[0].Resign(ctx), failover.ErrClosed, "Resign after Close")
	_, err = es[0].Leader(ctx)
	require.ErrorIs(t, err, failover.ErrClosed, "Leader after Close")
	if obs, ok := es[0].(failover.Observer); ok {
		_, err = obs.Observe(ctx)
		require.ErrorIs(t, err, failover.ErrClosed, "Observe after Close")
	}

	// A Campaign waiting while another leads returns at Close.
	c, ok := es[2].(io.Closer)
	require.True(t, ok, "the candidates of one factory differ: the first has Close, the third not")
	waiting := b.campaign(es[2])
	time.Sleep(2 * cfg.RetryInterval)
	start := time.Now()
	require.NoError(t, c.Close())
	select {
	case r := <-waiting:
		require.ErrorIs(t, r.err, failover.ErrClosed, "a Campaign waiting when its Elector closed")
		require.LessOrEqual(t, r.at.Sub(start), k.slack, "Campaign returned late after Close")
	case <-time.After(cfg.Lease + k.slack):
		require.FailNow(t, "a Campaign waiting did not return at Close")
	}
	require.NoError(t, r.term.Err(), "another candidate's Close ended the leader's Term")
}

// closedNow reports whether ch is closed, without waiting: the values it
// still holds are read first.
func closedNow(ch <-chan failover.Leader) bool {
	for range 16 {
		select {
		case _, open := <-ch:
			if !open {
				return true
			}
		default:
			return false
		}
	}
	return false // it keeps sending
}
