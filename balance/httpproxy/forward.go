package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// forward serves a request that asks for no protocol switch: the steps of
// httputil.ReverseProxy.ServeHTTP with a Rewrite, in the same order and
// with the same effects on the request, the response, their headers and
// trailers, 1xx responses, flushing and errors, at a lower cost per
// request. A proxy pays for every allocation twice (once, and again in the
// garbage collections it brings forward), and ReverseProxy spends about a
// fifth of the bytes of a small exchange on things a Proxy does not need:
// a second copy of the request for the trace context, a closure and a
// mutex of its own, a parsed media type to find Server-Sent Events, a copy
// of every response header value. Upgrades still go through ReverseProxy
// (Proxy.rp), where its hijacking and bidirectional copy are.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	x := &exchange{w: w}
	x.trace.Got1xxResponse = x.got1xx
	out := r.Clone(httptrace.WithClientTrace(r.Context(), &x.trace))
	if r.ContentLength == 0 {
		out.Body = nil // as ReverseProxy: a nil Body lets http.Transport retry
	}
	if out.Body != nil {
		// The transport closes the body it is given when it fails to
		// connect; the client's must stay open for the server to drain,
		// and must not be read after the handler returns.
		body := &noCloseBody{rc: out.Body}
		out.Body = body
		defer body.Close()
	}
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	out.Close = false
	removeHopByHop(out.Header)
	if headerHasToken(r.Header["Te"], "trailers") {
		out.Header["Te"] = []string{"trailers"}
	}
	for _, h := range forwardingHeaders {
		delete(out.Header, h)
	}
	out.URL.RawQuery = cleanQuery(out.URL.RawQuery)
	p.prepare(r, out)
	if _, ok := out.Header["User-Agent"]; !ok {
		// Not Go's default User-Agent in place of the client's none.
		out.Header["User-Agent"] = emptyValue
	}

	res, err := (*transport)(p).RoundTrip(out)
	x.mu.Lock()
	x.done = true
	x.mu.Unlock()
	if err != nil {
		p.errorHandler(w, out, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// A switch the client did not ask for (ReverseProxy's answer).
		res.Body.Close()
		p.errorHandler(w, out, fmt.Errorf("backend tried to switch protocol %q when %q was requested", upgradeType(res.Header), ""))
		return
	}
	removeHopByHop(res.Header)
	dst := w.Header()
	for k, vv := range res.Header {
		// The response is the proxy's alone: its value slices can be
		// handed over rather than copied.
		if prior := dst[k]; prior != nil {
			dst[k] = append(prior, vv...)
		} else {
			dst[k] = vv
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	if err := p.copyBody(w, res); err != nil {
		defer res.Body.Close()
		// A response cut short can only be aborted: the server recovers
		// this panic and resets the client's connection, so the client
		// does not take a truncated body for a whole one.
		if r.Context().Value(http.ServerContextKey) != nil {
			panic(http.ErrAbortHandler)
		}
		return
	}
	res.Body.Close() // now, to fill in res.Trailer

	if len(res.Trailer) > 0 {
		// Chunked, so that the trailers can follow the body.
		_ = http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		copyHeader(dst, res.Trailer)
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// exchange is what one forwarded request shares with its trace, in one
// allocation.
type exchange struct {
	trace httptrace.ClientTrace
	w     http.ResponseWriter
	mu    sync.Mutex
	done  bool // the round trip returned: w is the handler's again
}

// got1xx passes an informational response (103 Early Hints, 100 Continue)
// on to the client while the round trip is under way.
func (x *exchange) got1xx(code int, header textproto.MIMEHeader) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done {
		return nil
	}
	h := x.w.Header()
	copyHeader(h, http.Header(header))
	x.w.WriteHeader(code)
	clear(h) // WriteHeader keeps a 1xx response's headers
	return nil
}

// copyBody streams the response body to the client through a pooled
// buffer, flushing after every write for Server-Sent Events and bodies of
// unknown length, as ReverseProxy does.
func (p *Proxy) copyBody(w http.ResponseWriter, res *http.Response) error {
	var rc *http.ResponseController
	if res.ContentLength == -1 || isEventStream(res.Header["Content-Type"]) {
		rc = http.NewResponseController(w)
		_ = rc.Flush() // the header, before the first byte of the body
	}
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	buf := *bp
	for {
		nr, rerr := res.Body.Read(buf)
		if rerr != nil && rerr != io.EOF && rerr != context.Canceled {
			p.log.LogAttrs(context.Background(), slog.LevelWarn, "httpproxy: read error during body copy",
				slog.String("error", rerr.Error()))
		}
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nw != nr {
				return io.ErrShortWrite
			}
			if rc != nil {
				_ = rc.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// isEventStream reports whether a Content-Type is text/event-stream, which
// is flushed as it comes; what mime.ParseMediaType would say of the media
// type, without parsing (and allocating) the parameters.
func isEventStream(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	base, _, _ := strings.Cut(ct[0], ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// forwardingHeaders are removed from every outbound request before
// setForwarded sets its own.
var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// emptyValue is the value of a header sent empty. It is never written to:
// a header's values are replaced, not edited in place.
var emptyValue = []string{""}

// hopHeaders are removed in both directions (RFC 9110, 7.6.1, and the
// older ones ReverseProxy removes for compatibility), canonical.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// removeHopByHop removes the hop-by-hop headers of h: the ones its
// Connection header names, and hopHeaders.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, name := range hopHeaders {
		delete(h, name)
	}
}

// upgradeType returns the protocol a header asks to switch to, or "".
func upgradeType(h http.Header) string {
	if !headerHasToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// headerHasToken reports whether a comma-separated list in values holds
// token, case-insensitively.
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(t), token) {
				return true
			}
		}
	}
	return false
}

// cleanQuery drops the query parameters Go's servers do not parse (a ';'
// separator, a bad escape), as ReverseProxy does, so that a backend sees
// only what the proxy could have seen.
func cleanQuery(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// copyHeader adds the values of src to dst.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// noCloseBody is the client's request body as the transport sees it: its
// Close only stops further reads (the server closes the real body), as
// ReverseProxy's wrapper does.
type noCloseBody struct {
	rc     io.ReadCloser
	closed atomic.Bool
}

var errBodyClosed = errors.New("httpproxy: read from the client's body after the request ended")

func (b *noCloseBody) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errBodyClosed
	}
	return b.rc.Read(p)
}

func (b *noCloseBody) Close() error {
	b.closed.Store(true)
	return nil
}
