package httpclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/internal/httpretry"
)

// Transport is an http.RoundTripper that sends each request to a backend
// a Balancer picks, retries it on another backend when that is safe, and
// reports every outcome to the balancer. It is safe for concurrent use.
// See the package doc.
type Transport struct {
	lb             balance.Balancer
	base           http.RoundTripper
	host           string
	retries        int
	attemptTimeout time.Duration
	isFailure      func(*http.Response, error) bool
	key            func(*http.Request) string
	log            *slog.Logger
	metrics        *metrics // nil without a Meter

	// onDone, when set (by tests), sees every Choice.Done call.
	onDone func(b balance.Backend, err error)
}

var _ http.RoundTripper = (*Transport)(nil)

// New returns a Transport over lb. It fails with an error wrapping
// ErrInvalidConfig (and so balance.ErrInvalidConfig) for a nil lb or a
// bad cfg. It starts nothing: keep lb's set current (balance.DNS, or
// Update) and run its health checks (balance.Health.Run) yourself.
func New(lb balance.Balancer, cfg Config) (*Transport, error) {
	if lb == nil {
		return nil, fmt.Errorf("%w: nil Balancer", ErrInvalidConfig)
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return &Transport{
		lb:             lb,
		base:           cfg.Base,
		host:           cfg.Host,
		retries:        cfg.Retries,
		attemptTimeout: cfg.AttemptTimeout,
		isFailure:      cfg.IsFailure,
		key:            cfg.Key,
		log:            cfg.Logger,
		metrics:        newMetrics(cfg.Meter),
	}, nil
}

// CloseIdleConnections closes the keep-alive connections to backends that
// no request is using, when Base can (http.Client.CloseIdleConnections
// calls it). Requests in flight keep theirs and the Transport remains
// usable. A Transport starts no goroutine and owns no connection beyond
// these, so it has no Close.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// An exchange is one attempt's request, addressed to its backend, and the
// wrapper of its response body: one allocation per attempt.
type exchange struct {
	out  http.Request
	url  url.URL
	body doneBody
	held httpretry.Held // the first attempt's: a body that cannot be replayed
}

// RoundTrip implements http.RoundTripper: it sends req to a backend of
// the balancer (see the package doc). It does not change req.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("httpclient: nil Request.URL")
	}
	if t.host != "" && req.URL.Host != t.host {
		return t.base.RoundTrip(req)
	}
	ctx := req.Context()
	retryable := t.retries > 0 && httpretry.CanRetry(req)
	key := ""
	if t.key != nil {
		key = t.key(req)
	}
	ex := new(exchange)
	// A body that cannot be replayed is held back from the first
	// attempt's Close, so that a request whose connection was refused, and
	// so never sent, can go to another backend with it; released (and so
	// closed) once no attempt will follow.
	var held *httpretry.Held
	if !httpretry.Replayable(req) {
		ex.held.Init(req.Body)
		held = &ex.held
	}
	var (
		tried   []string // addresses tried, when retrying
		lastErr error
	)
	for attempt := 0; ; attempt++ {
		body := req.Body
		switch {
		case held != nil:
			body = held
		case attempt > 0 && httpretry.HasBody(req):
			var err error
			if body, err = req.GetBody(); err != nil {
				t.metrics.failed()
				return nil, lastErr
			}
		}
		if attempt > 0 {
			ex = new(exchange)
		}
		c, err := httpretry.Pick(ctx, t.lb, key, tried, lastErr, t.done)
		if err != nil {
			switch {
			case held != nil && attempt == 0:
				held.CloseNow() // no transport had it
			case held != nil:
				held.Release()
			case body != nil:
				body.Close()
			}
			t.metrics.failed()
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, fmt.Errorf("httpclient: %s %s: %w", req.Method, req.URL.Host, err)
		}

		addr := c.Backend().Addr
		out, cancel, timer := ex.prepare(req, ctx, addr, body, t.attemptTimeout)
		resp, err := t.base.RoundTrip(out)
		if timer != nil && !timer.Stop() {
			// The attempt's time ran out, whatever came back after.
			if err == nil {
				resp.Body.Close()
			}
			err = &attemptTimeoutError{addr: addr, d: t.attemptTimeout}
		}
		if err == nil {
			if held != nil {
				held.Release()
			}
			t.metrics.answered(resp.StatusCode)
			return t.respond(ex, ctx, c, resp, cancel), nil
		}
		if cancel != nil {
			cancel()
		}

		// No response. The caller's doing (it cancelled, or its body broke
		// off) says nothing about the backend: it counts neither way, and
		// is not retried.
		if errors.Is(err, context.Canceled) && ctx.Err() != nil || held != nil && held.Broken() {
			t.done(&c, fmt.Errorf("%w: %w", balance.ErrAborted, err))
			if held != nil {
				held.Release()
			}
			t.metrics.failed()
			return nil, err
		}
		if t.isFailure(nil, err) {
			t.done(&c, err)
		} else {
			t.done(&c, nil)
		}
		// Idempotent requests are retried on any connection failure (and a
		// per-attempt timeout); any request whose connection was refused,
		// never having been sent, as long as its body is intact.
		again := httpretry.Again(err, retryable, held) || retryable && errors.Is(err, ErrAttemptTimeout)
		if attempt >= t.retries || ctx.Err() != nil || !again {
			if held != nil {
				held.Release()
			}
			t.metrics.failed()
			return nil, err
		}
		if t.log.Enabled(ctx, slog.LevelDebug) {
			t.log.LogAttrs(ctx, slog.LevelDebug, "httpclient: attempt failed, retrying on another backend",
				slog.String("method", req.Method),
				slog.String("path", req.URL.Path),
				slog.String("backend", addr),
				slog.String("error", err.Error()))
		}
		tried = append(tried, addr)
		lastErr = err
		t.metrics.retried()
	}
}

