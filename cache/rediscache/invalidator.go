package rediscache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/internal/redisha"
	"github.com/scaleout/scaleout/internal/redisopt"
)

// DefaultChannel is the pub/sub channel of an Invalidator whose channel
// is empty.
const DefaultChannel = "scaleout:cache:invalidate"

// pingEvery is how long the subscription may stay silent before the
// Invalidator pings, so that a connection that died without a word (a
// partition, a server that vanished) is found out within about twice this.
// A variable for tests.
var pingEvery = 5 * time.Second

// An Invalidator is a cache.Invalidator on Redis pub/sub: Publish is one
// PUBLISH, and one connection per Invalidator receives every process's
// invalidations, whatever the number of Loaders subscribed to it.
//
// Pub/sub delivers at most once: a message sent while a subscriber is
// disconnected is lost to it. The Invalidator therefore tells its
// subscribers to drop everything (a nil batch) whenever its connection
// fails and again when it is back; until then they cache nothing they
// could not be told about. go-redis reconnects and resubscribes on its
// own, so no restart is needed after Redis comes back.
//
// It works on a single Redis, Sentinel and a Cluster (where PUBLISH reaches
// every node). A process hears its own messages too, so several Loaders in
// one process may share an Invalidator.
type Invalidator struct {
	client  redis.UniversalClient
	channel string

	mu     sync.Mutex
	next   int
	subs   map[int]func([]string)
	closed bool

	// pubsub is replaced when its connection goes silent (see run);
	// psMu guards it and psClosed, so that Close closes the current one.
	psMu     sync.Mutex
	pubsub   *redis.PubSub
	psClosed bool
	cancel   context.CancelFunc
	done     chan struct{}
}

var _ cache.Invalidator = (*Invalidator)(nil)

// InvalidatorConfig configures NewInvalidator. The zero value is valid.
type InvalidatorConfig struct {
	// Channel is the pub/sub channel of the invalidations; every process
	// sharing a cache must use the same. Default DefaultChannel.
	Channel string
}

