// Package httpretry holds the retry rules that balance/httpproxy and
// balance/httpclient share, so that a request is retried on another
// backend in exactly the same cases whether it goes through the proxy or
// through the client-side Transport:
//
//   - a connection that was refused or could not be made (a dial error):
//     the backend received nothing, so any request may go again, POST
//     included, as long as its body is intact (Held.Unread) or can be
//     replayed (Request.GetBody);
//   - an idempotent request (Idempotent) whose body can be replayed, after
//     a connection that closed or reset before a response header arrived
//     (IsConnFailure).
//
// A response, even a 5xx, is never retried, and neither is a timeout
// after the request was written (IsTimeout), unless a per-attempt timeout
// says otherwise (httpclient's AttemptTimeout, for idempotent requests).
package httpretry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/scaleout/scaleout/balance"
)

// MaxRepicks bounds the picks one retry makes while the balancer keeps
// returning backends the request already tried.
const MaxRepicks = 8

// Idempotent reports whether req may be sent twice without harm: GET,
// HEAD, OPTIONS or TRACE, or a request carrying an Idempotency-Key or
// X-Idempotency-Key header (present, even empty: the http.Transport
// convention for its own retries).
func Idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, "":
		return true
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := req.Header["X-Idempotency-Key"]
	return ok
}

// HasBody reports whether req carries a body.
func HasBody(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody
}

// Replayable reports whether req's body can be sent again: it has none,
// or Request.GetBody makes a fresh copy.
func Replayable(req *http.Request) bool {
	return !HasBody(req) || req.GetBody != nil
}

// CanRetry reports whether req may be retried after a broken connection:
// idempotent, with a body that can be replayed.
func CanRetry(req *http.Request) bool {
	return Replayable(req) && Idempotent(req)
}

// Again reports whether a request may go to another backend after an
// attempt failed with err and no response: a connection failure of a
// request CanRetry allows (retryable), or a connection never made
// (IsDialFailure) while the body is intact, which held (nil when the body
// is replayable or absent) tells. The caller still bounds the attempts
// and checks its context.
func Again(err error, retryable bool, held *Held) bool {
	if retryable && IsConnFailure(err) {
		return true
	}
	return IsDialFailure(err) && (held == nil || held.Unread())
}

// IsDialFailure reports a connection that was never established, so the
// backend received nothing of the request.
func IsDialFailure(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// IsConnFailure reports whether err is a connection that failed before
// any response arrived: worth trying on another backend when the request
// is idempotent. Timeouts after the request was written are not.
func IsConnFailure(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if IsTimeout(err) {
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// IsTimeout reports a deadline or a network timeout.
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Pick asks lb for a backend this request has not tried yet (tried lists
// the addresses). A pick of a tried backend is reported to done with
// lastErr, the failure just seen on it (the truth about it, which speeds
// up passive health checks), and the balancer is asked again, at most
// MaxRepicks times in all; then Pick fails with lastErr.
func Pick(ctx context.Context, lb balance.Balancer, key string, tried []string, lastErr error, done func(*balance.Choice, error)) (balance.Choice, error) {
	for i := 0; ; i++ {
		c, err := lb.Pick(ctx, key)
		if err != nil || len(tried) == 0 || !contains(tried, c.Backend().Addr) {
			return c, err
		}
		stale := c // a copy, so that c does not escape on the common path
		done(&stale, lastErr)
		if i+1 >= MaxRepicks {
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
