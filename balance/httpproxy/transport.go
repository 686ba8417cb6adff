package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/internal/httpretry"
)

// transport is the Proxy seen as the ReverseProxy's RoundTripper: it picks
// a backend for each attempt, sends the request through the shared
// http.Transport, retries connection failures, and arranges for
// Choice.Done to be called once per Choice.
type transport Proxy

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := (*Proxy)(t)
	ctx := req.Context()
	// The backend the request's valid sticky cookie names, if any: req is
	// ReverseProxy's copy of the inbound request, cookies included.
	var pin *stickyEntry
	if p.sticky != nil {
		if ck, err := req.Cookie(p.cookie); err == nil {
			pin = p.sticky.lookup(ck.Value)
		}
	}
	retryable := p.retries > 0 && httpretry.CanRetry(req)
	// A streamed body (the client's, not replayable) is held back from
	// the transport's Close, so that a request whose connection was
	// refused, and so never sent, can go to another backend with it. The
	// server closes it when the handler returns: the proxy never
	// releases it.
	var held *httpretry.Held
	if !httpretry.Replayable(req) {
		held = httpretry.Hold(req.Body)
	}

	var (
		tried   []string // addresses tried, when retrying
		lastErr error
	)
	for attempt := 0; ; attempt++ {
		var body io.ReadCloser // a fresh copy of the body, for a retry
		if held != nil {
			body = held
		} else if attempt > 0 && httpretry.HasBody(req) {
			var err error
			if body, err = req.GetBody(); err != nil {
				return nil, lastErr
			}
		}
		var (
			c      balance.Choice
			pinned *stickyEntry
		)
		if attempt == 0 && pin != nil {
			// A sticky request goes to its backend (see the package doc):
			// through PickAddr when the balancer has it, so the request
			// counts like any other and a backend no longer in the set
			// re-picks; otherwise around the balancer, untracked.
			if p.pinner == nil {
				pinned, c = pin, balance.NewChoice(pin.b)
			} else if pc, err := p.pinner.PickAddr(ctx, pin.b.Addr); err == nil {
				pinned, c = pin, pc
			}
		}
		if pinned == nil {
			var err error
			key := ""
			if p.key != nil {
				key = p.key(req)
			}
			c, err = httpretry.Pick(ctx, p.lb, key, tried, lastErr, p.done)
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

		out := attemptRequest(req, attempt, c.Backend().Addr)
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
			return p.respond(&c, pinned, pin, req.TLS != nil, resp), nil
		}

		// No response. The client's fault (it went away, or its body broke
		// off) says nothing about the backend: it counts neither way, and
		// the client is not retried elsewhere.
		if held != nil && held.Broken() {
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
		if attempt >= p.retries || ctx.Err() != nil || !httpretry.Again(err, retryable, held) {
			return nil, err
		}
		tried = append(tried, c.Backend().Addr)
		lastErr = err
		p.metrics.retried()
	}
}

// attemptRequest returns the request of an attempt, addressed to addr. The
// first is req itself: ReverseProxy made it for this exchange alone, with
// a URL of its own, and it is what Rewrite already edits (a copy would be
// two allocations, the Request and the URL, on every request). A retry
// gets a shallow copy, since the transport may still be reading the
// request a failed attempt was sent with.
func attemptRequest(req *http.Request, attempt int, addr string) *http.Request {
	if attempt == 0 {
		req.URL.Host = addr
		return req
	}
	out := new(http.Request)
	*out = *req
	u := *req.URL
	u.Host = addr
	out.URL = &u
	return out
}

// respond finishes a successful round trip: the sticky cookie, and the
// Done call, deferred until the body is consumed. pinned is the backend
// the request went to for its cookie, pin the one its cookie names, tls
// whether it arrived over TLS.
func (p *Proxy) respond(c *balance.Choice, pinned, pin *stickyEntry, tls bool, resp *http.Response) *http.Response {
	// A LoadReporter's in-band load is for proxies, not for the world.
	delete(resp.Header, loadHeader)
	var fail error
	if p.isFailure(resp, nil) {
		fail = fmt.Errorf("%w: %d", ErrBackendStatus, resp.StatusCode)
	}
	if p.sticky != nil && pinned == nil {
		// Picked by the balancer: (re)learn the backend and, unless the
		// client's cookie already names it, pin the client to it.
		e := p.sticky.learn(c.Backend())
		if pin != e {
			resp.Header.Add("Set-Cookie", e.setCookie(tls || p.secure))
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil {
		p.done(c, fail)
		return resp
	}
	resp.Body = &doneBody{rc: resp.Body, p: p, c: *c, fail: fail}
	return resp
}

// loadHeader is balance.LoadHeader in canonical form, to delete it
// without canonicalizing it on every response.
var loadHeader = http.CanonicalHeaderKey(balance.LoadHeader)

// done calls c.Done(err), and the test hook.
func (p *Proxy) done(c *balance.Choice, err error) {
	c.Done(err)
	if p.onDone != nil {
		p.onDone(c.Backend(), err)
	}
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
