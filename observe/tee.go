package observe

// Tee returns a Meter that reports every instrument to each of meters, in
// order: one Config.Meter then feeds both a metrics system and a page that
// shows the figures (package admin), or two systems at once. Nil meters
// are skipped; with none left Tee returns nil (metrics off, at the cost of
// a nil check), and with one, that Meter itself, so that a Tee costs
// nothing it does not need.
//
// The instruments of a Tee call each meter's instrument in turn and
// allocate nothing of their own: a hot path stays at zero allocations when
// every meter's instruments do.
func Tee(meters ...Meter) Meter {
	var ms []Meter
	for _, m := range meters {
		if m != nil {
			ms = append(ms, m)
		}
	}
	switch len(ms) {
	case 0:
		return nil
	case 1:
		return ms[0]
	}
	return tee(ms)
}

type tee []Meter

func (t tee) Counter(d Desc, labelValues ...string) Adder {
	as := make(teeAdder, len(t))
	for i, m := range t {
		as[i] = m.Counter(d, labelValues...)
	}
	return as
}

func (t tee) UpDownCounter(d Desc, labelValues ...string) Adder {
	as := make(teeAdder, len(t))
	for i, m := range t {
		as[i] = m.UpDownCounter(d, labelValues...)
	}
	return as
}

func (t tee) Gauge(d Desc, labelValues ...string) Setter {
	ss := make(teeSetter, len(t))
	for i, m := range t {
		ss[i] = m.Gauge(d, labelValues...)
	}
	return ss
}

func (t tee) Histogram(d Desc, labelValues ...string) Observer {
	os := make(teeObserver, len(t))
	for i, m := range t {
		os[i] = m.Histogram(d, labelValues...)
	}
	return os
}

type teeAdder []Adder

func (t teeAdder) Add(n int64) {
	for _, a := range t {
		a.Add(n)
	}
}

type teeSetter []Setter

func (t teeSetter) Set(v float64) {
	for _, s := range t {
		s.Set(v)
	}
}

type teeObserver []Observer

func (t teeObserver) Observe(v float64) {
	for _, o := range t {
		o.Observe(v)
	}
}
