package httpproxy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/internal/httpretry"
	"github.com/scaleout/scaleout/observe"
)

// Defaults of Config.
const (
	DefaultRetries               = 2
	DefaultDialTimeout           = 2 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleConnsPerBackend   = 256
	DefaultStickyTTL             = time.Minute
	DefaultStickyMaxBackends     = 4096
)

// DefaultClientAddrHeaders are the request headers, besides
// X-Forwarded-For and Forwarded, by which proxies and CDNs tell a backend
// the client's address, and which web frameworks read to learn it. The
// proxy removes them from the requests of peers not in
// Config.TrustedProxies, so a client cannot pass itself off as another
// address through them.
var DefaultClientAddrHeaders = []string{
	"X-Real-IP",
	"True-Client-IP",
	"X-Client-IP",
	"Client-IP",
	"CF-Connecting-IP",
	"CF-Connecting-IPv6",
	"Fastly-Client-IP",
	"X-Cluster-Client-IP",
	"X-Original-Forwarded-For",
	"X-Forwarded",
	"Forwarded-For",
	"X-Envoy-External-Address",
	"X-Azure-ClientIP",
	"X-Appengine-User-IP",
}

// DefaultPrivatePaths are the paths the proxy does not forward unless
// Config.PrivatePaths says otherwise: /debug/ holds the backends'
// operational endpoints (balance.DefaultLoadPath, where a LoadReporter
// serves each clone's load; expvar's /debug/vars; net/http/pprof's
// /debug/pprof/), for the private network only.
var DefaultPrivatePaths = []string{"/debug/"}

// ErrInvalidConfig is returned by New for a bad Config. It wraps
// balance.ErrInvalidConfig, so either may be tested with errors.Is.
var ErrInvalidConfig = fmt.Errorf("httpproxy: %w", balance.ErrInvalidConfig)

// ErrBackendStatus is the error reported to Choice.Done for a response
// that Config.IsFailure judged a failure (by default a 5xx status).
var ErrBackendStatus = errors.New("httpproxy: backend answered with a failure status")

// Config configures New. The zero value is the default: plain HTTP to the
// backends, 2 retries, no stickiness, no trusted proxies.
type Config struct {
	// Scheme is how backends are spoken to: "http" (the default when
	// empty) or "https".
	Scheme string

	// Retries is how many times a failed idempotent request may be tried
	// again on another backend (see the package doc). 0 means
	// DefaultRetries; negative disables retries.
	Retries int

	// DialTimeout bounds one connection attempt. 0 means
	// DefaultDialTimeout; negative is invalid.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a backend's response header
	// once the request is written. 0 means DefaultResponseHeaderTimeout;
	// negative is invalid.
	ResponseHeaderTimeout time.Duration
	// Timeout, if positive, bounds the whole exchange, including streaming
	// the response body; a response cut by it is aborted. 0 means no
	// overall limit; negative is invalid.
	Timeout time.Duration
	// IdleConnsPerBackend is how many idle keep-alive connections are kept
	// per backend. 0 means DefaultIdleConnsPerBackend; negative is invalid.
	IdleConnsPerBackend int

	// IsFailure decides whether an exchange counts as a failure for the
	// balancer (Choice.Done with an error). It gets the response, or the
	// transport error when there is none. nil means: an error, or a status
	// of 500 or more.
	IsFailure func(resp *http.Response, err error) bool
	// Key, if set, returns the key passed to Balancer.Pick for a request,
	// for hashing balancers; nil means "".
	Key func(r *http.Request) string

	// StickyCookie is the name of the sticky-session cookie; empty turns
	// stickiness off. It must be a valid cookie name.
	StickyCookie string
	// Secret is the HMAC key of sticky cookies, at least 16 bytes; proxies
	// that share it honour each other's cookies. Empty means 32 random
	// bytes, drawn by New.
	Secret []byte
	// StickyTTL is, for a balancer that is not a balance.Pinner, how long after the
	// balancer last picked a backend its cookies are still honoured. 0
	// means DefaultStickyTTL; negative is invalid.
	StickyTTL time.Duration
	// StickyMaxBackends bounds the table of backends cookies can name; the
	// least recently picked is forgotten first. 0 means
	// DefaultStickyMaxBackends; negative is invalid.
	StickyMaxBackends int
	// CookieSecure marks sticky cookies Secure even on requests that did
	// not arrive over TLS (for a proxy behind a TLS terminator). Cookies
	// set on TLS requests are always Secure.
	CookieSecure bool

	// TrustedProxies are the peers whose X-Forwarded-* headers are kept
	// and extended, and whose ClientAddrHeaders are kept; every other
	// peer's are replaced or removed. New copies the slice.
	TrustedProxies []netip.Prefix
	// ClientAddrHeaders are the headers, besides X-Forwarded-*, that can
	// carry a client's address: they are removed from the requests of
	// peers not in TrustedProxies. nil means DefaultClientAddrHeaders; to
	// add one, append to a copy of it. Each must be a valid header name.
	ClientAddrHeaders []string

	// PrivatePaths are paths the proxy answers with 404 instead of
	// forwarding: each entry, ending in "/" or not, covers that path and
	// everything under it. A request's path is matched decoded, cleaned
	// (no "//", "." or "..") and regardless of case, so that no spelling a
	// backend would take for a private path gets through. nil means
	// DefaultPrivatePaths; an empty, non-nil slice forwards every path.
	PrivatePaths []string

	// ErrorLog receives failed requests, with the error and backend
	// detail kept out of responses. nil means slog.Default().
	ErrorLog *slog.Logger

	// Meter receives the proxy's metrics (see package observe): requests
	// by status class, retries, and upstream latency per backend; nil
	// means none. The balancer's own figures come from balance.Health's.
	Meter observe.Meter
}

