package redisha

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated: the write was applied on the master, but fewer replicas than
// asked confirmed it within the timeout. It is on the master and may not survive a
// failover.
var ErrNotReplicated = errors.New("fewer replicas than required confirmed the write")

// NotReplicatedError is the error Durable returns when fewer replicas than asked
// confirmed the write: it says how many did. It wraps ErrNotReplicated.
type NotReplicatedError struct {
	Acked   int           // replicas that confirmed the write in time
	Want    int           // replicas asked for
	Timeout time.Duration // how long WAIT waited
}

func (e *NotReplicatedError) Error() string {
	return fmt.Sprintf("%v: %d of %d within %v", ErrNotReplicated, e.Acked, e.Want, e.Timeout)
}

// Unwrap returns ErrNotReplicated.
func (e *NotReplicatedError) Unwrap() error { return ErrNotReplicated }

// ErrWaitUnsupported: Durable was given a client whose commands it cannot keep on
// one connection with the WAIT that follows them (a Ring, or a wrapper of the
// caller's).
var ErrWaitUnsupported = errors.New("waiting for replicas needs a *redis.Client (single server or Sentinel) or a *redis.ClusterClient")

// CheckWait returns an error wrapping ErrWaitUnsupported when replicas > 0 and c is
// neither a *redis.Client nor a *redis.ClusterClient; constructors call it to refuse
// a configuration that Durable could not honour.
func CheckWait(c redis.UniversalClient, replicas int) error {
	if replicas <= 0 {
		return nil
	}
	switch c.(type) {
	case *redis.Client, *redis.ClusterClient:
		return nil
	}
	return fmt.Errorf("%w, not a %T", ErrWaitUnsupported, c)
}

// CheckWaitConfig validates a primitive's WaitReplicas and WaitTimeout and
// returns the timeout to use: def when replicas > 0 and timeout is 0. It
// refuses a negative setting, a timeout without replicas, a timeout under
// WAIT's 1 ms resolution and a client Durable cannot wait on (CheckWait).
// Its errors name the field; the caller wraps them in its package's
// ErrInvalidConfig.
func CheckWaitConfig(c redis.UniversalClient, replicas int, timeout, def time.Duration) (time.Duration, error) {
	switch {
	case replicas < 0:
		return 0, fmt.Errorf("negative WaitReplicas %d", replicas)
	case timeout < 0:
		return 0, fmt.Errorf("negative WaitTimeout %v", timeout)
	case replicas == 0 && timeout != 0:
		return 0, fmt.Errorf("WaitTimeout %v without WaitReplicas", timeout)
	case replicas == 0:
		return 0, nil
	case timeout == 0:
		timeout = def
	}
	if timeout < time.Millisecond {
		return 0, fmt.Errorf("WaitTimeout %v under WAIT's 1 ms resolution", timeout)
	}
	if err := CheckWait(c, replicas); err != nil {
		return 0, fmt.Errorf("WaitReplicas: %w", err)
	}
	return timeout, nil
}

// node returns the client of the master serving key: c itself, or on a Cluster
// the node of key's slot.
func node(ctx context.Context, c redis.UniversalClient, key string) (*redis.Client, error) {
	switch c := c.(type) {
	case *redis.Client:
		return c, nil
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	}
	return nil, fmt.Errorf("%w, not a %T", ErrWaitUnsupported, c)
}

// Durable runs cmds, then WAIT replicas timeout, in one pipeline on the connection
// of key's master, and returns the commands' replies. With replicas <= 0 it runs
// cmds alone, as one pipeline on c. It fails with the first command's error, or
// with a *NotReplicatedError (wrapping ErrNotReplicated) when fewer than replicas
// replicas confirmed within timeout (the commands ran: their replies are returned with it).
// Every command of cmds must touch key's slot. ctx's deadline must leave room for
// timeout, or the call times out instead.
func Durable(ctx context.Context, c redis.UniversalClient, key string, replicas int, timeout time.Duration, cmds func(p redis.Pipeliner)) ([]redis.Cmder, error) {
	if replicas <= 0 {
		res, err := c.Pipelined(ctx, func(p redis.Pipeliner) error { cmds(p); return nil })
		return res, err
	}
	n, err := node(ctx, c, key)
	if err != nil {
		return nil, err
	}
	p := n.Pipeline()
	cmds(p)
	// WAIT's timeout is in milliseconds, and 0 would wait for ever.
	w := p.Do(ctx, "WAIT", replicas, max(timeout.Milliseconds(), 1))
	res, err := p.Exec(ctx)
	if cc, ok := c.(*redis.ClusterClient); ok && err != nil && reroute(err) {
		// The node's own client follows no redirection and tells the
		// ClusterClient nothing: reload the slot map for the next try.
		cc.ReloadState(ctx)
	}
	if err != nil {
		for _, r := range res {
			if r.Err() != nil && r != w {
				return res[:len(res)-1], r.Err()
			}
		}
		return res[:len(res)-1], err
	}
	if got, _ := w.Int64(); got < int64(replicas) {
		return res[:len(res)-1], &NotReplicatedError{Acked: int(got), Want: replicas, Timeout: timeout}
	}
	return res[:len(res)-1], nil
}

// DurableScript runs script on keys with args, then WAIT, as Durable does, and
// returns the script's reply. A server that does not know the script (after a
// restart or a failover to a replica that never ran it) is sent its body.
func DurableScript(ctx context.Context, c redis.UniversalClient, script *redis.Script, keys []string, replicas int, timeout time.Duration, args ...any) (any, error) {
	if replicas <= 0 {
		return script.Run(ctx, c, keys, args...).Result()
	}
	var cmd *redis.Cmd
	run := func(sha bool) error {
		_, err := Durable(ctx, c, keys[0], replicas, timeout, func(p redis.Pipeliner) {
			if sha {
				cmd = script.EvalSha(ctx, p, keys, args...)
			} else {
				cmd = script.Eval(ctx, p, keys, args...)
			}
		})
		return err
	}
	err := run(true)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		err = run(false)
	}
	if cmd == nil {
		return nil, err
	}
	if err != nil && !errors.Is(err, ErrNotReplicated) {
		return nil, err
	}
	v, cerr := cmd.Result()
	if cerr != nil {
		return nil, cerr
	}
	return v, err
}

// errReadReplica: a read meant for the master reached a replica.
var errReadReplica = errors.New("redisha: the node read is a replica, not the master")

// MasterRead runs the read commands cmds, then ROLE, in one pipeline on the
// connection of key's master, and fails with a Transient error when that node is
// not a master. A Sentinel client that dialled the old master after a failover (a
// sentinel that has not yet heard of the switch still names it) would otherwise
// read a demoted master: a replica, whose data may lag behind writes the new
// master's replicas confirmed. On a Cluster a replica answers MOVED instead; there
// MasterRead is one pipeline on the slot's master.
func MasterRead(ctx context.Context, c redis.UniversalClient, key string, cmds func(p redis.Pipeliner)) ([]redis.Cmder, error) {
	n, err := node(ctx, c, key)
	if err != nil {
		return nil, err
	}
	p := n.Pipeline()
	cmds(p)
	role := p.Do(ctx, "ROLE")
	res, err := p.Exec(ctx)
	if err != nil && !errors.Is(err, redis.Nil) {
		return res, err
	}
	r, rerr := role.Slice()
	if rerr != nil {
		return res, rerr
	}
	if len(r) == 0 || r[0] != "master" {
		return res, errReadReplica
	}
	return res[:len(res)-1], nil
}
