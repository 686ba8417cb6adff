package failover

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/scaleout/scaleout/observe"
)

// runMetrics are Run's instruments (see package observe) and logger.
type runMetrics struct {
	log                                *slog.Logger
	terms, leaderChanges, selfFencings observe.Counter
	token, leader                      observe.Gauge
}

func newRunMetrics(cfg RunConfig) *runMetrics {
	m := &runMetrics{
		log:           cfg.Logger,
		terms:         observe.NewCounter(cfg.Meter, observe.FailoverTerms),
		leaderChanges: observe.NewCounter(cfg.Meter, observe.FailoverLeaderChanges),
		selfFencings:  observe.NewCounter(cfg.Meter, observe.FailoverSelfFencing),
		token:         observe.NewGauge(cfg.Meter, observe.FailoverToken),
		leader:        observe.NewGauge(cfg.Meter, observe.FailoverLeader),
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.leader.Set(0)
	return m
}

// won counts and logs the start of t.
func (m *runMetrics) won(ctx context.Context, t *Term) {
	m.terms.Inc()
	m.token.Set(float64(t.Token))
	m.leader.Set(1)
	m.log.LogAttrs(ctx, slog.LevelInfo, "failover: leading", slog.String("id", t.ID), slog.Uint64("token", t.Token))
}

// ended counts and logs the end of t: a lease that ran out (self-fenced)
// or a term lost to another candidate is a warning, a resignation is not.
func (m *runMetrics) ended(ctx context.Context, t *Term) {
	m.leader.Set(0)
	err := t.Err()
	level := slog.LevelInfo
	if errors.Is(err, ErrLeaseExpired) {
		m.selfFencings.Inc()
		level = slog.LevelWarn
	} else if errors.Is(err, ErrLost) {
		level = slog.LevelWarn
	}
	m.log.LogAttrs(ctx, level, "failover: term ended", slog.String("id", t.ID), slog.Uint64("token", t.Token), slog.Any("err", err))
}

// observe counts the changes of leader e streams, when it is an Observer
// and a Meter is set, until ctx ends; wg tracks the goroutine.
func (m *runMetrics) observe(ctx context.Context, e Elector, wg *sync.WaitGroup) {
	o, ok := e.(Observer)
	if !ok || !m.leaderChanges.Enabled() {
		return
	}
	ch, err := o.Observe(ctx)
	if err != nil {
		return
	}
	wg.Go(func() {
		first, last := true, Leader{}
		for l := range ch {
			if !first && l != last {
				m.leaderChanges.Inc()
			}
			first, last = false, l
		}
	})
}
