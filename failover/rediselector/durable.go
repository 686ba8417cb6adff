package rediselector

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/internal/redisha"
)

// errNotConfirmed: the master applied the acquire or renewal, but fewer than
// WaitReplicas replicas confirmed it in WaitTimeout.
var errNotConfirmed = redisha.ErrNotReplicated

// checkWait validates WaitReplicas and WaitTimeout, after the failover.Config
// defaults are in, and fills in WaitTimeout's default (RenewInterval/2).
func (cfg *Config) checkWait(c redis.UniversalClient) error {
	t, err := redisha.CheckWaitConfig(c, cfg.WaitReplicas, cfg.WaitTimeout, cfg.RenewInterval/2)
	if err != nil {
		return fmt.Errorf("%w: %w", failover.ErrInvalidConfig, err)
	}
	if cfg.WaitReplicas > 0 && t >= cfg.RenewInterval {
		// A renewal is bounded by RenewInterval: a wait as long would leave
		// no time for the renewal itself.
		return fmt.Errorf("%w: WaitTimeout %v must be under RenewInterval %v", failover.ErrInvalidConfig, t, cfg.RenewInterval)
	}
	cfg.WaitTimeout = t
	return nil
}

// runAcquire runs the acquire script of attempt a, followed with WaitReplicas by a
// WAIT on the same connection; it returns the script's reply, and errNotConfirmed
// (with the reply) when the replicas did not confirm.
func (e *Elector) runAcquire(ctx context.Context, a *attempt) ([]any, error) {
	v, err := redisha.DurableScript(ctx, e.client, acquireScript, []string{e.leaseKey, e.tokenKey},
		e.config.WaitReplicas, e.config.WaitTimeout,
		e.cfg.ID, e.cfg.Lease.Milliseconds(), strconv.FormatUint(a.floor, 10), e.channel,
		strconv.FormatUint(a.own, 10))
	res, _ := v.([]any)
	if err != nil && !errors.Is(err, errNotConfirmed) {
		return nil, err
	}
	if v != nil && res == nil {
		return nil, fmt.Errorf("rediselector: acquire answered %v", v)
	}
	if errors.Is(err, errNotConfirmed) {
		if won, _ := res[0].(int64); won == 0 {
			return res, nil // nothing written: nothing to confirm
		}
	}
	return res, err
}

// runRenew runs one renewal, confirmed with WaitReplicas as runAcquire's acquire.
func (e *Elector) runRenew(ctx context.Context, keys []string, value string, ms int64) (int, error) {
	if e.config.WaitReplicas == 0 {
		return e.client.Eval(ctx, renewScript, keys, value, ms).Int()
	}
	var cmd *redis.Cmd
	_, err := redisha.Durable(ctx, e.client, keys[0], e.config.WaitReplicas, e.config.WaitTimeout, func(p redis.Pipeliner) {
		cmd = p.Eval(ctx, renewScript, keys, value, ms)
	})
	if err != nil {
		return 0, err
	}
	return cmd.Int()
}
