package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/scaleout/scaleout/balance"
)

// maxRepicks bounds the picks one retry makes while the balancer keeps
// returning backends this request already tried.
const maxRepicks = 8

// transport is the Proxy seen as the ReverseProxy's RoundTripper: it picks
// a backend for each attempt, sends the request through the shared
// http.Transport, retries connection failures, and arranges for
// Choice.Done to be called once per Choice.
type transport Proxy

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := (*Proxy)(t)
	ctx := req.Context()
	st := stateOf(ctx)
	retryable := p.retries > 0 && canRetry(req)
	// A streamed body (the client's, not replayable) is held back from
	// the transport's Close, so that a request whose connection was
	// refused, and so never sent, can go to another backend with it.
	var held *heldBody
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		held = &heldBody{rc: req.Body}
	}

	var (
		tried   []string // addresses tried, when retrying
		lastErr error
	)
	for attempt := 0; ; attempt++ {
		var body io.ReadCloser // a fresh copy of the body, for a retry
		if held != nil {
			body = held
		} else if attempt > 0 && req.Body != nil && req.Body != http.NoBody {
			var err error
			if body, err = req.GetBody(); err != nil {
				return nil, lastErr
			}
		}
		var (
			c      balance.Choice
			pinned *stickyEntry
		)
		if attempt == 0 && st.pin != nil {
			// A sticky request goes to its backend (see the package doc):
			// through PickAddr when the balancer has it, so the request
			// counts like any other and a backend no longer in the set
			// re-picks; otherwise around the balancer, untracked.
			if p.pinner == nil {
				pinned, c = st.pin, balance.NewChoice(st.pin.b)
			} else if pc, err := p.pinner.PickAddr(ctx, st.pin.b.Addr); err == nil {
				pinned, c = st.pin, pc
			}
		}
		if pinned == nil {
			var err error
			c, err = p.pick(ctx, req, tried, lastErr)
			if err != nil {
				if body != nil && body != held {
					body.Close()
				}
				if lastErr != nil {
					return nil, lastErr
				}
				return nil, err
			}
		}

		out := attemptRequest(req, c.Backend().Addr)
		if body != nil {
			out.Body = body
		}
		var start time.Time
		if p.metrics != nil {
			start = time.Now()
		}
		resp, err := p.tr.RoundTrip(out)
		if err == nil {
			p.metrics.upstreamSince(c.Backend().Addr, start)
			p.metrics.answered(resp.StatusCode)
			return p.respond(st, &c, pinned, resp), nil
		}

		// No response. The client's fault (it went away, or its body broke
		// off) says nothing about the backend: it counts neither way, and
		// the client is not retried elsewhere.
		if held != nil && held.broken.Load() {
			err = fmt.Errorf("%w: %w", errClientBody, err)
		}
		if clientFault(ctx, err) {
			p.done(&c, fmt.Errorf("%w: %w", balance.ErrAborted, err))
			return nil, err
		}
		// Otherwise the backend is not known to be good any more for
		// stickiness, and the balancer learns of the failure.
		if p.sticky != nil {
			p.sticky.failed(c.Backend().Addr)
		}
		switch {
		case p.isFailure(nil, err):
			p.done(&c, err)
		default:
			p.done(&c, nil)
		}
		// Idempotent requests are retried on any connection failure; any
		// request whose connection was refused, never having been sent,
		// as long as its body is intact.
		unsent := isDialFailure(err) && (held == nil || !held.read)
		if attempt >= p.retries || ctx.Err() != nil || !(retryable && isConnFailure(err) || unsent && p.retries > 0) {
			return nil, err
		}
		tried = append(tried, c.Backend().Addr)
		lastErr = err
		p.metrics.retried()
	}
}

