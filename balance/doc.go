// Package balance spreads requests over identical clones of a service.
//
// A Balancer picks a backend for each request and learns from how the
// request went. Strategies, one per file:
//
//   - RoundRobin: each backend in turn; lock-free.
//   - WeightedRoundRobin: smooth weighted turns, no bursts to one backend.
//   - Random: a uniformly random backend.
//   - LeastLoaded: the backend with the fewest requests in flight; a pick
//     does the same work at 10 and at 10,000 busy backends.
//   - P2C: the better of two random backends by in-flight requests and
//     latency (power of two choices).
//   - ConsistentHash: the same key to the same backend, with bounded load.
//   - ZoneAware: prefer the caller's zone, spill over when it runs short.
//
// Health sits in front of any of them and keeps unhealthy backends out,
// decoupled from how they pick: active checks (HTTPCheck, TCPCheck) with
// rise and fall thresholds, passive checks from the outcomes reported to
// Done (consecutive failures, error ratio) with ejection backoff and a
// half-open trial request when an ejection's time is up, a panic
// threshold, and slow start for returning backends.
//
// # Semantics
//
// Pick returns a Choice; the caller calls Done on it when the request ends,
// with the request's error or nil, or an error wrapping ErrAborted when
// the request ended for reasons of the caller's (its client went away or
// sent a broken body), which counts neither for nor against the backend.
// Picks never wait for I/O and never allocate (LeastLoaded over 64 or
// more backends holds a mutex for the few dozen nanoseconds of its bucket
// update).
// Update swaps the backend set atomically while picks go on; a backend keeps
// its statistics (requests in flight, latency) across updates by address,
// and a Choice made before an update reports to them when it is done. An
// empty set makes Pick fail with ErrNoBackend; an invalid set (empty or
// duplicate address, negative weight) makes Update fail with
// ErrInvalidBackend and keep the previous set. Every strategy is also a
// Pinner: PickAddr hands out a given backend (for a sticky session) so that
// the request counts like any other.
//
// Health changes what the inner strategy sees: an ejected or failing
// backend leaves the set the strategy picks from, and comes back through
// slow start. When fewer than PanicThreshold of the backends are healthy,
// Health hands the strategy all of them: a request to a possibly failing
// backend beats overloading the last few healthy ones.
//
// # Lifecycle
//
// Health, DNS and LoadProber work in a loop the caller starts with
// Run(ctx): Run returns when ctx ends, once every goroutine it started has
// ended, and a second Run while one runs returns ErrAlreadyRunning at
// once. Health also holds ejection and slow-start timers, so it has Close:
// Close stops them and any Run in progress, returns once their goroutines
// have ended, and is idempotent; after it, Update and Run return
// ErrClosed, while Pick, PickAddr and Eligible serve the last eligible set
// so that requests in flight during a shutdown still find a backend. The
// strategies hold no goroutine and have no Close.
//
// # Metrics and logs
//
// Health reports a balancer's metrics through HealthConfig.Meter (see
// package observe): picks, requests in flight, errors and latency per
// backend, health transitions, ejections and panic mode, whatever the
// inner strategy; wrap a strategy in Health to measure it. Each backend's
// instruments are bound when Update adds it, so a pick and its Done
// allocate nothing with a Meter or without. Health transitions and panic
// mode are also logged, once each, through HealthConfig.Logger.
package balance
