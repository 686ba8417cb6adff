package chaos

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// stallTick is how often a StallMeter sets its timer.
const stallTick = 10 * time.Millisecond

// A StallMeter measures how late this process runs a timer, so that a
// checker can tell a promise about timers broken by the code from one
// broken by a machine that ran none of the process for a while: a
// goroutine woken by a timer at t runs no sooner than the meter's own
// timer set for about t, whichever code set it.
type StallMeter struct {
	h       *History
	mu      sync.Mutex
	samples []stallSample // in order of at
}

type stallSample struct {
	at   int64 // when the meter's goroutine woke, on h's clock
	late int64 // how long after its timer was due
}

// NewStallMeter returns a meter on h's clock; Run measures.
func NewStallMeter(h *History) *StallMeter { return &StallMeter{h: h} }

// Run sets a timer every stallTick and records how late it ran, until
// ctx ends.
func (m *StallMeter) Run(ctx context.Context) {
	t := time.NewTimer(stallTick)
	defer t.Stop()
	for due := m.h.Now() + int64(stallTick); ; due = m.h.Now() + int64(stallTick) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := m.h.Now()
		m.mu.Lock()
		m.samples = append(m.samples, stallSample{at: now, late: max(now-due, 0)})
		m.mu.Unlock()
		t.Reset(stallTick)
	}
}

// Stall returns how late the meter's timers ran that woke between from
// and to, at most.
func (m *StallMeter) Stall(from, to int64) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, _ := slices.BinarySearchFunc(m.samples, from, func(s stallSample, t int64) int { return cmp.Compare(s.at, t) })
	var worst int64
	for ; i < len(m.samples) && m.samples[i].at <= to; i++ {
		worst = max(worst, m.samples[i].late)
	}
	return time.Duration(worst)
}
