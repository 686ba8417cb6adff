package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/scaleout/scaleout/observe"
)

// resignTimeout bounds the Resign that Run sends when ctx has ended.
const resignTimeout = 5 * time.Second

// RunConfig configures Run. Its zero value is ready to use.
type RunConfig struct {
	// RetryInterval is how long Run waits, after fn returned while its
	// term lasted, before campaigning again, so that another candidate
	// can take over; default DefaultLease/8, the RetryInterval of a
	// Config with the default Lease. Set it to the Elector's
	// Config.RetryInterval when that Config sets another Lease. It must
	// not be negative.
	RetryInterval time.Duration
	// OnError, if set, is told each error fn returns, with the term fn
	// ran for, once Run has resigned that term. Errors that only say that
	// fn's ctx ended (its ctx.Err() or context.Cause(ctx), after the term
	// ended or Run's ctx did) are not reported: Run knows. OnError runs
	// on Run's goroutine, before Run campaigns again; to stop on an
	// error, cancel Run's ctx from it.
	OnError func(t *Term, err error)
	// Meter receives Run's metrics (see package observe): terms won, the
	// current token, whether this candidate leads, terms that ended by
	// self-fencing, and, on an Elector that is an Observer, changes of
	// leader; nil means none.
	Meter observe.Meter
	// Logger logs each term won (Info) and ended (Warn when lost or
	// self-fenced); nil means slog.Default().
	Logger *slog.Logger
}

// runningOn holds the Electors that a Run is running on: a second Run on
// one of them returns ErrAlreadyRunning. Two Runs on one candidate would
// both be handed its Term (Campaign while leading returns it) and run two
// fns as leader at once, and each would resign the other's term.
var runningOn sync.Map // Elector → struct{}

// Run keeps e's candidate campaigning and runs fn for each of its terms,
// until ctx ends; then it resigns and returns ctx.Err(). It returns
// earlier only when Campaign fails with another error than ctx's (such as
// ErrClosed): Campaign retries passing failures itself. It returns
// ErrAlreadyRunning at once while another Run runs on e (an Elector whose
// dynamic type is not comparable cannot be told apart, and is not
// guarded), and an error wrapping ErrInvalidConfig for a negative
// cfg.RetryInterval.
//
// fn's ctx is cancelled when the term ends, with the term's Err as its
// cause (context.Cause: ErrLeaseExpired, ErrLost, ErrResigned), or when
// Run's ctx ends; fn must stop acting as leader then, and should pass
// t.Token to the resources it writes, which should reject stale tokens.
//
// When fn returns, with nil or an error, while its term lasts, Run
// resigns, so that another candidate can take over at once, and
// campaigns again after cfg.RetryInterval. fn's error goes to
// cfg.OnError, not to Run's caller: Run's job is to keep some candidate
// leading. Run waits for fn to return; no goroutine it starts outlives
// it.
func Run(ctx context.Context, e Elector, cfg RunConfig, fn func(ctx context.Context, t *Term) error) error {
	if cfg.RetryInterval < 0 {
		return fmt.Errorf("%w: negative RunConfig.RetryInterval %v", ErrInvalidConfig, cfg.RetryInterval)
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = DefaultLease / 8
	}
	if v := reflect.ValueOf(e); v.IsValid() && v.Comparable() {
		if _, running := runningOn.LoadOrStore(e, struct{}{}); running {
			return ErrAlreadyRunning
		}
		defer runningOn.Delete(e)
	}
	timer := time.NewTimer(cfg.RetryInterval)
	timer.Stop()
	defer timer.Stop()
	met := newRunMetrics(cfg)
	var observing sync.WaitGroup
	octx, stopObserving := context.WithCancel(ctx)
	defer observing.Wait()
	defer stopObserving()
	met.observe(octx, e, &observing)
	for {
		t, err := e.Campaign(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		met.won(ctx, t)
		fnErr := runTerm(ctx, t, fn)
		endedEarly := t.Err() == nil
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resignTimeout)
		_ = e.Resign(rctx)
		cancel()
		met.ended(ctx, t)
		if fnErr != nil && cfg.OnError != nil {
			cfg.OnError(t, fnErr)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if endedEarly {
			timer.Reset(cfg.RetryInterval)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
	}
}

// runTerm runs fn with a context that ends with t, and returns fn's error
// unless it only says that this context ended.
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
	err := fn(fctx, t)
	if ended := fctx.Err(); ended != nil && err != nil &&
		(errors.Is(err, ended) || errors.Is(err, context.Cause(fctx))) {
		err = nil
	}
	cancel(nil)
	<-watching
	return err
}
