// Package perqueue binds a counter per job queue on first use, for the
// queue backends that count the jobs they enqueue (redisqueue, pgqueue):
// their queues are named by the jobs, not known when the backend is built.
package perqueue

import (
	"sync"

	"github.com/scaleout/scaleout/observe"
)

// Counters holds one counter of a metric per queue name. The zero value
// and a nil *Counters count nothing; with a Meter, Get costs one map
// lookup under a read lock once the queue's counter is bound, and
// allocates nothing.
type Counters struct {
	m observe.Meter
	d observe.Desc

	mu      sync.RWMutex
	byQueue map[string]observe.Counter
}

// New returns the counters of d (a counter with the one label queue) on
// m; nil when m is nil.
func New(m observe.Meter, d observe.Desc) *Counters {
	if m == nil {
		return nil
	}
	return &Counters{m: m, d: d, byQueue: map[string]observe.Counter{}}
}

// Get returns the counter of queue, binding it the first time.
func (c *Counters) Get(queue string) observe.Counter {
	if c == nil {
		return observe.Counter{}
	}
	c.mu.RLock()
	ctr, ok := c.byQueue[queue]
	c.mu.RUnlock()
	if ok {
		return ctr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctr, ok = c.byQueue[queue]; !ok {
		ctr = observe.NewCounter(c.m, c.d, queue)
		c.byQueue[queue] = ctr
	}
	return ctr
}
