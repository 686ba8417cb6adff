package objects

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/scaleout/scaleout/cache"
)

// Errors of a Runner.
var (
	// ErrBusy is Submit's answer when the queue is full: the rebuild was
	// not queued. Readers rebuild the object on demand once it is stale.
	ErrBusy = errors.New("objects: rebuild queue is full")
	// ErrClosed is the answer of a Pool's Submit after its Close, and of
	// an Objects' Get and Rebuild after its Close. It is cache.ErrClosed.
	ErrClosed = cache.ErrClosed
)

// A Runner hands the rebuild of a key to background workers: the local
// Pool, or a job queue whose workers, possibly in other processes, call
// Objects.Rebuild. Submit must not block for long: when it cannot queue
// the rebuild it returns an error (ErrBusy when a queue is full).
type Runner interface {
	Submit(ctx context.Context, key string) error
}

// A Pool is a Runner in this process: a bounded queue of keys and a fixed
// number of worker goroutines that call run on each. A key already queued
// and not yet started is queued only once; a key whose rebuild is running
// may be queued again, so a change made during a rebuild is rebuilt after
// it. Delivery is best effort: queued keys are lost when the process ends
// or the Pool is closed.
type Pool struct {
	run    func(ctx context.Context, key string)
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	queue  chan string
	queued map[string]struct{}
	closed bool
}

var _ Runner = (*Pool)(nil)

// PoolConfig configures NewPool. Zero values mean the defaults; negative
// values are an error wrapping cache.ErrInvalidConfig.
type PoolConfig struct {
	// Workers is the number of goroutines running rebuilds. Default
	// DefaultWorkers.
	Workers int
	// QueueLen bounds the keys waiting for a worker. Default
	// DefaultQueueLen.
	QueueLen int
}

// NewPool starts cfg.Workers goroutines that call run for each submitted
// key, with a queue of at most cfg.QueueLen keys waiting. run's context
// ends when the Pool is closed. A nil run, or a negative count, is an
// error wrapping cache.ErrInvalidConfig.
func NewPool(run func(ctx context.Context, key string), cfg PoolConfig) (*Pool, error) {
	if cfg.Workers < 0 || cfg.QueueLen < 0 {
		return nil, fmt.Errorf("objects: negative Workers or QueueLen in %+v: %w", cfg, cache.ErrInvalidConfig)
	}
	if run == nil {
		return nil, fmt.Errorf("objects: nil run function: %w", cache.ErrInvalidConfig)
	}
	workers, queueLen := cfg.Workers, cfg.QueueLen
	if workers == 0 {
		workers = DefaultWorkers
	}
	if queueLen == 0 {
		queueLen = DefaultQueueLen
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		run:    run,
		ctx:    ctx,
		cancel: cancel,
		queue:  make(chan string, queueLen),
		queued: make(map[string]struct{}),
	}
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p, nil
}

// Submit queues key, unless it is queued already. It never blocks: it
// returns ErrBusy when the queue is full, ErrClosed after Close, and
// ctx's error when ctx has ended. ctx bounds only the submission; the
// rebuild runs on the Pool's own context.
func (p *Pool) Submit(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if _, ok := p.queued[key]; ok {
		return nil
	}
	select {
	case p.queue <- key:
		p.queued[key] = struct{}{}
		return nil
	default:
		return ErrBusy
	}
}

// Len returns the number of keys waiting in the queue.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queued)
}

// Close stops accepting keys, drops those still queued, cancels the
// context of the rebuilds running and waits for them to return. No
// goroutine of the Pool outlives Close, and Submit returns ErrClosed
// after it. Close is idempotent: a second Close waits as the first.
func (p *Pool) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	return nil
}

func (p *Pool) work() {
	defer p.wg.Done()
	for key := range p.queue {
		p.mu.Lock()
		delete(p.queued, key)
		p.mu.Unlock()
		if p.ctx.Err() != nil {
			continue // closed: drain without running
		}
		p.run(p.ctx, key)
	}
}
