// Package httpclient balances HTTP requests on the client side: Transport
// is an http.RoundTripper that sends each request to a backend a
// balance.Balancer picks, so that a service calls another's clones
// directly, with no proxy in between, through a plain http.Client:
//
//	lb, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{
//		Check: balance.HTTPCheck("/healthz"), Interval: time.Second,
//	})
//	...
//	defer lb.Close()
//	go lb.Run(ctx) // active health checks
//	dns, err := balance.NewDNS(balance.DNSConfig{Name: "users.internal", Port: 8080, Target: lb})
//	...
//	go dns.Run(ctx) // the clones' addresses, kept current
//	t, err := httpclient.New(lb, httpclient.Config{Host: "users"})
//	...
//	client := &http.Client{Transport: t}
//	resp, err := client.Get("http://users/api/profile/42")
//
// The request's URL names the service; each attempt replaces its host by
// the chosen backend's address, while the Host header stays the one the
// request says (Request.Host, or else the URL's host), as if the service's
// name had resolved to that backend. Config.Host limits balancing to the
// requests for one host: the others (a redirect to another site, say) go
// out through Config.Base as they are. The Transport keeps no backend set
// of its own: whatever updates the balancer (balance.DNS, a
// discovery client calling Update) steers the requests.
//
// # Picking and reporting
//
// Each request calls Balancer.Pick once per backend it tries, with the key
// Config.Key returns ("" by default; HeaderKey and CookieKey take it from
// a header or a cookie, for balance.ConsistentHash, which then sends the
// requests of one key to the same backend while it is in the set), and
// calls Choice.Done exactly once per Choice: nil when the exchange
// succeeded, an error when it failed as Config.IsFailure judges it (by
// default an error, or a status of 500 or more). Done is called when the
// response body ends (its EOF, or its Close, whichever is first), not when
// the header arrives, so in-flight counts and latency averages (P2C,
// LeastLoaded) cover the whole exchange, and Health's passive checks see
// every outcome; a body cut short by the backend counts as a failure. A
// request the caller cancels (its context) is reported with
// balance.ErrAborted, which counts neither way; a deadline of the
// caller's that expires counts as a failure of the backend that did not
// answer in time. A 5xx response is returned to the caller as it is, and
// only the balancer hears of it as a failure (ErrBackendStatus).
//
// # Retries
//
// A failed attempt is retried on another backend, at most Config.Retries
// times (default 2), under the same rules as balance/httpproxy (the code
// is shared):
//
//   - its connection was refused or could not be made (a dial error): the
//     backend received nothing, so any request is safe to send again,
//     POST included, as long as its body is intact: a body with
//     Request.GetBody (http.NewRequest sets it for bytes, strings and
//     their readers) is replayed from a fresh copy; any other body is held
//     back from the failed attempt, never buffered, and goes with the next
//     attempt when no byte of it was read;
//   - it is idempotent (GET, HEAD, OPTIONS or TRACE, or it carries an
//     Idempotency-Key or X-Idempotency-Key header), its body can be
//     replayed (none, or GetBody), and the connection closed or reset
//     before a response header arrived, or (with Config.AttemptTimeout)
//     the attempt timed out. A request that may have reached the backend
//     is never sent twice otherwise.
//
// A response, even a 5xx, is never retried. A retry picks again through
// the balancer and skips the backends this request already tried; a pick
// that returns one of them is reported with the failure just seen on it
// and the balancer is asked again, a bounded number of times. The error a
// request fails with is the last attempt's, and names its backend.
//
// # Timeouts
//
// Config.AttemptTimeout bounds each attempt up to its response header,
// and lets an idempotent request try another backend when one is too slow
// to answer; the caller's context (or http.Client.Timeout) bounds the
// whole request, retries and body included. The Transport's own Base
// bounds a connection attempt by Config.DialTimeout (default 2 s).
//
// # Lifecycle and logs
//
// A Transport starts no goroutine; its only resources are Base's idle
// connections, which CloseIdleConnections (called by
// http.Client.CloseIdleConnections) closes. The balancer, the health
// checks and the discovery that feed it are the caller's to run and to
// close. Failed attempts that are retried are logged at Debug through
// Config.Logger (method, path, backend and error, never a query, a header
// or a body); the request's final error is the caller's to handle.
package httpclient
