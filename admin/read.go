package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue"
)

// A reading is what the registered sources said at one moment: what a
// sample records and what the panels show.
type reading struct {
	at        time.Time
	stores    []string // the queue stores that listed their queues
	queues    []queueReading
	elections []electionReading
	meters    []meterReading
	problems  []string
}

type queueReading struct {
	store  string
	counts queue.QueueCounts
	dead   []queue.JobInfo // the latest dead letters, when asked for
}

type electionReading struct {
	src    *electionSource
	leader failover.Leader
	err    error
}

// meterReading is one Meter's series, by metric name.
type meterReading struct {
	name   string
	series map[string][]observe.Series
}

// deadShown is how many dead letters a queue's panel lists, the latest.
const deadShown = queue.DefaultPageSize

// read asks every registered source for its figures; withDead lists the
// latest dead letters too. A source that fails is a problem on the page,
// not an error: the others still show.
func (h *Handler) read(ctx context.Context, withDead bool) reading {
	h.mu.Lock()
	meters := slices.Clone(h.meters)
	queues := slices.Clone(h.queues)
	elections := slices.Clone(h.elections)
	h.mu.Unlock()

	rd := reading{at: time.Now()}
	for _, s := range queues {
		names, err := s.in.Queues(ctx)
		if err != nil {
			rd.problems = append(rd.problems, fmt.Sprintf("queues %s: %v", s.name, err))
			continue
		}
		rd.stores = append(rd.stores, s.name)
		for _, q := range names {
			c, err := s.in.Counts(ctx, q)
			if err != nil {
				rd.problems = append(rd.problems, fmt.Sprintf("queue %s/%s: %v", s.name, q, err))
				continue
			}
			qr := queueReading{store: s.name, counts: c}
			if withDead && c.Dead > 0 {
				p, err := s.in.List(ctx, q, queue.StateDead, "", deadShown)
				if err != nil {
					rd.problems = append(rd.problems, fmt.Sprintf("dead letters of %s/%s: %v", s.name, q, err))
				}
				qr.dead = p.Jobs
			}
			rd.queues = append(rd.queues, qr)
		}
	}
	for _, s := range elections {
		l, err := s.e.Leader(ctx)
		if errors.Is(err, failover.ErrNoLeader) {
			l, err = failover.Leader{Vacant: true}, nil // a state to show, not a failure
		}
		rd.elections = append(rd.elections, electionReading{src: s, leader: l, err: err})
	}
	for _, m := range meters {
		mr := meterReading{name: m.name, series: make(map[string][]observe.Series)}
		for _, s := range m.rec.Series() {
			mr.series[s.Desc.Name] = append(mr.series[s.Desc.Name], s)
		}
		rd.meters = append(rd.meters, mr)
	}
	return rd
}

// meter returns the reading of the Meter named name, empty when none is.
func (rd *reading) meter(name string) meterReading {
	for _, m := range rd.meters {
		if m.name == name {
			return m
		}
	}
	return meterReading{name: name}
}

// has reports whether any metric of the package pkg was reported
// (scaleout.<pkg>.).
func (m meterReading) has(pkg string) bool {
	prefix := "scaleout." + pkg + "."
	for name := range m.series {
		if len(name) > len(prefix) && name[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

// sum returns the sum of the values and of the counts of the series of
// metric name whose labels match labels (name, value pairs); ok is false
// when there is none.
func (m meterReading) sum(name string, labels ...string) (value float64, count int64, ok bool) {
	for _, s := range m.series[name] {
		if matches(s, labels) {
			value += s.Value
			count += s.Count
			ok = true
		}
	}
	return value, count, ok
}

func matches(s observe.Series, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if s.Labels[labels[i]] != labels[i+1] {
			return false
		}
	}
	return true
}

// labelValues returns the distinct values of label among the series of the
// metrics names, sorted.
func (m meterReading) labelValues(label string, names ...string) []string {
	var vs []string
	for _, name := range names {
		for _, s := range m.series[name] {
			if v, ok := s.Labels[label]; ok && !slices.Contains(vs, v) {
				vs = append(vs, v)
			}
		}
	}
	slices.Sort(vs)
	return vs
}