// prepare addresses the exchange's request to addr: a shallow copy of req
// whose URL names the backend, while its Host header stays the one req
// says (req.Host, or else its URL's host), as if the service's name had
// resolved to that backend. With a per-attempt timeout, the copy carries
// a context of its own, cancelled by a timer unless the response header
// comes first (then by the response body's Close).
func (ex *exchange) prepare(req *http.Request, ctx context.Context, addr string, body io.ReadCloser, timeout time.Duration) (*http.Request, context.CancelFunc, *time.Timer) {
	var (
		out    *http.Request
		cancel context.CancelFunc
		timer  *time.Timer
	)
	if timeout > 0 {
		var actx context.Context
		actx, cancel = context.WithCancel(ctx)
		timer = time.AfterFunc(timeout, cancel)
		out = req.WithContext(actx)
	} else {
		ex.out = *req
		out = &ex.out
	}
	ex.url = *req.URL
	ex.url.Host = addr
	out.URL = &ex.url
	if out.Host == "" {
		out.Host = req.URL.Host
	}
	out.Body = body
	return out, cancel, timer
}

// respond finishes a round trip that got a response: the Done call waits
// for the end of its body.
func (t *Transport) respond(ex *exchange, ctx context.Context, c balance.Choice, resp *http.Response, cancel context.CancelFunc) *http.Response {
	var fail error
	if t.isFailure(resp, nil) {
		fail = fmt.Errorf("%w: %d", ErrBackendStatus, resp.StatusCode)
	}
	switch {
	case resp.StatusCode == http.StatusSwitchingProtocols:
		// The body is the connection, which the caller writes to through
		// it: it cannot be wrapped, and the attempt's context (if any)
		// lives until the caller's ends.
		t.done(&c, fail)
		return resp
	case resp.Body == nil || resp.Body == http.NoBody:
		t.done(&c, fail)
		if cancel != nil {
			cancel()
		}
		return resp
	}
	ex.body = doneBody{rc: resp.Body, t: t, c: c, ctx: ctx, fail: fail, cancel: cancel}
	resp.Body = &ex.body
	return resp
}

// done calls c.Done(err), and the test hook.
func (t *Transport) done(c *balance.Choice, err error) {
	c.Done(err)
	if t.onDone != nil {
		t.onDone(c.Backend(), err)
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// attemptTimeoutError is an attempt that outlived Config.AttemptTimeout.
type attemptTimeoutError struct {
	addr string
	d    time.Duration
}

func (e *attemptTimeoutError) Error() string {
	return fmt.Sprintf("%v: no response from %s within %v", ErrAttemptTimeout, e.addr, e.d)
}
func (e *attemptTimeoutError) Is(target error) bool { return target == ErrAttemptTimeout }
func (e *attemptTimeoutError) Timeout() bool        { return true }
func (e *attemptTimeoutError) Temporary() bool      { return true }
