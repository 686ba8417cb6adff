// Package httpproxy is an HTTP reverse proxy in front of private backends
// (clones of one service): every request is sent to a backend a
// balance.Balancer picks, and the outcome is reported back to it so
// load-aware and health-checking balancers learn. It forwards a request
// the way httputil.ReverseProxy does, step for step (its own copy of those
// steps, cheaper per request; see Cost), and hands protocol switches to a
// ReverseProxy.
//
//	lb := balance.NewRoundRobin()
//	lb.Update([]balance.Backend{{Addr: "10.0.0.7:8080"}, {Addr: "10.0.0.8:8080"}})
//	p, err := httpproxy.New(lb, httpproxy.Config{StickyCookie: "lb"})
//	...
//	http.ListenAndServe(":80", p)
//
// # Picking and reporting
//
// Each request calls Balancer.Pick once per backend it tries, with the key
// Config.Key returns ("" by default; set it to hash on a header or path
// for balance.ConsistentHash), and calls Choice.Done exactly once per
// Choice: nil when the exchange succeeded, an error when it failed as
// Config.IsFailure judges it (by default a transport error or a 5xx
// status). Done is called when the response body has been streamed to the
// client, not when its headers arrive, so in-flight counts and latency
// averages cover the whole exchange; a body cut short by the backend counts
// as a failure.
//
// What the client causes is never charged to a backend: a request body
// that breaks off (shorter than its Content-Length, malformed chunks, the
// client hanging up while it is sent) or a client that goes away before
// the answer is streamed. Such an exchange is reported to Choice.Done with
// an error wrapping balance.ErrAborted, which counts neither as a failure
// nor as a success; it does not move the backend's sticky clients and is
// not retried. Otherwise a client could get healthy backends ejected by
// sending truncated POSTs.
//
// Upgraded connections (101 Switching Protocols, e.g. WebSocket) are
// reported done when the switch succeeds.
//
// # Retries
//
// A request is retried on another backend, at most Config.Retries times
// (default 2), in two cases:
//
//   - its connection was refused or could not be made (a dial error): the
//     backend received nothing, so any request is safe to send again,
//     POST included, as long as its body is intact. The client's body is
//     held back from the failed attempt's transport, never buffered;
//   - it is idempotent (GET, HEAD, OPTIONS or TRACE, or it carries an
//     Idempotency-Key or X-Idempotency-Key header, the convention
//     http.Transport follows for its own retries), its body can be sent
//     again (it has none, or Request.GetBody is set), and the connection
//     closed or reset before a response header arrived. A request that
//     may have reached the backend is never sent twice otherwise.
//
// A response, even a 5xx, is passed to the client as it is, and a
// response-header timeout is not retried: a backend too slow to answer is
// not helped by sending the same work to another one, and retrying
// timeouts multiplies load during overload.
//
// A retry picks again through the balancer and skips backends this request
// already tried; a pick that returns one of them is reported with the
// failure just seen on that backend (it is the truth about it, and it
// speeds up passive health checks) and the balancer is asked again, a
// bounded number of times.
//
// # Sticky sessions
//
// With Config.StickyCookie set, a response carries a cookie naming the
// backend that served it, and later requests with that cookie go to the
// same backend while it is still in the set. The cookie value is an
// opaque keyed hash, base64url(HMAC-SHA256(Secret, Addr)[:16]): it reveals
// neither the address nor the port of the backend, and a client cannot
// forge one for a backend of its choice without the secret. The proxy maps
// cookie values back to backends through a table it learns from the
// backends Pick returns (the Balancer interface has no way to list its
// set), bounded by Config.StickyMaxBackends. Proxies that should honour
// each other's cookies must share Config.Secret; the default secret is
// random per Proxy.
//
// A cookie is honoured only when its MAC is valid (checked with
// hmac.Equal), its backend is in the table, the last connection attempt
// to that backend did not fail, and the balancer still offers the backend.
// Anything else (a garbage, tampered, forged or stale cookie, or a backend
// removed or down) is not an error: the request silently picks through the
// balancer and gets a fresh cookie. An idempotent request whose pinned
// backend fails to connect is retried through the balancer like any other,
// and moves the client to the backend that answered.
//
// With a balance.Pinner (every strategy of package balance, and Health over
// one), a sticky request takes its Choice from PickAddr: it counts in the
// balancer's in-flight and latency statistics and in Health's passive
// checks like any other request, and a backend that was removed or taken
// out by Health fails PickAddr, so its clients re-pick at once. With
// another Balancer, a sticky request goes around it, untracked, and a
// backend counts as offered while Pick has returned it within
// Config.StickyTTL (default one minute).
//
// # Forwarding headers
//
// The outbound request carries X-Forwarded-For, X-Forwarded-Proto and
// X-Forwarded-Host describing the real peer. Values sent by the client are
// discarded unless the direct peer's address is in Config.TrustedProxies:
// only then is an incoming X-Forwarded-For kept and the peer appended to
// it, and an incoming X-Forwarded-Proto or X-Forwarded-Host kept. The
// other headers that carry a client's address (Config.ClientAddrHeaders,
// by default DefaultClientAddrHeaders: X-Real-IP, True-Client-IP,
// X-Client-IP, CF-Connecting-IP, X-Original-Forwarded-For, Fastly-Client-IP
// and more) are likewise removed unless the peer is trusted, and their
// spellings with underscores (X_Real_IP, which CGI-style servers read as
// X-Real-IP) are removed from every request. A client connecting directly
// therefore cannot make a backend believe it comes from another address
// through any of them. The RFC 7239 Forwarded header is always removed.
// The Host header of the inbound request is passed on unchanged.
//
// Hop-by-hop headers (Connection, and every header it names, Keep-Alive,
// Proxy-Authorization, TE, Trailer, Transfer-Encoding, Upgrade except for
// protocol switches) are removed in both directions, as
// httputil.ReverseProxy does.
//
// # Private paths
//
// Paths under Config.PrivatePaths (by default DefaultPrivatePaths:
// /debug/, where balance.LoadReporter serves each clone's load report and
// expvar and net/http/pprof serve theirs) are answered 404 and never
// forwarded, however the client spells them (case, "//", "." and "..",
// percent-encoding). The X-Load header a LoadReporter adds to responses
// is removed too. A clone's load is for the balancers on the private
// network: poll it with balance.LoadProber at the clones' own addresses.
//
// # Timeouts and errors
//
// Config.DialTimeout bounds a connection attempt (default 2 s: backends are
// on a private network, and a dial that takes longer means the backend is
// gone; a retry can still succeed within the client's patience),
// Config.ResponseHeaderTimeout the wait for a response header after the
// request was sent (default 30 s), and Config.Timeout, when set, the whole
// exchange including streaming the response body.
//
// Failures are answered with a fixed, generic body, never a backend
// address or Go error text: 404 "not found" for a private path, 400 "bad
// request" when the client's request
// body broke off, 503 "service unavailable" when the balancer has no
// backend (balance.ErrNoBackend), 504 "gateway timeout" when a timeout
// expired, and 502 "bad gateway" for any other failure to get a response. The details go to Config.ErrorLog.
//
// # Cost
//
// A plain GET through a Proxy with a zero Config, over http.Transport to
// a loopback backend, allocates 75 times and 6.5 KB (BenchmarkProxy/plain,
// the server side being an httptest.ResponseRecorder); through
// httputil.ReverseProxy with a sync.Pool BufferPool and the same Transport
// 86 times and 7.2 KB (BenchmarkHTTPUtil/pool). Most of either is
// net/http's: parsing the request and the response, the Transport's
// connection goroutines. What the Proxy adds costs, per request: the pick
// and its Done (tens of ns for RoundRobin, no allocation), the wrapper of
// the response body that calls Done when it is streamed (one allocation),
// the X-Forwarded-* values (one allocation for the three), the retry rules
// (nothing for a request without a body; a client's body is wrapped to be
// held back for a retry, one allocation). What it leaves out of
// ReverseProxy's steps: a second copy of the request to attach the trace
// of 1xx responses, a closure and mutex of its own, the parse of every
// response's media type (to spot Server-Sent Events) and a copy of every
// response header value.
// BenchmarkParts times the Proxy's own pieces; bench/cmd/proxybench
// measures throughput, latency and CPU time per request under wrk.
//
// # Draining a backend
//
// Removing a backend from the balancer's set (Balancer.Update) stops new
// picks of it at once, while requests already sent to it run to completion
// on their own connections: Update never touches a Choice already made,
// and the proxy holds nothing per backend that an Update could cut. Keep
// the backend running until its in-flight requests finish (and, with
// sticky cookies and a balancer without Contains, for Config.StickyTTL).
package httpproxy
