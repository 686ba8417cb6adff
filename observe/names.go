package observe

// The metrics of the library, one Desc per row of the package
// documentation's table (a test checks that they agree). A package makes
// its instruments from these, never from a Desc of its own, so that every
// name is here. Adding a metric is compatible; renaming one is not.

func desc(name string, k Kind, unit, description string, labels ...string) Desc {
	return Desc{Name: name, Kind: k, Unit: unit, Description: description, Labels: labels}
}

// balance: the strategies and Health. Label backend is Backend.Addr.
var (
	BalancePicks = desc("scaleout.balance.picks", KindCounter, "{pick}",
		"Backends handed out by Pick and PickAddr.", "backend")
	BalanceInFlight = desc("scaleout.balance.in_flight", KindUpDownCounter, "{request}",
		"Requests picked and not yet Done.", "backend")
	BalanceErrors = desc("scaleout.balance.errors", KindCounter, "{request}",
		"Requests Done with an error other than ErrAborted.", "backend")
	BalanceDuration = desc("scaleout.balance.duration", KindHistogram, "s",
		"Time from Pick to Done of requests not aborted.", "backend")
	BalanceNoBackend = desc("scaleout.balance.no_backend", KindCounter, "{pick}",
		"Picks that failed with ErrNoBackend.")
	BalanceHealthy = desc("scaleout.balance.healthy", KindGauge, "{backend}",
		"1 while Health keeps the backend eligible, 0 while it is down or ejected.", "backend")
	BalanceHealthTransitions = desc("scaleout.balance.health_transitions", KindCounter, "{transition}",
		"Changes of a backend's health; state is the new one: down (active checks failed), ejected (passive checks), up.", "backend", "state")
	BalanceEjections = desc("scaleout.balance.ejections", KindCounter, "{ejection}",
		"Ejections by passive checks, half-open trials that failed included.", "backend")
	BalancePanic = desc("scaleout.balance.panic", KindGauge, "{state}",
		"1 while too few backends are healthy and Health spreads over all of them (panic mode).")
)

// balance/httpproxy. Label class is the status class: 2xx, 3xx, 4xx, 5xx.
var (
	HTTPProxyRequests = desc("scaleout.httpproxy.requests", KindCounter, "{request}",
		"Requests answered by the proxy, by status class.", "class")
	HTTPProxyRetries = desc("scaleout.httpproxy.retries", KindCounter, "{retry}",
		"Requests sent again to another backend after a failed attempt.")
	HTTPProxyUpstreamDuration = desc("scaleout.httpproxy.upstream.duration", KindHistogram, "s",
		"Time from sending a request upstream to its response's header, by backend.", "backend")
)

// balance/httpclient. Label class is the status class (1xx to 5xx) of the
// response the caller got, or error when it got none.
var (
	HTTPClientRequests = desc("scaleout.httpclient.requests", KindCounter, "{request}",
		"Requests through the client-side Transport, by the status class of their response, or error.", "class")
	HTTPClientRetries = desc("scaleout.httpclient.retries", KindCounter, "{retry}",
		"Requests sent again to another backend after a failed attempt.")
)

// session: the Manager. Label op is load, commit, renew or destroy.
var (
	SessionLoads = desc("scaleout.session.loads", KindCounter, "{load}",
		"Session records read from the store for a request.")
	SessionCommits = desc("scaleout.session.commits", KindCounter, "{commit}",
		"Changed sessions written to the store.")
	SessionConflicts = desc("scaleout.session.conflicts", KindCounter, "{conflict}",
		"Commits that found the record changed by another request (compare-and-swap lost).")
	SessionMergeRetries = desc("scaleout.session.merge_retries", KindCounter, "{retry}",
		"Commits written again after merging the other request's changes.")
	SessionRenewals = desc("scaleout.session.renewals", KindCounter, "{renewal}",
		"Sessions given a new ID (RenewToken, login) or a new idle deadline (touch).")
	SessionStoreErrors = desc("scaleout.session.store_errors", KindCounter, "{error}",
		"Store calls that failed, by operation.", "op")
)

// cache: the Loader (cache/querycache and cache/objects report through
// theirs), and Memory. Label tier is local or shared.
var (
	CacheHits = desc("scaleout.cache.hits", KindCounter, "{hit}",
		"Gets answered from the cache, stale serves and cached not-found included, by tier.", "tier")
	CacheMisses = desc("scaleout.cache.misses", KindCounter, "{miss}",
		"Gets that found nothing fresh and usable.")
	CacheLoads = desc("scaleout.cache.loads", KindCounter, "{load}",
		"Calls of the load function, background refreshes included.")
	CacheLoadDuration = desc("scaleout.cache.load.duration", KindHistogram, "s",
		"Time a load function took.")
	CacheLoadErrors = desc("scaleout.cache.load_errors", KindCounter, "{error}",
		"Loads that failed with an error other than ErrNotFound.")
	CacheLeaseWaits = desc("scaleout.cache.lease_waits", KindCounter, "{wait}",
		"Flights that waited for another process to fill the key.")
	CacheStaleServed = desc("scaleout.cache.stale_served", KindCounter, "{hit}",
		"Gets answered with a value past its TTL.")
	CacheRefreshes = desc("scaleout.cache.refreshes", KindCounter, "{refresh}",
		"Background reloads started (XFetch, RefreshStale).")
	CacheErrors = desc("scaleout.cache.errors", KindCounter, "{error}",
		"Calls to the cache store that failed and were answered by the loader (fail open).")
	CacheEvictions = desc("scaleout.cache.evictions", KindCounter, "{eviction}",
		"Entries dropped from a Memory store or the local tier to respect its bounds.")
)

