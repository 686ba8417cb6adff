package httpclient

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/observe"
)

// Defaults of Config.
const (
	DefaultRetries             = 2
	DefaultDialTimeout         = 2 * time.Second
	DefaultIdleConnsPerBackend = 64
)

// ErrInvalidConfig is returned by New for a bad Config. It wraps
// balance.ErrInvalidConfig, so either may be tested with errors.Is.
var ErrInvalidConfig = fmt.Errorf("httpclient: %w", balance.ErrInvalidConfig)

// ErrBackendStatus is the error reported to Choice.Done for a response
// that Config.IsFailure judged a failure (by default a 5xx status). The
// caller gets the response itself, not this error.
var ErrBackendStatus = errors.New("httpclient: backend answered with a failure status")

// ErrAttemptTimeout is what an attempt that outlived Config.AttemptTimeout
// before its response header fails with (test with errors.Is). The error
// returned also reports Timeout() true, as net.Error does, so that
// http.Client's *url.Error says Timeout() too.
var ErrAttemptTimeout = errors.New("httpclient: attempt timed out")

// Config configures New. The zero value is the default: 2 retries, no
// per-attempt timeout, every request balanced, key "", a transport of the
// Transport's own.
type Config struct {
	// Host, when set, is the URL host (with its port, if the URLs carry
	// one) whose requests are balanced: "users" for http://users/api/...
	// Requests for any other host go through Base as they are, unbalanced,
	// so that a redirect to another site is not sent to the backends.
	// Empty balances every request.
	Host string

	// Retries is how many times a failed request may be sent again to
	// another backend (see the package doc for which). 0 means
	// DefaultRetries; negative disables retries.
	Retries int

	// AttemptTimeout, if positive, bounds each attempt from the pick to
	// its response header (dial, write and wait); an idempotent request
	// whose attempt timed out is tried again on another backend, any
	// other fails with ErrAttemptTimeout. Streaming the response body is
	// not bounded by it: bound the whole request with the request's
	// context or http.Client.Timeout. 0 means none; negative is invalid.
	AttemptTimeout time.Duration

	// Base sends each attempt, once its URL names the backend. nil means
	// a transport of the Transport's own: no environment proxy (backends
	// are reached directly), DialTimeout, IdleConnsPerBackend keep-alive
	// connections per backend, HTTP/2 over TLS. A Base of the caller's is
	// used as it is: with https backends, set its TLSClientConfig's
	// ServerName to the service's name, since the URL names the backend's
	// address.
	Base http.RoundTripper
	// DialTimeout bounds one connection attempt of the Transport's own
	// Base. 0 means DefaultDialTimeout (backends are near: a dial that
	// takes longer means the backend is gone, and a retry elsewhere can
	// still succeed); negative is invalid. Ignored with a Base.
	DialTimeout time.Duration
	// IdleConnsPerBackend is how many idle keep-alive connections the
	// Transport's own Base keeps per backend. 0 means
	// DefaultIdleConnsPerBackend; negative is invalid. Ignored with a Base.
	IdleConnsPerBackend int

	// IsFailure decides whether an exchange counts as a failure for the
	// balancer (Choice.Done with an error). It gets the response, or the
	// error when there is none. nil means: an error, or a status of 500 or
	// more.
	IsFailure func(resp *http.Response, err error) bool
	// Key, if set, returns the key passed to Balancer.Pick for a request,
	// for balance.ConsistentHash: HeaderKey and CookieKey make one from a
	// header or a cookie. nil means "".
	Key func(r *http.Request) string

	// Logger receives each failed attempt that is retried (at Debug: the
	// caller sees only the last one), by method, path and backend, never
	// a query, header or body. nil means slog.Default().
	Logger *slog.Logger

	// Meter receives the Transport's metrics (see package observe):
	// requests by status class or error, and retries; nil means none. The
	// balancer's own figures (picks, errors and latency per backend) come
	// from balance.Health's.
	Meter observe.Meter
}

func (cfg *Config) defaults() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = DefaultRetries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	switch {
	case cfg.AttemptTimeout < 0:
		return bad("AttemptTimeout %v is negative", cfg.AttemptTimeout)
	case cfg.DialTimeout < 0:
		return bad("DialTimeout %v is negative", cfg.DialTimeout)
	case cfg.IdleConnsPerBackend < 0:
		return bad("IdleConnsPerBackend %d is negative", cfg.IdleConnsPerBackend)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.IdleConnsPerBackend == 0 {
		cfg.IdleConnsPerBackend = DefaultIdleConnsPerBackend
	}
	if cfg.IsFailure == nil {
		cfg.IsFailure = defaultIsFailure
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Base == nil {
		cfg.Base = &http.Transport{
			Proxy: nil, // backends are reached directly, never through an environment proxy
			DialContext: (&net.Dialer{
				Timeout:   cfg.DialTimeout,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          0, // no global limit; per backend below
			MaxIdleConnsPerHost:   cfg.IdleConnsPerBackend,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	return nil
}

func defaultIsFailure(resp *http.Response, err error) bool {
	return err != nil || resp.StatusCode >= 500
}
