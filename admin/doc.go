// Package admin is an operator's page for the primitives of scaleout, an
// http.Handler a service mounts under a prefix of its choosing:
//
//   - queues: depth by state, throughput, handler latency, the oldest
//     ready job, the latest dead letters with buttons to requeue or
//     delete them, and a button to pause and resume the queue;
//   - elections: this process's role, the leader, its fencing token and
//     since when it leads;
//   - balancers: each backend's health, requests in flight and per
//     second, and latency;
//   - replicas: each node's role, lag and whether it serves;
//   - caches: hit ratio, loads, stale serves, evictions;
//
// with charts of the last minutes (depth, throughput, hit ratio, lag,
// requests per backend), drawn by the page itself.
//
// # Fed by the same instrumentation
//
// The panels show what the primitives already report through package
// observe: Handler.Meter(name) returns a Meter that keeps every series in
// memory, to pass in the Configs of the primitives to show (balance,
// cache, failover.RunConfig, replica, httpproxy, queue): each package's
// metrics make a panel of that name. observe.Tee(h.Meter(name), yours)
// feeds a metrics system too. Queue stores are registered with
// Handler.Queues, any queue.Inspector (queue.Memory, queue/redisqueue):
// their counts, dead letters and actions come from it. Electors are
// registered with Handler.Election, for who leads; the metrics of
// failover.Run, through the Meter of the same name, add this process's
// terms and leader changes.
//
// # Lifecycle
//
// New starts nothing. Handler.Run samples the sources every
// Config.Interval for the charts and the rates, on the caller's goroutine,
// until its context ends (the library's rule: see package scaleout).
// Without Run the page shows the current figures but no charts or rates.
//
// # Security
//
// The Handler serves nothing until it is told whom to serve: every request
// goes to Config.Authorize, and with no Authorize set, only requests from
// this machine are served, if Config.AllowLoopback is set (see its
// documentation for what counts as local); otherwise every request is
// refused with 403 and a message that says what to set.
//
// The page loads nothing from elsewhere: its script, style sheet and
// template are embedded in the binary, and it is served with a
// Content-Security-Policy of default-src 'self' and no inline script, and
// may not be framed. The actions (pause, resume, retry, delete) are POSTs
// of JSON guarded against cross-site request forgery by a token bound to a
// SameSite=Strict cookie, sent in a header, and by net/http's
// CrossOriginProtection. Each action is logged with the client's address.
//
// The page shows what the primitives report: backend addresses, node and
// queue names, job IDs and types and the last error of dead jobs, never a
// job's payload or headers, a session ID or a key.
//
// # Mounting
//
// The page uses relative links, so it works under any prefix that ends in
// a slash:
//
//	mux.Handle("/admin/", http.StripPrefix("/admin", h))
//
// A request for the prefix without its slash is redirected to it.
package admin
