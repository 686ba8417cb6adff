package queue

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

var _ AckDequeuer = (*Memory)(nil)

// AckAndDequeue implements AckDequeuer: d's Ack and, under the same lock,
// the lease of the best ready job of d's queue that its Limits allow, or
// nil when there is none. When the Ack is refused nothing is leased.
func (m *Memory) AckAndDequeue(_ context.Context, d *Delivery, result []byte, lease time.Duration) (*Delivery, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("%w: AckAndDequeue needs a positive lease", ErrInvalidConfig)
	}
	var hint *mjob
	if d != nil {
		if j, ok := d.settler.(*mjob); ok && j.m == m {
			hint = j
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	j, err := m.ackLocked(hint, d, result, now)
	if err != nil {
		return nil, err
	}
	q := j.q
	m.tick(q, now)
	if q.nready == 0 {
		return nil, nil
	}
	if ok, _ := q.allowed(now); !ok {
		return nil, nil
	}
	return m.take(q, lease, now), nil
}

// ackLocked acks d, whose job is hint when not nil, and returns the job;
// m.mu is held.
func (m *Memory) ackLocked(hint *mjob, d *Delivery, result []byte, now time.Time) (*mjob, error) {
	j, err := m.current(hint, d, now)
	if err != nil {
		return nil, err
	}
	m.done(j, result, now)
	return j, nil
}

// done ends the active job j successfully with result; m.mu is held.
func (m *Memory) done(j *mjob, result []byte, now time.Time) {
	j.result = bytes.Clone(result)
	j.lastErr = ""
	m.end(j, StateDone, now)
}
