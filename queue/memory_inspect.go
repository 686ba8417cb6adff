package queue

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Queues implements Inspector: the queues this Memory has seen, which it
// never forgets.
func (m *Memory) Queues(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	names := make([]string, 0, len(m.queues))
	for name := range m.queues {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// Counts implements Inspector.
func (m *Memory) Counts(_ context.Context, queue string) (QueueCounts, error) {
	if err := CheckQueue(queue); err != nil {
		return QueueCounts{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return QueueCounts{}, ErrClosed
	}
	c := QueueCounts{Queue: queue}
	q := m.queues[queue]
	if q == nil {
		return c, nil
	}
	now := time.Now()
	m.forget(now)
	m.tick(q, now)
	c.Ready, c.Scheduled, c.Active, c.Dead = q.nready, len(q.sched.s), q.active, q.ndead
	c.DoneTotal, c.CanceledTotal = q.doneTotal, q.canceledTotal
	c.Paused = q.paused
	for p := range q.ready {
		r := &q.ready[p]
		for r.len() > 0 && !r.front().live() {
			r.pop() // stale: the job moved on
		}
		if r.len() > 0 {
			c.OldestReady = max(c.OldestReady, now.Sub(r.front().j.readyAt))
		}
	}
	return c, nil
}

// List implements Inspector.
func (m *Memory) List(_ context.Context, queue string, state State, cursor string, limit int) (Page, error) {
	limit, err := CheckList(queue, state, limit)
	if err != nil {
		return Page{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Page{}, ErrClosed
	}
	q := m.queues[queue]
	if q != nil {
		now := time.Now()
		m.forget(now)
		m.tick(q, now)
	}
	if state == StateReady {
		return m.listReady(q, cursor, limit)
	}
	return m.listSorted(q, state, cursor, limit)
}

// listReady lists ready jobs in the order take leases them; its cursor
// is "r:<priority>:<readySeq>" of the last job listed.
func (m *Memory) listReady(q *mqueue, cursor string, limit int) (Page, error) {
	cp, cseq := 10, uint64(0)
	if cursor != "" {
		f := strings.Split(cursor, ":")
		var err1, err2 error
		if len(f) == 3 && f[0] == "r" {
			cp, err1 = strconv.Atoi(f[1])
			cseq, err2 = strconv.ParseUint(f[2], 10, 64)
		}
		if len(f) != 3 || f[0] != "r" || err1 != nil || err2 != nil || cp < 0 || cp > 9 {
			return Page{}, badCursor(cursor)
		}
	}
	var page Page
	if q == nil {
		return page, nil
	}
	var last *mjob
	for p := min(cp, 9); p >= 0; p-- {
		r := &q.ready[p]
		for i := 0; i < r.size; i++ {
			e := r.buf[(r.head+i)%len(r.buf)]
			if !e.live() || (p == cp && e.j.readySeq <= cseq) {
				continue
			}
			if len(page.Jobs) == limit {
				page.Next = fmt.Sprintf("r:%d:%d", last.job.Priority, last.readySeq)
				return page, nil
			}
			page.Jobs = append(page.Jobs, e.j.info())
			last = e.j
		}
	}
	return page, nil
}

// listSorted lists scheduled, active or dead jobs; its cursor is
// "z:<unix ns>:<name>" of the last job listed.
func (m *Memory) listSorted(q *mqueue, state State, cursor string, limit int) (Page, error) {
	var ct int64
	var cname string
	if cursor != "" {
		f := strings.SplitN(cursor, ":", 3)
		var err error
		if len(f) == 3 && f[0] == "z" {
			ct, err = strconv.ParseInt(f[1], 10, 64)
		}
		if len(f) != 3 || f[0] != "z" || err != nil || !validName(f[2]) {
			return Page{}, badCursor(cursor)
		}
		cname = f[2]
	}
	var page Page
	if q == nil {
		return page, nil
	}
	var jobs []*mjob
	var at func(*mjob) time.Time
	desc := false
	switch state {
	case StateScheduled:
		jobs, at = slices.Clone(q.sched.s), func(j *mjob) time.Time { return j.runAt }
	case StateActive:
		jobs, at = slices.Clone(q.leases.s), func(j *mjob) time.Time { return j.leaseUntil }
	case StateDead:
		for _, e := range q.dead {
			if e.live() {
				jobs = append(jobs, e.j)
			}
		}
		at, desc = func(j *mjob) time.Time { return j.endedAt }, true
	}
	key := func(j *mjob) (int64, string) { return at(j).UnixNano(), j.job.ID }
	order := func(t1 int64, n1 string, t2 int64, n2 string) int {
		c := cmp.Or(cmp.Compare(t1, t2), strings.Compare(n1, n2))
		if desc {
			c = -c
		}
		return c
	}
	slices.SortFunc(jobs, func(a, b *mjob) int {
		ta, na := key(a)
		tb, nb := key(b)
		return order(ta, na, tb, nb)
	})
	i := 0
	if cursor != "" {
		i, _ = slices.BinarySearchFunc(jobs, struct{}{}, func(j *mjob, _ struct{}) int {
			t, n := key(j)
			if order(t, n, ct, cname) <= 0 {
				return -1
			}
			return 1
		})
	}
	for ; i < len(jobs); i++ {
		if len(page.Jobs) == limit {
			t, n := key(jobs[i-1])
			page.Next = fmt.Sprintf("z:%d:%s", t, n)
			break
		}
		page.Jobs = append(page.Jobs, jobs[i].info())
	}
	return page, nil
}

// Pause implements Inspector.
func (m *Memory) Pause(_ context.Context, queue string) error {
	return m.setPaused(queue, true)
}

// Resume implements Inspector.
func (m *Memory) Resume(_ context.Context, queue string) error {
	return m.setPaused(queue, false)
}

func (m *Memory) setPaused(queue string, paused bool) error {
	if err := CheckQueue(queue); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	q := m.queue(queue)
	was := q.paused
	q.paused = paused
	if was && !paused {
		m.wakeAll()
	}
	return nil
}

// RequeueAll implements Inspector, all at once.
func (m *Memory) RequeueAll(_ context.Context, queue string) (int, error) {
	return m.allDead(queue, m.requeue)
}

// DeleteAllDead implements Inspector, all at once.
func (m *Memory) DeleteAllDead(_ context.Context, queue string) (int, error) {
	return m.allDead(queue, func(j *mjob, _ time.Time) { m.deleteDead(j) })
}

// allDead applies f to every dead job of queue, oldest death first.
func (m *Memory) allDead(queue string, f func(*mjob, time.Time)) (int, error) {
	if err := CheckQueue(queue); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	q := m.queues[queue]
	if q == nil {
		return 0, nil
	}
	now := time.Now()
	m.forget(now)
	var dead []*mjob
	for _, e := range q.dead {
		if e.live() {
			dead = append(dead, e.j)
		}
	}
	for _, j := range dead {
		f(j, now)
	}
	return len(dead), nil
}

// DeleteDead implements Inspector.
func (m *Memory) DeleteDead(_ context.Context, id JobID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, err := m.lookup(id, time.Now())
	if err != nil {
		return err
	}
	if j.state != StateDead {
		return fmt.Errorf("%w: %s is %s, not dead", ErrNotFound, id, j.state)
	}
	m.deleteDead(j)
	return nil
}

func (m *Memory) deleteDead(j *mjob) {
	delete(m.jobs, j.id)
	j.seq++ // its entries in the dead list and the ended ring go stale
	j.q.ndead--
	j.q.compactDead()
}