// failover: Run and the Elector's terms as Run sees them.
var (
	FailoverTerms = desc("scaleout.failover.terms", KindCounter, "{term}",
		"Terms this candidate won.")
	FailoverToken = desc("scaleout.failover.token", KindGauge, "{token}",
		"Fencing token of this candidate's current or last term.")
	FailoverLeader = desc("scaleout.failover.leader", KindGauge, "{state}",
		"1 while this candidate leads.")
	FailoverLeaderChanges = desc("scaleout.failover.leader_changes", KindCounter, "{change}",
		"Changes of the leader seen by this candidate, to or from itself included.")
	FailoverSelfFencing = desc("scaleout.failover.self_fencing", KindCounter, "{term}",
		"Terms that ended because this candidate's lease ran out before it could renew it.")
)

// replica: the Router. Label node is the node's Name; role is primary or
// replica.
var (
	ReplicaLag = desc("scaleout.replica.lag", KindGauge, "s",
		"Replication lag of the node at its last probe.", "node")
	ReplicaPrimary = desc("scaleout.replica.primary", KindGauge, "{state}",
		"1 while the node is the primary the router writes to.", "node")
	ReplicaServing = desc("scaleout.replica.serving", KindGauge, "{state}",
		"1 while the node takes reads (healthy and within MaxLag).", "node")
	ReplicaReads = desc("scaleout.replica.reads", KindCounter, "{statement}",
		"Reads routed, by node.", "node")
	ReplicaWrites = desc("scaleout.replica.writes", KindCounter, "{statement}",
		"Writes routed, by node.", "node")
	ReplicaPrimaryFallbacks = desc("scaleout.replica.primary_fallbacks", KindCounter, "{statement}",
		"Reads sent to the primary because no replica could serve them.")
	ReplicaNoPrimary = desc("scaleout.replica.no_primary", KindCounter, "{statement}",
		"Statements that failed with ErrNoPrimary.")
)

// queue: the Worker (started to lease_losses, by the queue of the job),
// the queues' Enqueue (enqueued) and DepthReporter (depth, oldest_age).
// Label queue is the job's queue; state is ready, scheduled, active or
// dead.
var (
	QueueEnqueued = desc("scaleout.queue.enqueued", KindCounter, "{job}",
		"Jobs stored by Enqueue or EnqueueBatch, not counting an Enqueue answered by a job already stored under its ID.", "queue")
	QueueStarted = desc("scaleout.queue.started", KindCounter, "{job}",
		"Deliveries whose handler the Worker started.", "queue")
	QueueSucceeded = desc("scaleout.queue.succeeded", KindCounter, "{job}",
		"Deliveries whose handler returned nil and whose Ack the queue accepted.", "queue")
	QueueFailed = desc("scaleout.queue.failed", KindCounter, "{job}",
		"Attempts whose handler returned an error, panicked or timed out, whatever happens to the job next.", "queue")
	QueueRetried = desc("scaleout.queue.retried", KindCounter, "{job}",
		"Failed attempts the queue accepted and scheduled to run again.", "queue")
	QueueDeadLettered = desc("scaleout.queue.dead_lettered", KindCounter, "{job}",
		"Failed attempts the queue accepted that made the job dead (attempts spent, a permanent error, no handler).", "queue")
	QueueHandlerDuration = Desc{Name: "scaleout.queue.handler.duration", Kind: KindHistogram, Unit: "s",
		Description: "Time a handler, with the Worker's middleware, took to return.", Labels: []string{"queue"},
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800}}
	QueueLeaseLosses = desc("scaleout.queue.lease_losses", KindCounter, "{lease}",
		"Deliveries the Worker found no longer its own (ErrLeaseLost from a heartbeat, an Ack or a Fail).", "queue")
	QueueDepth = desc("scaleout.queue.depth", KindGauge, "{job}",
		"Jobs of the queue in the state at DepthReporter's last poll.", "queue", "state")
	QueueOldestAge = desc("scaleout.queue.oldest_age", KindGauge, "s",
		"How long the oldest ready job had waited at DepthReporter's last poll (QueueCounts.OldestReady); 0 when none is ready.", "queue")
)

// Descs returns the descriptions of every metric of the library, for an
// adapter that registers them up front or a dashboard that lists them.
func Descs() []Desc {
	return []Desc{
		BalancePicks, BalanceInFlight, BalanceErrors, BalanceDuration, BalanceNoBackend,
		BalanceHealthy, BalanceHealthTransitions, BalanceEjections, BalancePanic,
		HTTPProxyRequests, HTTPProxyRetries, HTTPProxyUpstreamDuration,
		HTTPClientRequests, HTTPClientRetries,
		SessionLoads, SessionCommits, SessionConflicts, SessionMergeRetries, SessionRenewals, SessionStoreErrors,
		CacheHits, CacheMisses, CacheLoads, CacheLoadDuration, CacheLoadErrors, CacheLeaseWaits,
		CacheStaleServed, CacheRefreshes, CacheErrors, CacheEvictions,
		FailoverTerms, FailoverToken, FailoverLeader, FailoverLeaderChanges, FailoverSelfFencing,
		ReplicaLag, ReplicaPrimary, ReplicaServing, ReplicaReads, ReplicaWrites,
		ReplicaPrimaryFallbacks, ReplicaNoPrimary,
		QueueEnqueued, QueueStarted, QueueSucceeded, QueueFailed, QueueRetried, QueueDeadLettered,
		QueueHandlerDuration, QueueLeaseLosses, QueueDepth, QueueOldestAge,
	}
}
