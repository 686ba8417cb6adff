package redisha

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bounds of the pause between two tries: it doubles from the first to the last,
// each drawn between half and all of it so that clients that failed together do not
// come back together.
const (
	PauseMin = 25 * time.Millisecond
	PauseMax = time.Second
)

// DefaultBudget bounds the retries of a call whose context has no deadline. It
// outlasts a Sentinel failover with down-after-milliseconds of a few seconds, or a
// Cluster's with a node timeout of 15 s (Redis's default); a caller that waits
// longer for a switch gives its context a deadline.
const DefaultBudget = 30 * time.Second

// Retry calls op until it succeeds, fails with an error that is not Transient, or
// ctx ends, or, when ctx has no deadline, DefaultBudget has passed; it returns op's
// last error. A pause that would end after ctx's deadline is cut short, so that the
// last try happens before it. On a *redis.ClusterClient a connection error or a
// redirection reloads the slot map before the next try (see the package doc).
//
// op must be safe to run again after a Transient error: one that may have been
// applied before the connection broke (a lost reply) runs twice, as go-redis's own
// retries would run it.
func Retry(ctx context.Context, c redis.UniversalClient, op func(ctx context.Context) error) error {
	return RetryWithin(ctx, c, DefaultBudget, op)
}

// RetryWithin is Retry with budget in place of DefaultBudget; see ValueWithin.
func RetryWithin(ctx context.Context, c redis.UniversalClient, budget time.Duration, op func(ctx context.Context) error) error {
	_, err := ValueWithin(ctx, c, budget, func(ctx context.Context) (struct{}, error) { return struct{}{}, op(ctx) })
	return err
}

// Value is Retry for an operation that returns a value.
func Value[T any](ctx context.Context, c redis.UniversalClient, op func(ctx context.Context) (T, error)) (T, error) {
	return ValueWithin(ctx, c, DefaultBudget, op)
}

// ValueWithin is Value with budget in place of DefaultBudget for a context without
// deadline; a budget of 0 then makes one try, leaving retries to go-redis (a
// cache, which fails open to its data source, would rather answer than wait out
// a switch its caller set no deadline for).
func ValueWithin[T any](ctx context.Context, c redis.UniversalClient, budget time.Duration, op func(ctx context.Context) (T, error)) (T, error) {
	end, hasDeadline := ctx.Deadline()
	if !hasDeadline {
		end = time.Now().Add(budget)
	}
	pause := PauseMin
	var last error // the last Transient error, to name when ctx ends the next try
	for {
		v, err := op(ctx)
		if err != nil && last != nil && ctx.Err() != nil && !Transient(err) {
			return v, fmt.Errorf("%w; the try before: %w", err, last)
		}
		if err == nil || !Transient(err) || ctx.Err() != nil {
			return v, err
		}
		last = err
		left := time.Until(end)
		if left <= time.Millisecond {
			return v, err
		}
		wait := pause/2 + rand.N(pause/2+1)
		if wait > left/2 {
			wait = left / 2
		}
		if cc, ok := c.(*redis.ClusterClient); ok && reroute(err) {
			cc.ReloadState(ctx)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
		pause = min(2*pause, PauseMax)
	}
}

// reroute reports an error after which a ClusterClient's slot map may be stale.
func reroute(err error) bool {
	if _, ok := redis.IsMovedError(err); ok {
		return true
	}
	return connection(err) || redis.IsClusterDownError(err) || redis.IsReadOnlyError(err) ||
		strings.Contains(err.Error(), "cannot be used with replica instances")
}
