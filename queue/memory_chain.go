package queue

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

var _ Chainer = (*Memory)(nil)

// AckThen implements Chainer: the ack and the enqueues happen under the
// Memory's lock, after every check has passed, so no caller ever sees one
// without the other. Next jobs may be in any queue.
func (m *Memory) AckThen(_ context.Context, d *Delivery, result []byte, next []Job) ([]JobID, error) {
	return m.ackThen(nil, d, result, next)
}

// AckThen implements Chainer for the deliveries of j.
func (j *mjob) AckThen(_ context.Context, d *Delivery, result []byte, next []Job) ([]JobID, error) {
	return j.m.ackThen(j, d, result, next)
}

func (m *Memory) ackThen(hint *mjob, d *Delivery, result []byte, next []Job) ([]JobID, error) {
	if len(next) == 0 {
		return nil, m.ack(hint, d, result)
	}
	jobs, ids, err := PrepareChain(next, m.maxPayload)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	j, err := m.current(hint, d, now)
	if err != nil {
		return nil, err
	}
	m.forget(now)
	if err := m.checkChain(j, jobs, ids, now); err != nil {
		return nil, err
	}
	m.done(j, result, now)
	for i := range jobs {
		// Cannot fail: checkChain found every job storable, under the
		// lock held since, and the ack only freed the acked job's key.
		if _, err := m.enqueueLocked(jobs[i], ids[i], now); err != nil {
			return ids[:i], fmt.Errorf("queue: memory: next job %d after its checks: %w", i, err)
		}
	}
	return ids, nil
}

// checkChain reports why one of jobs could not be enqueued after acked
// ends, as enqueueLocked would refuse it, without changing anything.
func (m *Memory) checkChain(acked *mjob, jobs []Job, ids []JobID, now time.Time) error {
	for i, j := range jobs {
		if old := m.jobs[ids[i]]; old != nil && !old.forgotten(now) {
			if old.job.Type == j.Type && bytes.Equal(old.job.Payload, j.Payload) {
				continue // the same job: not enqueued again, as a retry
			}
			return fmt.Errorf("next job %d: %w: job %s exists with another type or payload", i, ErrDuplicate, ids[i])
		}
		if j.UniqueKey == "" {
			continue
		}
		q := m.queues[j.Queue]
		if q == nil {
			continue
		}
		if u, ok := q.unique[j.UniqueKey]; ok && now.Before(u.until) && !(q == acked.q && u.id == acked.id) {
			return fmt.Errorf("next job %d: %w: unique key %q is held by %s", i, ErrDuplicate, j.UniqueKey, u.id)
		}
	}
	return nil
}
