package pgqueue

import (
	"context"
	"sync"
	"sync/atomic"
)

// A notifier tells the blocked Dequeues of every process that Enqueue
// stored a ready job.
//
// PostgreSQL serializes the commits of transactions that sent a
// notification (each holds one database-wide lock through its commit), so
// Enqueues that each notify in their INSERT's statement commit one at a
// time: 16 goroutines enqueued fewer jobs a second than one. So one
// Enqueue at a time notifies in its statement (claim: alone, that costs
// no extra round trip); an Enqueue that finds the claim taken commits its
// INSERT alone and then pokes the notifier, which sends one NOTIFY per
// queue for every poke that came while its previous NOTIFY was in flight.
// Under load at most two notifying commits are in flight, however many
// Enqueues are.
//
// No wake-up is lost: a poked Enqueue has committed, and the notifier
// always sends a NOTIFY that starts after the last poke it heard. A NOTIFY
// that fails (the server restarted) leaves the waiters to their next
// look, PollInterval at most.
type notifier struct {
	q *Queue

	claimed atomic.Bool // an Enqueue's statement is notifying

	mu      sync.Mutex
	closed  bool
	running bool                // a goroutine is sending
	pending map[string]struct{} // queues poked since the last NOTIFY began
	wg      sync.WaitGroup      // the sending goroutine
}

// claim reports whether the caller may notify in its statement: no other
// Enqueue's statement is notifying. The caller then calls unclaim.
func (n *notifier) claim() bool { return n.claimed.CompareAndSwap(false, true) }

func (n *notifier) unclaim() { n.claimed.Store(false) }

// poke records that a job of queue qn became ready, and starts a sender
// unless one is running; after close it does nothing (the waiters poll).
func (n *notifier) poke(qn string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	if n.pending == nil {
		n.pending = map[string]struct{}{}
	}
	n.pending[qn] = struct{}{}
	if n.running {
		return
	}
	n.running = true
	n.wg.Go(n.run)
}

// run sends NOTIFYs until nothing is pending. Close lets it finish the
// pending ones, each bounded by the poll interval (after which every
// waiter has looked on its own anyway).
func (n *notifier) run() {
	for {
		n.mu.Lock()
		if len(n.pending) == 0 {
			n.running = false
			n.mu.Unlock()
			return
		}
		queues := make([]string, 0, len(n.pending))
		for qn := range n.pending {
			queues = append(queues, qn)
		}
		clear(n.pending)
		n.mu.Unlock()
		ctx, cancel := context.WithTimeout(n.q.ctx(context.Background()), n.q.poll)
		for _, qn := range queues {
			if _, err := n.q.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, n.q.readyChan, qn); err != nil {
				break // the database is away: the waiters poll
			}
		}
		cancel()
	}
}

// close makes later pokes send nothing and waits for the NOTIFYs pending.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	n.wg.Wait()
}
