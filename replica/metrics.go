package replica

import (
	"context"
	"log/slog"

	"github.com/scaleout/scaleout/observe"
)

// nodeMetrics are one node's instruments (see package observe), bound by
// New.
type nodeMetrics struct {
	lag, primary, serving observe.Gauge
	reads, writes         observe.Counter
}

func newNodeMetrics(m observe.Meter, name string) nodeMetrics {
	return nodeMetrics{
		lag:     observe.NewGauge(m, observe.ReplicaLag, name),
		primary: observe.NewGauge(m, observe.ReplicaPrimary, name),
		serving: observe.NewGauge(m, observe.ReplicaServing, name),
		reads:   observe.NewCounter(m, observe.ReplicaReads, name),
		writes:  observe.NewCounter(m, observe.ReplicaWrites, name),
	}
}

// routerMetrics are the Router's own instruments.
type routerMetrics struct {
	fallbacks, noPrimary observe.Counter
}

// noteViewLocked reports a new view: each node's role, serving state and
// lag, and a change of primary in the log.
func (r *Router) noteViewLocked(old, v *view) {
	for _, m := range r.nodes {
		_, primary := v.primaries[m.Name]
		_, serving := v.readers[m.Name]
		m.met.primary.SetBool(primary)
		m.met.serving.SetBool(serving)
		if m.probed && m.state.Role == RoleReplica {
			m.met.lag.Set(m.state.Lag.Seconds())
		}
	}
	if old == nil || old.primary == v.primary {
		return
	}
	switch {
	case v.primary == nil:
		r.log.LogAttrs(context.Background(), slog.LevelWarn, "replica: no primary: writes fail with ErrNoPrimary")
	case old.primary == nil:
		r.log.LogAttrs(context.Background(), slog.LevelInfo, "replica: primary", slog.String("node", v.primary.Name))
	default:
		r.log.LogAttrs(context.Background(), slog.LevelWarn, "replica: primary changed",
			slog.String("from", old.primary.Name), slog.String("to", v.primary.Name))
	}
}
