package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/internal/redisha"
	"github.com/scaleout/scaleout/session"
)

// DefaultWaitTimeout is the WaitTimeout of a Config that asks for WaitReplicas and
// sets none.
const DefaultWaitTimeout = time.Second

// ErrNotReplicated: with Config.WaitReplicas, the write was applied on the master
// but fewer replicas confirmed it within WaitTimeout; a failover may still lose it.
// Errors of the Store wrap it (errors.Is).
var ErrNotReplicated = redisha.ErrNotReplicated

// checkWait validates WaitReplicas and WaitTimeout and fills in the default.
func (cfg *Config) checkWait(c redis.UniversalClient) error {
	t, err := redisha.CheckWaitConfig(c, cfg.WaitReplicas, cfg.WaitTimeout, DefaultWaitTimeout)
	if err != nil {
		return fmt.Errorf("redisstore: %w: %w", err, session.ErrInvalidConfig)
	}
	cfg.WaitTimeout = t
	return nil
}

// script runs a write script, retried through a switch (redisha.Retry) and, with
// WaitReplicas, confirmed by that many replicas.
func (s *Store) script(ctx context.Context, sc *redis.Script, keys []string, args ...any) (int64, error) {
	return redisha.Value(ctx, s.c, func(ctx context.Context) (int64, error) {
		v, err := redisha.DurableScript(ctx, s.c, sc, keys, s.replicas, s.wait, args...)
		if err != nil {
			return 0, err
		}
		n, _ := v.(int64)
		return n, nil
	})
}

// write runs cmds on key's slot as script does.
func (s *Store) write(ctx context.Context, key string, cmds func(p redis.Pipeliner)) error {
	return redisha.Retry(ctx, s.c, func(ctx context.Context) error {
		_, err := redisha.Durable(ctx, s.c, key, s.replicas, s.wait, cmds)
		return err
	})
}

func (s *Store) del(ctx context.Context, key string) error {
	return s.write(ctx, key, func(p redis.Pipeliner) { p.Del(ctx, key) })
}

// delSessions deletes the sessions ids: one pipeline of single-key DELs (the
// sessions are in different slots, and a cluster client splits the pipeline by
// node), or with WaitReplicas one durable DEL each, since each node's WAIT must
// follow its own writes on its own connection.
func (s *Store) delSessions(ctx context.Context, ids []string) error {
	if s.replicas > 0 {
		for _, id := range ids {
			if err := s.del(ctx, s.key(id)); err != nil {
				return err
			}
		}
		return nil
	}
	return redisha.Retry(ctx, s.c, func(ctx context.Context) error {
		_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, id := range ids {
				p.Del(ctx, s.key(id))
			}
			return nil
		})
		return err
	})
}