// pick asks the balancer for a backend this request has not tried yet.
// A pick of a tried backend is reported with the failure lastErr just
// seen on it.
func (p *Proxy) pick(ctx context.Context, req *http.Request, tried []string, lastErr error) (balance.Choice, error) {
	key := ""
	if p.key != nil {
		key = p.key(req)
	}
	for i := 0; ; i++ {
		c, err := p.lb.Pick(ctx, key)
		if err != nil {
			return c, err
		}
		if !contains(tried, c.Backend().Addr) {
			return c, nil
		}
		p.done(&c, lastErr)
		if i+1 >= maxRepicks {
			return balance.Choice{}, lastErr
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// attemptRequest returns a shallow copy of req addressed to addr.
func attemptRequest(req *http.Request, addr string) *http.Request {
	out := new(http.Request)
	*out = *req
	u := *req.URL
	u.Host = addr
	out.URL = &u
	return out
}

// respond finishes a successful round trip: the sticky cookie, and the
// Done call, deferred until the body is consumed.
func (p *Proxy) respond(st *reqState, c *balance.Choice, pinned *stickyEntry, resp *http.Response) *http.Response {
	// A LoadReporter's in-band load is for proxies, not for the world.
	resp.Header.Del(balance.LoadHeader)
	var fail error
	if p.isFailure(resp, nil) {
		fail = fmt.Errorf("%w: %d", ErrBackendStatus, resp.StatusCode)
	}
	if p.sticky != nil && pinned == nil {
		// Picked by the balancer: (re)learn the backend and, unless the
		// client's cookie already names it, pin the client to it.
		e := p.sticky.learn(c.Backend())
		if st.pin != e {
			resp.Header.Add("Set-Cookie", e.setCookie(st.tls || p.secure))
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil {
		p.done(c, fail)
		return resp
	}
	resp.Body = &doneBody{rc: resp.Body, p: p, c: *c, fail: fail}
	return resp
}

// done calls c.Done(err), and the test hook.
func (p *Proxy) done(c *balance.Choice, err error) {
	c.Done(err)
	if p.onDone != nil {
		p.onDone(c.Backend(), err)
	}
}

// canRetry reports whether req may be sent again: idempotent, and with a
// body that can be replayed.
func canRetry(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	// The http.Transport convention: the header's presence, even empty,
	// marks the request idempotent.
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := req.Header["X-Idempotency-Key"]
	return ok
}

// isDialFailure reports a connection that was never established, so the
// backend received nothing of the request.
func isDialFailure(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// errClientBody marks a failed exchange whose client's request body broke
// off (a short body, a client that hung up, a body over the server's
// limit): the client's fault, not the backend's.
var errClientBody = errors.New("httpproxy: reading the client's request body failed")

// clientFault reports whether err, ending an exchange of a request with
// context ctx, is the client's doing: its body broke off, or it went away
// (which cancels ctx; Config.Timeout ends it with DeadlineExceeded
// instead).
func clientFault(ctx context.Context, err error) bool {
	return errors.Is(err, errClientBody) || errors.Is(err, context.Canceled) && ctx.Err() != nil
}

// heldBody is a client's request body lent to one attempt at a time: the
// transport's Close does not close it (the server closes the client's
// body when the handler returns), read tells whether an attempt consumed
// any of it, after which it cannot be sent again, and broken whether a
// read failed.
type heldBody struct {
	rc     io.ReadCloser
	read   bool
	broken atomic.Bool // read by RoundTrip while the transport may still write
}

func (b *heldBody) Read(p []byte) (int, error) {
	b.read = true
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.broken.Store(true)
	}
	return n, err
}

func (b *heldBody) Close() error { return nil }

// isConnFailure reports whether err is a connection that failed before
// any response arrived: worth trying on another backend. Timeouts after
// the request was written are not.
func isConnFailure(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if isTimeout(err) {
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// doneBody reports the Choice done when the response body is closed,
// which ReverseProxy always does once it has streamed it.
type doneBody struct {
	rc      io.ReadCloser
	p       *Proxy
	c       balance.Choice
	fail    error // the response was a failure
	readErr error // the body broke off
	closed  bool
}

func (b *doneBody) Read(buf []byte) (int, error) {
	n, err := b.rc.Read(buf)
	if err != nil && err != io.EOF && b.readErr == nil {
		b.readErr = err
	}
	return n, err
}

func (b *doneBody) Close() error {
	err := b.rc.Close()
	if !b.closed {
		b.closed = true
		fail := b.fail
		switch {
		case fail != nil || b.readErr == nil:
		case errors.Is(b.readErr, context.Canceled):
			// The client went away while the body streamed.
			fail = fmt.Errorf("%w: %w", balance.ErrAborted, b.readErr)
		default:
			fail = b.readErr
		}
		b.p.done(&b.c, fail)
	}
	return err
}
