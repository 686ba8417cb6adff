package grpcbalance

import (
	"errors"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/scaleout/scaleout/balance"
)

// picker asks the balance.Balancer for each RPC's backend and hands the
// RPC to that backend's pick_first child, whose SubConn is Ready.
type picker struct {
	lb       balance.Balancer
	children map[string]balancer.Picker // the Ready children by address
	cfg      *Config
}

// Pick implements balancer.Picker. The Choice's Done is called from the
// PickResult's Done, which gRPC calls once when the RPC ends (for a
// stream: when it is read to its end, fails or is cancelled).
func (p *picker) Pick(info balancer.PickInfo) (balancer.PickResult, error) {
	key := ""
	if p.cfg.KeyMetadata != "" {
		if v := metadata.ValueFromOutgoingContext(info.Ctx, p.cfg.KeyMetadata); len(v) > 0 {
			key = v[0]
		}
	}
	c, err := p.lb.Pick(info.Ctx, key)
	if err != nil {
		if ctxErr := info.Ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return balancer.PickResult{}, status.FromContextError(ctxErr).Err()
		}
		// Not a status: an RPC that waits for ready waits for the next
		// picker (a backend coming back), the others fail Unavailable.
		return balancer.PickResult{}, err
	}
	addr := c.Backend().Addr
	child := p.children[addr]
	if child == nil {
		// The balancer's set is newer than this picker (an update in
		// between): gRPC picks again with the picker that came with it.
		c.Done(errNotReady)
		return balancer.PickResult{}, balancer.ErrNoSubConnAvailable
	}
	res, err := child.Pick(info)
	if err != nil {
		c.Done(errNotReady) // nothing was sent: neither way
		return res, err
	}
	next := res.Done
	res.Done = func(di balancer.DoneInfo) {
		if p.cfg.Loads != nil && di.Trailer != nil {
			p.cfg.Loads.Record(addr, di.Trailer)
		}
		c.Done(outcome(di.Err, p.cfg.IsFailure))
		if next != nil {
			next(di)
		}
	}
	return res, nil
}
