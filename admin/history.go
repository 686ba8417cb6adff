package admin

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// history keeps the points of the charts and of the rates the panels show,
// one ring per series, and the running totals the rates are computed from.
// It is guarded by Handler.mu.
type history struct {
	n      int
	rings  map[string]*ring
	totals map[string]float64 // running totals at the last sample, by key
	next   map[string]float64 // totals of the sample being recorded
	// sources are the queue stores and Meters the last sample read, by
	// kind and name.
	sources map[string]bool
	last    time.Time // of the last sample; zero before the first
}

func newHistory(n int) history {
	return history{n: n, rings: make(map[string]*ring), totals: make(map[string]float64), next: make(map[string]float64), sources: make(map[string]bool)}
}

// ring is one series: up to n points, oldest first.
type ring struct {
	t      []int64 // Unix milliseconds
	v      []float64
	seenAt time.Time // of the sample that last added a point
}

// add appends a point of series key at t, dropping the oldest beyond n.
// NaN is a gap (nothing to divide by: no gets, no jobs handled).
func (hs *history) add(key string, t time.Time, v float64) {
	r := hs.rings[key]
	if r == nil {
		r = &ring{}
		hs.rings[key] = r
	}
	r.t = append(r.t, t.UnixMilli())
	r.v = append(r.v, v)
	if len(r.t) > hs.n {
		r.t = append(r.t[:0], r.t[len(r.t)-hs.n:]...)
		r.v = append(r.v[:0], r.v[len(r.v)-hs.n:]...)
	}
	r.seenAt = t
}

// delta returns how much the running total of key grew since the last
// sample, and records total. A total first seen counts from 0 when its
// source was sampled before (a queue, backend or node that appeared since
// had nothing then); ok is false otherwise on the first sample of key,
// and when the total went back (a source replaced or restarted).
func (hs *history) delta(key string, total float64, sourceSeen bool) (d float64, ok bool) {
	prev, seen := hs.totals[key]
	hs.next[key] = total
	if !seen && sourceSeen {
		prev, seen = 0, true
	}
	if !seen || total < prev {
		return 0, false
	}
	return total - prev, true
}

// forget drops the series no sample has added to since before cutoff: a
// queue, backend or node that went away.
func (hs *history) forget(cutoff time.Time) {
	for k, r := range hs.rings {
		if r.seenAt.Before(cutoff) {
			delete(hs.rings, k)
		}
	}
}

// lastValue returns the latest point of key, NaN when it has none.
func (hs *history) lastValue(key string) float64 {
	r := hs.rings[key]
	if r == nil || len(r.v) == 0 {
		return math.NaN()
	}
	return r.v[len(r.v)-1]
}

// line returns a copy of series key for a chart.
func (hs *history) line(label, key string) line {
	l := line{Label: label}
	if r := hs.rings[key]; r != nil {
		l.T = append([]int64(nil), r.t...)
		l.V = make([]number, len(r.v))
		for i, v := range r.v {
			l.V[i] = number(v)
		}
	}
	return l
}

// number is a figure in JSON: null when NaN or infinite (unknown, or
// nothing to divide by), which JSON cannot carry.
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', 6, 64), nil
}

func (n *number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = number(math.NaN())
		return nil
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*n = number(f)
	return err
}
