package replica

import (
	"context"
	"fmt"
	"time"

	"github.com/scaleout/scaleout/failover"
)

// PromoteConfig configures AutoPromote.
type PromoteConfig struct {
	// Elector chooses the one process that may promote, so that two
	// application servers never promote two different replicas. Required.
	Elector failover.Elector
	// Promote turns node into a primary, for example with
	// node.DB.ExecContext(ctx, "SELECT pg_promote()"). It runs only while
	// term leads, and should stop the old primary first if it can (a
	// primary that is merely cut off from this process would otherwise
	// keep taking writes from clients that still reach it). Required.
	Promote func(ctx context.Context, node Node, term *failover.Term) error
	// After is how long the Router must have seen no primary before a
	// replica is promoted; default 3 × ProbeInterval, on top of the
	// FailAfter failed probes that take the primary out. A promotion
	// loses the writes the replica had not received: do not make it
	// shorter than a restart of the primary takes, if waiting is cheaper
	// than losing them.
	After time.Duration
	// OnError, if set, is told of each failed promotion attempt (which is
	// retried every ProbeInterval).
	OnError func(node Node, err error)
}

// AutoPromote promotes a replica when the primary is gone, until ctx
// ends; run it in a goroutine of every process that has the Router, and
// the Elector makes one of them act. The replica chosen is a healthy one
// that applied the most (highest State.Position), then the least lagging,
// then the first in New's order. After the hook succeeds, the Router
// probes at once, so writes go to the new primary within a round trip.
// It returns ctx's error, ErrClosed once the Router is closed (Close
// ends it), or an error wrapping ErrInvalidConfig.
func (r *Router) AutoPromote(ctx context.Context, cfg PromoteConfig) error {
	if cfg.Elector == nil || cfg.Promote == nil {
		return fmt.Errorf("%w: AutoPromote needs an Elector and a Promote hook", ErrInvalidConfig)
	}
	if r.cfg.Probe == nil {
		return fmt.Errorf("%w: AutoPromote needs a Probe to see the primary go", ErrInvalidConfig)
	}
	if cfg.After == 0 {
		cfg.After = 3 * r.cfg.ProbeInterval
	}
	if r.isClosed() {
		return ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.ctx, cancel)() // Close ends the campaign
	err := failover.Run(ctx, cfg.Elector, failover.RunConfig{}, func(ctx context.Context, t *failover.Term) error {
		return r.promoteWhileLeading(ctx, cfg, t)
	})
	if r.isClosed() {
		return ErrClosed
	}
	return err
}

func (r *Router) promoteWhileLeading(ctx context.Context, cfg PromoteConfig, t *failover.Term) error {
	tick := time.NewTicker(r.cfg.ProbeInterval)
	defer tick.Stop()
	var missingSince time.Time
	for {
		changed := r.Changed()
		if r.view.Load().primary != nil {
			missingSince = time.Time{}
		} else if missingSince.IsZero() {
			missingSince = time.Now()
		}
		if !missingSince.IsZero() && time.Since(missingSince) >= cfg.After {
			if n, ok := r.promotionCandidate(); ok {
				if err := cfg.Promote(ctx, n, t); err != nil {
					if cfg.OnError != nil {
						cfg.OnError(n, err)
					}
				} else {
					_ = r.Probe(ctx)
					missingSince = time.Time{}
				}
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-tick.C:
		}
	}
}

// promotionCandidate returns the healthy replica that applied the most.
// Detached replicas count: when the primary dies, every replica's stream
// stops.
func (r *Router) promotionCandidate() (Node, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *member
	for _, m := range r.nodes {
		if !m.healthy || m.state.Role != RoleReplica {
			continue
		}
		if best == nil || m.state.Position > best.state.Position ||
			m.state.Position == best.state.Position && m.state.Lag < best.state.Lag {
			best = m
		}
	}
	if best == nil {
		return Node{}, false
	}
	return best.Node, true
}