// Proxy is an http.Handler that forwards requests to the backends a
// Balancer picks. It is safe for concurrent use. See the package doc.
type Proxy struct {
	lb         balance.Balancer
	rp         httputil.ReverseProxy
	tr         *http.Transport
	scheme     string
	retries    int
	timeout    time.Duration
	isFailure  func(*http.Response, error) bool
	key        func(*http.Request) string
	sticky     *stickyTable   // nil when stickiness is off
	pinner     balance.Pinner // lb, when it can take sticky requests
	cookie     string
	secure     bool
	trusted    []netip.Prefix
	addrHdrSet map[string]bool // ClientAddrHeaders, canonical
	addrNames  map[string]bool // the same and X-Forwarded-*, Forwarded
	private    []string        // PrivatePaths, cleaned, without a trailing "/"
	log        *slog.Logger
	metrics    *metrics // nil without a Meter

	// onDone, when set (by tests), sees every Choice.Done call.
	onDone func(b balance.Backend, err error)
}

// New returns a Proxy over lb. It fails with an error wrapping
// ErrInvalidConfig (and so balance.ErrInvalidConfig) for a bad cfg.
func New(lb balance.Balancer, cfg Config) (*Proxy, error) {
	if lb == nil {
		return nil, fmt.Errorf("%w: nil Balancer", ErrInvalidConfig)
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	p := &Proxy{
		lb:         lb,
		scheme:     cfg.Scheme,
		retries:    cfg.Retries,
		timeout:    cfg.Timeout,
		isFailure:  cfg.IsFailure,
		key:        cfg.Key,
		cookie:     cfg.StickyCookie,
		secure:     cfg.CookieSecure,
		trusted:    cfg.TrustedProxies,
		addrHdrSet: map[string]bool{},
		private:    cfg.PrivatePaths,
		addrNames:  map[string]bool{"X-Forwarded-For": true, "X-Forwarded-Proto": true, "X-Forwarded-Host": true, "Forwarded": true},
		log:        cfg.ErrorLog,
		metrics:    newMetrics(cfg.Meter),
	}
	for _, h := range cfg.ClientAddrHeaders {
		p.addrHdrSet[h] = true
		p.addrNames[h] = true
	}
	p.tr = newTransport(&cfg)
	if cfg.StickyCookie != "" {
		secret := cfg.Secret
		if len(secret) == 0 {
			secret = make([]byte, 32)
			rand.Read(secret) // never fails (crypto/rand's contract)
		}
		p.pinner, _ = lb.(balance.Pinner)
		p.sticky = newStickyTable(cfg.StickyCookie, secret, cfg.StickyTTL, cfg.StickyMaxBackends, p.pinner != nil)
	}
	p.rp = httputil.ReverseProxy{
		Rewrite:      p.rewrite,
		Transport:    (*transport)(p),
		ErrorHandler: p.errorHandler,
		ErrorLog:     slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		BufferPool:   bufferPool{},
	}
	return p, nil
}

// newTransport returns the http.Transport a Proxy with the (defaulted)
// cfg sends its requests through.
func newTransport(cfg *Config) *http.Transport {
	return &http.Transport{
		Proxy: nil, // backends are private: never through an environment proxy
		DialContext: (&net.Dialer{
			Timeout:   cfg.DialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0, // no global limit; per backend below
		MaxIdleConnsPerHost:   cfg.IdleConnsPerBackend,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		// A proxy passes bodies through as they are: asking for gzip and
		// decoding it would change what the client gets.
		DisableCompression: true,
	}
}

func (cfg *Config) defaults() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch cfg.Scheme {
	case "":
		cfg.Scheme = "http"
	case "http", "https":
	default:
		return bad("Scheme %q is not http or https", cfg.Scheme)
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = DefaultRetries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"DialTimeout", &cfg.DialTimeout, DefaultDialTimeout},
		{"ResponseHeaderTimeout", &cfg.ResponseHeaderTimeout, DefaultResponseHeaderTimeout},
		{"Timeout", &cfg.Timeout, 0},
		{"StickyTTL", &cfg.StickyTTL, DefaultStickyTTL},
	} {
		if *d.v < 0 {
			return bad("%s %v is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	for _, n := range []struct {
		name string
		v    *int
		def  int
	}{
		{"IdleConnsPerBackend", &cfg.IdleConnsPerBackend, DefaultIdleConnsPerBackend},
		{"StickyMaxBackends", &cfg.StickyMaxBackends, DefaultStickyMaxBackends},
	} {
		if *n.v < 0 {
			return bad("%s %d is negative", n.name, *n.v)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	if cfg.StickyCookie != "" {
		if !validToken(cfg.StickyCookie) {
			return bad("StickyCookie %q is not a valid cookie name", cfg.StickyCookie)
		}
		if len(cfg.Secret) > 0 && len(cfg.Secret) < 16 {
			return bad("Secret has %d bytes, fewer than 16", len(cfg.Secret))
		}
	}
	// Copies: the caller's slices are theirs.
	trusted := make([]netip.Prefix, len(cfg.TrustedProxies))
	for i, pfx := range cfg.TrustedProxies {
		if !pfx.IsValid() {
			return bad("TrustedProxies[%d] is not a valid prefix", i)
		}
		trusted[i] = pfx.Masked()
	}
	cfg.TrustedProxies = trusted
	if cfg.ClientAddrHeaders == nil {
		cfg.ClientAddrHeaders = DefaultClientAddrHeaders
	}
	hdrs := make([]string, len(cfg.ClientAddrHeaders))
	for i, h := range cfg.ClientAddrHeaders {
		if !validToken(h) {
			return bad("ClientAddrHeaders[%d] %q is not a valid header name", i, h)
		}
		hdrs[i] = http.CanonicalHeaderKey(h)
	}
	cfg.ClientAddrHeaders = hdrs
	if cfg.PrivatePaths == nil {
		cfg.PrivatePaths = DefaultPrivatePaths
	}
	private := make([]string, len(cfg.PrivatePaths))
	for i, pp := range cfg.PrivatePaths {
		if !strings.HasPrefix(pp, "/") {
			return bad("PrivatePaths[%d] %q does not start with /", i, pp)
		}
		private[i] = strings.TrimSuffix(path.Clean(pp), "/")
	}
	cfg.PrivatePaths = private
	if cfg.IsFailure == nil {
		cfg.IsFailure = defaultIsFailure
	}
	if cfg.ErrorLog == nil {
		cfg.ErrorLog = slog.Default()
	}
	return nil
}

// validToken reports whether name is an RFC 9110 token, as cookie and
// header names must be.
func validToken(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return name != ""
}

func defaultIsFailure(resp *http.Response, err error) bool {
	return err != nil || resp.StatusCode >= 500
}

// CloseIdleConnections closes the keep-alive connections to backends that
// no request is using, as http.Transport's method of the same name does.
// Requests in flight keep theirs, and the Proxy remains usable: it opens
// new connections as requests need them. A Proxy starts no goroutine and
// owns no connection beyond these, so it has no Close; to stop serving,
// shut down the http.Server in front of it, then call this.
func (p *Proxy) CloseIdleConnections() {
	p.tr.CloseIdleConnections()
}

// ServeHTTP forwards r to a backend.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.isPrivate(r.URL.Path) {
		p.log.LogAttrs(r.Context(), slog.LevelDebug, "httpproxy: private path refused",
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
		writeError(w, http.StatusNotFound, bodyNotFound)
		p.metrics.answered(http.StatusNotFound)
		return
	}
	// Nothing is carried to the transport but the outbound request, a
	// copy of r (its TLS, its cookies): a context value and the request
	// copy it takes would cost two allocations, a tenth of the bytes the
	// proxy adds per request to what the server and the Transport spend.
	if p.timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	if upgradeType(r.Header) != "" {
		// A protocol switch: ReverseProxy hijacks both connections and
		// copies both ways.
		p.rp.ServeHTTP(w, r)
		return
	}
	p.forward(w, r)
}

// rewrite is ReverseProxy's Rewrite, for the requests it serves.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) { p.prepare(pr.In, pr.Out) }

// prepare addresses the outbound request out for the inbound in; the
// transport fills in the backend's address for each attempt.
func (p *Proxy) prepare(in, out *http.Request) {
	out.URL.Scheme = p.scheme
	out.URL.Host = "" // set per attempt
	p.setForwarded(in, out)
}

// setForwarded sets the X-Forwarded-* headers of out (from which
// ReverseProxy has already removed the client's) for the inbound in, and
// removes the other client-address headers of an untrusted peer.
func (p *Proxy) setForwarded(in, out *http.Request) {
	peer, text, ok := peerAddr(in.RemoteAddr)
	trusted := ok && p.isTrusted(peer)
	// One pass over the request's few headers rather than a delete per
	// name in ClientAddrHeaders (a hash of each of 14 names).
	for name := range out.Header {
		switch {
		case !trusted && p.addrHdrSet[name]:
			delete(out.Header, name)
		case strings.IndexByte(name, '_') >= 0 && p.addrNames[http.CanonicalHeaderKey(strings.ReplaceAll(name, "_", "-"))]:
			// CGI-style servers (PHP, WSGI) read X_Real_IP as X-Real-IP:
			// no proxy sends such spellings, so they are removed from
			// every request.
			delete(out.Header, name)
		}
	}
	// The three values share one array: one allocation, not three.
	vals := new([3]string)
	if ok {
		ip := text
		if prior := in.Header["X-Forwarded-For"]; trusted && len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		vals[0] = ip
		out.Header["X-Forwarded-For"] = vals[0:1:1]
	}
	vals[1] = "http"
	if in.TLS != nil {
		vals[1] = "https"
	}
	if v := in.Header.Get("X-Forwarded-Proto"); trusted && v != "" {
		vals[1] = v
	}
	out.Header["X-Forwarded-Proto"] = vals[1:2:2]
	vals[2] = in.Host
	if v := in.Header.Get("X-Forwarded-Host"); trusted && v != "" {
		vals[2] = v
	}
	if vals[2] != "" {
		out.Header["X-Forwarded-Host"] = vals[2:3:3]
	}
}

// peerAddr parses the address of a request's direct peer, and returns it
// with its canonical text.
func peerAddr(remote string) (netip.Addr, string, bool) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		a := ap.Addr()
		if a.Is4() {
			// ParseAddr takes only canonical dotted quads (no leading
			// zeros), so the text before the port is the address as
			// String would print it, without the allocation.
			return a, remote[:strings.LastIndexByte(remote, ':')], true
		}
		a = a.Unmap()
		return a, a.String(), true
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, "", false
	}
	a = a.Unmap()
	return a, a.String(), true
}

// isPrivate reports whether the decoded request path p falls under one of
// the PrivatePaths.
func (p *Proxy) isPrivate(reqPath string) bool {
	if len(p.private) == 0 {
		return false
	}
	clean := path.Clean("/" + reqPath)
	for _, pp := range p.private {
		if len(clean) >= len(pp) && strings.EqualFold(clean[:len(pp)], pp) &&
			(len(clean) == len(pp) || clean[len(pp)] == '/' || pp == "") {
			return true
		}
	}
	return false
}

func (p *Proxy) isTrusted(a netip.Addr) bool {
	for _, pfx := range p.trusted {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// Fixed response bodies: nothing about the backend or the error reaches
// the client.
const (
	bodyBadRequest         = "bad request\n"
	bodyNotFound           = "not found\n"
	bodyBadGateway         = "bad gateway\n"
	bodyServiceUnavailable = "service unavailable\n"
	bodyGatewayTimeout     = "gateway timeout\n"
)

// errorHandler answers a request no backend answered.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	status, body, level := http.StatusBadGateway, bodyBadGateway, slog.LevelWarn
	switch {
	case errors.Is(err, balance.ErrNoBackend):
		status, body = http.StatusServiceUnavailable, bodyServiceUnavailable
	case errors.Is(err, errClientBody):
		status, body, level = http.StatusBadRequest, bodyBadRequest, slog.LevelDebug
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		level = slog.LevelDebug
	case httpretry.IsTimeout(err):
		status, body = http.StatusGatewayTimeout, bodyGatewayTimeout
	}
	p.log.LogAttrs(r.Context(), level, "httpproxy: request failed",
		slog.Int("status", status),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("error", err.Error()))
	writeError(w, status, body)
	p.metrics.answered(status)
}

// writeError answers with status and a fixed body.
func writeError(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// bufferPool recycles ReverseProxy's copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
