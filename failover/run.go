package failover

import (
	"context"
	"time"
)

// runPause is how long Run waits before campaigning again after its fn
// returned while the term lasted, when the Elector does not tell its
// RetryInterval (see Run).
const runPause = DefaultLease / 8

// resignTimeout bounds the Resign that Run sends when ctx has ended.
const resignTimeout = 5 * time.Second

// Run keeps e's candidate campaigning and runs fn for each of its terms,
// until ctx ends; then it resigns and returns ctx.Err(). It returns
// earlier only when Campaign fails with another error than ctx's (such as
// ErrClosed): Campaign retries passing failures itself.
//
// fn's ctx is cancelled when the term ends, with the term's Err as its
// cause (context.Cause: ErrLeaseExpired, ErrLost, ErrResigned), or when
// Run's ctx ends; fn must stop acting as leader then, and should pass
// t.Token to the resources it writes, which should reject stale tokens.
//
// When fn returns, with nil or an error, while its term lasts, Run
// resigns, so that another candidate can take over at once, and
// campaigns again after the Elector's RetryInterval (when it has a
// Config() Config method, as Memory does; else DefaultLease/8). fn's error
// is not returned: Run's job is to keep some candidate leading. Run waits
// for fn to return; no goroutine it starts outlives it.
func Run(ctx context.Context, e Elector, fn func(ctx context.Context, t *Term) error) error {
	pause := runPause
	if c, ok := e.(interface{ Config() Config }); ok {
		pause = c.Config().RetryInterval
	}
	timer := time.NewTimer(pause)
	timer.Stop()
	defer timer.Stop()
	for {
		t, err := e.Campaign(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		_ = runTerm(ctx, t, fn)
		endedEarly := t.Err() == nil
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resignTimeout)
		_ = e.Resign(rctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if endedEarly {
			timer.Reset(pause)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
	}
}

// runTerm runs fn with a context that ends with t.
func runTerm(ctx context.Context, t *Term, fn func(ctx context.Context, t *Term) error) error {
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		select {
		case <-t.Done():
			cancel(t.Err())
		case <-fctx.Done():
		}
	}()
	defer func() { cancel(nil); <-watching }()
	return fn(fctx, t)
}
