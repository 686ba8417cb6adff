package pgqueue

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/scaleout/scaleout/queue"
)

// A listener holds one connection that LISTENs on the Queue's two
// channels and wakes this process's blocked Dequeue and Wait calls:
// <prefix>ready carries a queue's name when a job of it may have become
// leasable, <prefix>ended the ID of an awaited job that ended. It
// reconnects after a failure, and wakes every caller when it is listening
// again, as notifications sent meanwhile are lost.
type listener struct {
	q  *Queue
	wg sync.WaitGroup

	// up is closed once the listener first listens (or found it cannot):
	// a caller that waits for it misses no notification sent after.
	up     chan struct{}
	upOnce sync.Once

	mu    sync.Mutex
	ready map[string]map[*waiter]struct{}
	ended map[queue.JobID]map[*waiter]struct{}
}

// A waiter is a blocked Dequeue or Wait call: ch holds a token when it
// should look at the database again.
type waiter struct{ ch chan struct{} }

func newWaiter() *waiter { return &waiter{ch: make(chan struct{}, 1)} }

func (w *waiter) wake() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// errNotPgx stops the listener on a driver other than pgx: callers poll.
var errNotPgx = errors.New("pgqueue: the DB's driver is not pgx: no notifications, polling")

// listener returns the Queue's listener, starting it on first use; nil
// once the Queue is closed.
func (q *Queue) listener() *listener {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	if q.lis == nil {
		l := &listener{q: q, up: make(chan struct{}), ready: map[string]map[*waiter]struct{}{}, ended: map[queue.JobID]map[*waiter]struct{}{}}
		q.lis = l
		l.wg.Go(l.run)
	}
	return q.lis
}

// awaitUp waits until the listener first listens, at most the poll
// interval (the database may be down: then the caller polls).
func (l *listener) awaitUp(ctx context.Context) {
	select {
	case <-l.up:
		return
	default:
	}
	t := time.NewTimer(l.q.poll)
	defer t.Stop()
	select {
	case <-l.up:
	case <-t.C:
	case <-ctx.Done():
	case <-l.q.closedCh:
	}
}

func (l *listener) addReady(queues []string) *waiter {
	w := newWaiter()
	l.mu.Lock()
	for _, qn := range queues {
		m := l.ready[qn]
		if m == nil {
			m = map[*waiter]struct{}{}
			l.ready[qn] = m
		}
		m[w] = struct{}{}
	}
	l.mu.Unlock()
	return w
}

func (l *listener) removeReady(queues []string, w *waiter) {
	l.mu.Lock()
	for _, qn := range queues {
		if m := l.ready[qn]; m != nil {
			delete(m, w)
			if len(m) == 0 {
				delete(l.ready, qn)
			}
		}
	}
	l.mu.Unlock()
}

func (l *listener) addEnded(id queue.JobID) *waiter {
	w := newWaiter()
	l.mu.Lock()
	m := l.ended[id]
	if m == nil {
		m = map[*waiter]struct{}{}
		l.ended[id] = m
	}
	m[w] = struct{}{}
	l.mu.Unlock()
	return w
}

func (l *listener) removeEnded(id queue.JobID, w *waiter) {
	l.mu.Lock()
	if m := l.ended[id]; m != nil {
		delete(m, w)
		if len(m) == 0 {
			delete(l.ended, id)
		}
	}
	l.mu.Unlock()
}

func (l *listener) wakeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.ready {
		for w := range m {
			w.wake()
		}
	}
	for _, m := range l.ended {
		for w := range m {
			w.wake()
		}
	}
}

func (l *listener) dispatch(n *pgconnNotification) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var m map[*waiter]struct{}
	switch n.Channel {
	case l.q.readyChan:
		m = l.ready[n.Payload]
	case l.q.endedChan:
		m = l.ended[queue.JobID(n.Payload)]
	}
	for w := range m {
		w.wake()
	}
}

// run listens until the Queue closes, reconnecting after a pause that
// doubles from 25 ms to the poll interval.
func (l *listener) run() {
	ctx := l.q.closeCtx
	pause := 25 * time.Millisecond
	for ctx.Err() == nil {
		heard, err := l.listenOnce(ctx)
		if errors.Is(err, errNotPgx) || ctx.Err() != nil {
			l.upOnce.Do(func() { close(l.up) })
			return
		}
		if heard {
			pause = 25 * time.Millisecond
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, l.q.poll)
	}
}

type pgconnNotification struct{ Channel, Payload string }

// listenOnce opens a connection, listens and dispatches until it fails;
// heard reports that it got as far as listening.
func (l *listener) listenOnce(ctx context.Context) (heard bool, err error) {
	conn, err := l.q.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return errNotPgx
		}
		pc := sc.Conn()
		for _, ch := range []string{l.q.readyChan, l.q.endedChan} {
			if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
				return driver.ErrBadConn
			}
		}
		heard = true
		l.upOnce.Do(func() { close(l.up) })
		// Whatever was notified before now was lost: look again.
		l.wakeAll()
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				// The connection listens: never give it back to the pool.
				return driver.ErrBadConn
			}
			l.dispatch(&pgconnNotification{Channel: n.Channel, Payload: n.Payload})
		}
	})
	return heard, err
}
