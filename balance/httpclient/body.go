package httpclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/scaleout/scaleout/balance"
)

// doneBody reports the Choice done when the response body ends: at its
// first EOF or read error, or at Close, whichever comes first, so that a
// caller that reads the body to its end but closes it late still frees
// the backend's in-flight count at once. The balancer learns of a body
// cut short as a failure, and of one the caller gave up on (its context
// cancelled) as nothing but the end of the request.
type doneBody struct {
	rc       io.ReadCloser
	t        *Transport
	c        balance.Choice
	ctx      context.Context // the request's
	fail     error           // the response was a failure
	cancel   context.CancelFunc
	finished atomic.Bool // Done called; Read and Close may race (Close aborts a Read)
}

func (b *doneBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		switch {
		case err == io.EOF:
			b.finish(b.fail)
		case b.fail != nil:
			b.finish(b.fail)
		case errors.Is(err, context.Canceled) && b.ctx.Err() != nil:
			b.finish(fmt.Errorf("%w: %w", balance.ErrAborted, err))
		default:
			b.finish(err)
		}
	}
	return n, err
}

// Close closes the body. A body closed before its end counts as the
// response did: a caller that stops reading once it has what it wants
// (a JSON decoder leaves the final newline) got its answer, and the
// backend's latency and success are what load-aware balancers and health
// checks must learn from.
func (b *doneBody) Close() error {
	err := b.rc.Close()
	b.finish(b.fail)
	return err
}

func (b *doneBody) finish(err error) {
	if !b.finished.CompareAndSwap(false, true) {
		return
	}
	b.t.done(&b.c, err)
	if b.cancel != nil {
		b.cancel()
	}
}
