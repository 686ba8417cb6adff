package redisqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/internal/redisha"
	"github.com/scaleout/scaleout/queue"
)

// DefaultWaitTimeout is the WaitTimeout of a Config that asks for
// WaitReplicas and sets none.
const DefaultWaitTimeout = time.Second

// ErrNotReplicated: with Config.WaitReplicas, a write was applied on the
// master but fewer replicas than asked confirmed it within WaitTimeout. The
// write is on the master and may or may not survive a failover. The errors
// of the Queue that carry it are a *NotReplicatedError.
var ErrNotReplicated = redisha.ErrNotReplicated

// NotReplicatedError is the error of a write that fewer than
// Config.WaitReplicas replicas confirmed within Config.WaitTimeout. It
// wraps ErrNotReplicated.
type NotReplicatedError struct {
	Acked   int           // replicas that confirmed the write in time
	Want    int           // Config.WaitReplicas
	Timeout time.Duration // Config.WaitTimeout
}

func (e *NotReplicatedError) Error() string {
	return fmt.Sprintf("%d of %d replicas confirmed the write within %v (it is on the master, and may or may not survive a failover)",
		e.Acked, e.Want, e.Timeout)
}

// Unwrap returns ErrNotReplicated.
func (e *NotReplicatedError) Unwrap() error { return ErrNotReplicated }

// checkWait validates WaitReplicas and WaitTimeout and fills in the default.
func (cfg *Config) checkWait(c redis.UniversalClient) error {
	t, err := redisha.CheckWaitConfig(c, cfg.WaitReplicas, cfg.WaitTimeout, DefaultWaitTimeout)
	if err != nil {
		return fmt.Errorf("%w: redisqueue: %w", queue.ErrInvalidConfig, err)
	}
	cfg.WaitTimeout = t
	return nil
}

// run runs a script that changes the queue: tried again through the
// transient errors of a master switch while ctx allows (redisha.Retry:
// every such script is safe to run twice, see scripts.go), and with
// Config.WaitReplicas followed by a WAIT on the same connection. It
// returns the script's reply, and with it an error wrapping a
// *NotReplicatedError when the replicas did not confirm.
func (q *Queue) run(ctx context.Context, s *redis.Script, keys []string, args ...any) (any, error) {
	return q.runWith(ctx, q.replicas, s, keys, args...)
}

// runWith is run with replicas in place of Config.WaitReplicas.
func (q *Queue) runWith(ctx context.Context, replicas int, s *redis.Script, keys []string, args ...any) (any, error) {
	var notReplicated error
	v, err := redisha.Value(ctx, q.rdb, func(ctx context.Context) (any, error) {
		v, err := redisha.DurableScript(ctx, q.rdb, s, keys, replicas, q.waitTimeout, args...)
		var nr *redisha.NotReplicatedError
		if errors.As(err, &nr) {
			notReplicated = &NotReplicatedError{Acked: nr.Acked, Want: nr.Want, Timeout: nr.Timeout}
			return v, nil
		}
		notReplicated = nil
		return v, err
	})
	if err != nil {
		return nil, err
	}
	return v, notReplicated
}

// notReplicated reports whether err is only the replicas' silence: the
// script ran and its reply is good.
func notReplicated(err error) bool {
	var nr *NotReplicatedError
	return errors.As(err, &nr)
}