// NewInvalidator subscribes to cfg.Channel and returns once the
// subscription is confirmed or ctx ends. Close releases its connection;
// the client is never closed. Like New, it refuses a go-redis client
// without ContextTimeoutEnabled (cache.ErrInvalidConfig and
// redisopt.ErrContextTimeouts).
func NewInvalidator(ctx context.Context, client redis.UniversalClient, cfg InvalidatorConfig) (*Invalidator, error) {
	if client == nil {
		return nil, fmt.Errorf("rediscache: nil client: %w", cache.ErrInvalidConfig)
	}
	if err := redisopt.Check(client); err != nil {
		return nil, fmt.Errorf("rediscache: %w: %w", cache.ErrInvalidConfig, err)
	}
	channel := cfg.Channel
	if channel == "" {
		channel = DefaultChannel
	}
	inv := &Invalidator{client: client, channel: channel, subs: map[int]func([]string){}, done: make(chan struct{})}
	inv.pubsub = client.Subscribe(ctx, channel)
	if _, err := inv.pubsub.Receive(ctx); err != nil { // the subscribe confirmation
		_ = inv.pubsub.Close()
		return nil, fmt.Errorf("rediscache: subscribe %q: %w", channel, err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	inv.cancel = cancel
	go inv.run(runCtx)
	return inv, nil
}

// Publish sends keys to every subscriber, in every process.
func (inv *Invalidator) Publish(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	msg := encodeKeys(keys)
	if err := redisha.RetryWithin(ctx, inv.client, 0, func(ctx context.Context) error {
		return inv.client.Publish(ctx, inv.channel, msg).Err()
	}); err != nil {
		return fmt.Errorf("rediscache: publish invalidation: %w", err)
	}
	return nil
}

// Subscribe calls fn with every batch of keys published,
// and with nil when invalidations may have been lost. After Close it
// registers nothing: fn is never called.
func (inv *Invalidator) Subscribe(fn func([]string)) func() {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.closed {
		return func() {}
	}
	id := inv.next
	inv.next++
	inv.subs[id] = fn
	return func() {
		inv.mu.Lock()
		delete(inv.subs, id)
		inv.mu.Unlock()
	}
}

// Close ends the subscription and waits for its goroutine; it tells every
// subscriber, with a nil batch, that it will hear nothing more, so close
// the Loaders on an Invalidator before it. Close is idempotent: a second
// Close waits as the first, and returns nil. Publish keeps working after
// Close, since it needs only the client.
func (inv *Invalidator) Close() error {
	inv.mu.Lock()
	first := !inv.closed
	inv.closed = true
	inv.mu.Unlock()
	var err error
	if first {
		inv.cancel()
		inv.psMu.Lock()
		inv.psClosed = true
		ps := inv.pubsub
		inv.psMu.Unlock()
		err = ps.Close() // unblocks a receive in progress
	}
	<-inv.done
	if first {
		inv.fanOut(nil)
		inv.mu.Lock()
		clear(inv.subs)
		inv.mu.Unlock()
	}
	return err
}

func (inv *Invalidator) current() *redis.PubSub {
	inv.psMu.Lock()
	defer inv.psMu.Unlock()
	return inv.pubsub
}

// resubscribe replaces the subscription by a new one, on a new
// connection: go-redis reconnects a PubSub only after an error, and a
// connection that went silent gives none.
func (inv *Invalidator) resubscribe(ctx context.Context) {
	ps := inv.client.Subscribe(ctx, inv.channel)
	inv.psMu.Lock()
	if inv.psClosed {
		inv.psMu.Unlock()
		_ = ps.Close()
		return
	}
	old := inv.pubsub
	inv.pubsub = ps
	inv.psMu.Unlock()
	_ = old.Close()
}

func (inv *Invalidator) run(ctx context.Context) {
	defer close(inv.done)
	healthy := true
	pinged := false // a ping is out, and nothing has been heard since
	backoff := 10 * time.Millisecond
	for {
		ps := inv.current()
		msg, err := ps.ReceiveTimeout(ctx, pingEvery)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne interface{ Timeout() bool }
			silent := errors.As(err, &ne) && ne.Timeout()
			if silent && healthy && !pinged {
				// Silence: ask for a pong. If the next receive times out
				// too, the connection is dead: a write to a partitioned
				// or hung server succeeds, so only the missing pong says so.
				if perr := ps.Ping(ctx); perr == nil {
					pinged = true
					continue
				}
			}
			pinged = false
			if healthy {
				healthy = false
				inv.fanOut(nil)
			}
			if silent {
				inv.resubscribe(ctx)
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		pinged = false // anything heard proves the connection alive
		switch m := msg.(type) {
		case *redis.Subscription:
			// go-redis resubscribes after a reconnect: whatever was
			// published in between is lost, so drop everything again.
			healthy = true
			inv.fanOut(nil)
		case *redis.Message:
			healthy = true
			keys, ok := decodeKeys([]byte(m.Payload))
			if !ok {
				keys = nil // unreadable: assume the worst
			}
			inv.fanOut(keys)
		case *redis.Pong:
			healthy = true
		}
	}
}

func (inv *Invalidator) fanOut(keys []string) {
	inv.mu.Lock()
	fns := make([]func([]string), 0, len(inv.subs))
	for _, fn := range inv.subs {
		fns = append(fns, fn)
	}
	inv.mu.Unlock()
	for _, fn := range fns {
		fn(keys)
	}
}

// encodeKeys writes each key as a uvarint length and its bytes: keys are
// binary-safe, so no separator would do.
func encodeKeys(keys []string) []byte {
	n := 0
	for _, k := range keys {
		n += binary.MaxVarintLen64 + len(k)
	}
	b := make([]byte, 0, n)
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	return b
}

func decodeKeys(b []byte) (keys []string, ok bool) {
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return nil, false
		}
		keys = append(keys, string(b[w:w+int(n)]))
		b = b[w+int(n):]
	}
	return keys, len(keys) > 0
}
