package redisqueue

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/internal/redisha"
	"github.com/scaleout/scaleout/queue"
)

// subscriber is a Queue's one subscription to its channel of ended jobs,
// started by the first Wait and stopped by Close.
type subscriber struct {
	q *Queue

	mu      sync.Mutex
	started bool
	stopped bool
	ready   chan struct{} // closed once the first SUBSCRIBE is confirmed
	cancel  context.CancelFunc
	done    chan struct{} // closed when the goroutine has returned
	ps      *redis.PubSub
	waiters map[queue.JobID]map[chan struct{}]struct{}
	all     map[chan struct{}]struct{}
}

// start runs the goroutine once; it returns the channel closed when the
// subscription is up.
func (s *subscriber) start() (<-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, queue.ErrClosed
	}
	if !s.started {
		s.started = true
		s.ready = make(chan struct{})
		s.done = make(chan struct{})
		s.waiters = make(map[queue.JobID]map[chan struct{}]struct{})
		s.all = make(map[chan struct{}]struct{})
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		s.ps = s.q.rdb.Subscribe(ctx)
		go s.run(ctx, s.ps)
	}
	return s.ready, nil
}

func (s *subscriber) stop() {
	s.mu.Lock()
	s.stopped = true
	started := s.started
	if started {
		s.cancel()
		_ = s.ps.Close()
	}
	for c := range s.all {
		notify(c)
	}
	s.mu.Unlock()
	if started {
		<-s.done
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *subscriber) run(ctx context.Context, ps *redis.PubSub) {
	defer close(s.done)
	readyOnce := sync.OnceFunc(func() { close(s.ready) })
	subscribed := false
	for ctx.Err() == nil {
		if !subscribed {
			if err := ps.Subscribe(ctx, s.q.channel); err != nil {
				sleep(ctx, 100*time.Millisecond)
				continue
			}
			subscribed = true
		}
		msg, err := ps.ReceiveTimeout(ctx, 30*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			// A timeout: check the connection. Anything else: go-redis
			// reconnects and subscribes again on the next receive; the
			// confirmation below makes every waiter read its status.
			if err := ps.Ping(ctx); err != nil {
				sleep(ctx, 50*time.Millisecond)
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				readyOnce()
				s.mu.Lock()
				for c := range s.all {
					notify(c)
				}
				s.mu.Unlock()
			}
		case *redis.Message:
			s.mu.Lock()
			// canonical: a process may publish "<queue>/<name>".
			for c := range s.waiters[canonicalID(queue.JobID(m.Payload))] {
				notify(c)
			}
			s.mu.Unlock()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (s *subscriber) register(id queue.JobID) (chan struct{}, error) {
	c := make(chan struct{}, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, queue.ErrClosed
	}
	set := s.waiters[id]
	if set == nil {
		set = make(map[chan struct{}]struct{})
		s.waiters[id] = set
	}
	set[c] = struct{}{}
	s.all[c] = struct{}{}
	return c, nil
}

func (s *subscriber) unregister(id queue.JobID, c chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if set := s.waiters[id]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(s.waiters, id)
		}
	}
	delete(s.all, c)
}

// Wait implements queue.JobQueue.
func (q *Queue) Wait(ctx context.Context, id queue.JobID) (queue.JobInfo, error) {
	qn, name, err := queue.ParseID(id)
	if err != nil {
		return queue.JobInfo{}, err
	}
	id = queue.FormatID(qn, name) // the form the end is published in
	ready, err := q.sub.start()
	if err != nil {
		return queue.JobInfo{}, err
	}
	c, err := q.sub.register(id)
	if err != nil {
		return queue.JobInfo{}, err
	}
	defer q.sub.unregister(id, c)
	select {
	case <-ready:
	case <-ctx.Done():
		return queue.JobInfo{}, ctx.Err()
	case <-q.closed:
		return queue.JobInfo{}, queue.ErrClosed
	}
	k := q.keys(qn)
	pause := redisha.PauseMin
	for {
		info, leaseEnd, err := q.waitStatus(ctx, id, qn, k, name)
		if ctx.Err() != nil {
			return queue.JobInfo{}, ctx.Err()
		}
		if err != nil && redisha.Transient(err) {
			// A restart, a failover, a moved slot: the job is still where
			// it was; read again once Redis can answer.
			if perr := q.pause(ctx, pause); perr != nil {
				return queue.JobInfo{}, perr
			}
			pause = min(2*pause, redisha.PauseMax)
			continue
		}
		if err != nil {
			return queue.JobInfo{}, err
		}
		pause = redisha.PauseMin
		if info.State.Final() {
			return info, nil
		}
		// A lease that runs out ends the job's attempt even when no worker
		// dequeues from its queue: at the deadline, this waiter brings the
		// queue up to date itself.
		var expiry <-chan time.Time
		var timer *time.Timer
		if !leaseEnd.IsZero() {
			timer = time.NewTimer(max(time.Until(leaseEnd)+5*time.Millisecond, 20*time.Millisecond))
			expiry = timer.C
		}
		err = q.waitSignal(ctx, c, expiry, qn)
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			return queue.JobInfo{}, err
		}
	}
}

// waitSignal waits for the job's message, its lease deadline (then ticks
// its queue), ctx or Close.
func (q *Queue) waitSignal(ctx context.Context, c <-chan struct{}, expiry <-chan time.Time, qn string) error {
	select {
	case <-c:
	case <-expiry:
		// A transient failure is met again, and ridden out, by the next
		// read of the status.
		if err := q.tick(ctx, qn); err != nil && ctx.Err() == nil && !redisha.Transient(err) {
			return err
		}
	case <-ctx.Done():
	case <-q.closed:
		return queue.ErrClosed
	}
	return ctx.Err()
}

// waitStatus reads a job's status and, when it is active, its lease
// deadline, in one round trip.
func (q *Queue) waitStatus(ctx context.Context, id queue.JobID, qn string, k qkeys, name string) (queue.JobInfo, time.Time, error) {
	var h *redis.MapStringStringCmd
	var dl *redis.FloatCmd
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		h = p.HGetAll(ctx, k.job(name))
		dl = p.ZScore(ctx, k.active, name)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return queue.JobInfo{}, time.Time{}, wrap("wait", err)
	}
	info, err := parseInfo(id, qn, h.Val())
	if err != nil {
		return info, time.Time{}, err
	}
	var leaseEnd time.Time
	if info.State == queue.StateActive && dl.Err() == nil {
		leaseEnd = time.UnixMilli(int64(dl.Val()))
	}
	return info, leaseEnd, nil
}

// canonicalID returns id in the form queue.FormatID makes, or id itself
// when it is malformed.
func canonicalID(id queue.JobID) queue.JobID {
	if qn, name, err := queue.ParseID(id); err == nil {
		return queue.FormatID(qn, name)
	}
	return id
}
