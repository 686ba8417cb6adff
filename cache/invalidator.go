package cache

import (
	"context"
	"sync"
)

// An Invalidator carries invalidations between the local tiers of Loaders
// in many processes: a Delete or Set in one process drops the key from the
// local tier of every other. rediscache.Invalidator does it over Redis
// pub/sub; LocalBus within one process.
type Invalidator interface {
	// Publish tells every subscriber, in every process, that keys changed.
	Publish(ctx context.Context, keys []string) error
	// Subscribe calls fn with each published batch of keys, and with nil
	// whenever invalidations may have been lost (the channel dropped, or
	// came back), after which the subscriber must drop every local copy.
	// fn must not block. The returned function ends the subscription.
	Subscribe(fn func(keys []string)) (unsubscribe func())
}

// LocalBus is an Invalidator within one process, for tests and for several
// Loaders sharing one remote cache in one program. The zero value is ready
// to use.
type LocalBus struct {
	mu   sync.Mutex
	next int
	subs map[int]func([]string)
}

var _ Invalidator = (*LocalBus)(nil)

// Publish calls every subscriber with keys, synchronously.
func (b *LocalBus) Publish(_ context.Context, keys []string) error {
	for _, fn := range b.snapshot() {
		fn(keys)
	}
	return nil
}

// Reset tells every subscriber that invalidations were lost, as a Redis
// Invalidator does when its connection drops.
func (b *LocalBus) Reset() {
	for _, fn := range b.snapshot() {
		fn(nil)
	}
}

// Subscribe registers fn until the returned function is called.
func (b *LocalBus) Subscribe(fn func([]string)) func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = make(map[int]func([]string))
	}
	id := b.next
	b.next++
	b.subs[id] = fn
	return func() {
		b.mu.Lock()
		delete(b.subs, id)
		b.mu.Unlock()
	}
}

func (b *LocalBus) snapshot() []func([]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fns := make([]func([]string), 0, len(b.subs))
	for _, fn := range b.subs {
		fns = append(fns, fn)
	}
	return fns
}
