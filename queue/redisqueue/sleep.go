package redisqueue

import (
	"context"
	"strings"
	"time"
)

// sleep waits for a wake of the lists wakes, for at most wait, as block
// does; but only one Dequeue of this Queue at a time blocks on Redis for
// a set of lists. The others wait in the process until that BLPOP returns
// (a wake, its timeout, its caller's ctx ending, an error) or their own
// wait is over, then all look for a job again, and one of those that
// found none blocks next.
//
// A BLPOP holds a pool connection for its whole wait: a Worker of
// Concurrency 16 blocking with every worker would hold 16 connections of
// the client's pool while idle, starving the client's other users (an
// Elector's renewals sharing the client waited for a connection until a
// BLPOP timed out, and lost their terms). A job made ready wakes every
// waiter, which costs a lease script each, instead of one: a small price
// on an idle queue.
func (q *Queue) sleep(ctx context.Context, wakes []string, wait time.Duration) error {
	key := strings.Join(wakes, "\x00")
	q.sleepMu.Lock()
	if woke, ok := q.sleeping[key]; ok {
		q.sleepMu.Unlock()
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-woke:
		case <-t.C:
		case <-ctx.Done():
		case <-q.closed:
		}
		return nil
	}
	woke := make(chan struct{})
	q.sleeping[key] = woke
	q.sleepMu.Unlock()
	defer func() {
		q.sleepMu.Lock()
		delete(q.sleeping, key)
		q.sleepMu.Unlock()
		close(woke)
	}()
	return q.block(ctx, wakes, wait)
}
