// Package observe is how every package of scaleout reports what it does:
// counters, up-down counters, gauges and histograms, made through a Meter
// that the user passes in a package's Config and that an adapter connects
// to a metrics system. It depends on the standard library only; the
// adapters are modules of their own, so a service that wants none pays
// nothing: observe/otelobserve (OpenTelemetry's metric API) and
// observe/promobserve (Prometheus's client_golang). Recorder keeps the
// figures in memory, as a fake for tests; Tee reports to several Meters at
// once (a metrics system and the page of package admin).
//
// # Instruments are bound once
//
// A package makes each instrument once, with its label values bound, when
// it is built or when the thing measured appears: a balancer makes the
// picks counter of backend 10.0.0.7:8080 when that backend is added, and a
// pick then costs one call on that counter. This is how both systems want
// to be fed on a hot path: Prometheus's CounterVec.WithLabelValues once and
// Counter.Inc after, OpenTelemetry's attribute set computed once and passed
// with every Add. No label is looked up, no map is hashed and nothing is
// allocated per pick or per cache hit.
//
// The instrument types (Counter, UpDownCounter, Gauge, Histogram) are
// small values whose zero value does nothing: with a nil Meter, the
// default, an instrumented call costs a nil check and allocates nothing.
//
// Labels have bounded values (a backend's address, a node's name, a status
// class), never a key, a session ID or a user: a series per value would
// grow without end. Instances are told apart by the Meter: give each
// balancer, cache or elector whose figures must stay apart a Meter with
// constant labels of its own (otelobserve.WithAttributes,
// promobserve.WithConstLabels), rather than every metric a label for it.
// The series of a backend or node that was removed stay at their last
// values, as a counter must not go back.
//
// # Events are counters and log records
//
// Events (a backend ejected or back, panic mode, a leader change, a lost
// lease, a session conflict) are counted by a counter of the table below
// and told, with their details, in one record of the package's
// *slog.Logger (its Config.Logger; see the logging rule in the package
// documentation of scaleout). There is no separate event hook: the counter
// gives rates and alerts, the log record says which backend and why, a
// slog.Handler already is the typed hook a user can filter on, and one
// path less means one thing less to keep consistent. States that a panel
// shows (healthy, leader, primary) are gauges.
//
// # Names
//
// Names follow OpenTelemetry's conventions: dotted, scaleout.<package>.<what>,
// the unit in Desc.Unit (UCUM: s for seconds; a count of things as an
// annotation such as {pick}), no _total. PrometheusName maps them to the
// names Prometheus shows. Every metric of the library is a Desc variable of
// this package and a row of this table; a test checks that they agree.
//
//	name                                   kind           unit         labels               Prometheus
//	scaleout.balance.picks                 counter        {pick}       backend              scaleout_balance_picks_total
//	scaleout.balance.in_flight             updowncounter  {request}    backend              scaleout_balance_in_flight
//	scaleout.balance.errors                counter        {request}    backend              scaleout_balance_errors_total
//	scaleout.balance.duration              histogram      s            backend              scaleout_balance_duration_seconds
//	scaleout.balance.no_backend            counter        {pick}       -                    scaleout_balance_no_backend_total
//	scaleout.balance.healthy               gauge          {backend}    backend              scaleout_balance_healthy
//	scaleout.balance.health_transitions    counter        {transition} backend, state       scaleout_balance_health_transitions_total
//	scaleout.balance.ejections             counter        {ejection}   backend              scaleout_balance_ejections_total
//	scaleout.balance.panic                 gauge          {state}      -                    scaleout_balance_panic
//	scaleout.httpproxy.requests            counter        {request}    class                scaleout_httpproxy_requests_total
//	scaleout.httpproxy.retries             counter        {retry}      -                    scaleout_httpproxy_retries_total
//	scaleout.httpproxy.upstream.duration   histogram      s            backend              scaleout_httpproxy_upstream_duration_seconds
//	scaleout.httpclient.requests           counter        {request}    class                scaleout_httpclient_requests_total
//	scaleout.httpclient.retries            counter        {retry}      -                    scaleout_httpclient_retries_total
//	scaleout.session.loads                 counter        {load}       -                    scaleout_session_loads_total
//	scaleout.session.commits               counter        {commit}     -                    scaleout_session_commits_total
//	scaleout.session.conflicts             counter        {conflict}   -                    scaleout_session_conflicts_total
//	scaleout.session.merge_retries         counter        {retry}      -                    scaleout_session_merge_retries_total
//	scaleout.session.renewals              counter        {renewal}    -                    scaleout_session_renewals_total
//	scaleout.session.store_errors          counter        {error}      op                   scaleout_session_store_errors_total
//	scaleout.cache.hits                    counter        {hit}        tier                 scaleout_cache_hits_total
//	scaleout.cache.misses                  counter        {miss}       -                    scaleout_cache_misses_total
//	scaleout.cache.loads                   counter        {load}       -                    scaleout_cache_loads_total
//	scaleout.cache.load.duration           histogram      s            -                    scaleout_cache_load_duration_seconds
//	scaleout.cache.load_errors             counter        {error}      -                    scaleout_cache_load_errors_total
//	scaleout.cache.lease_waits             counter        {wait}       -                    scaleout_cache_lease_waits_total
//	scaleout.cache.stale_served            counter        {hit}        -                    scaleout_cache_stale_served_total
//	scaleout.cache.refreshes               counter        {refresh}    -                    scaleout_cache_refreshes_total
//	scaleout.cache.errors                  counter        {error}      -                    scaleout_cache_errors_total
//	scaleout.cache.evictions               counter        {eviction}   -                    scaleout_cache_evictions_total
//	scaleout.failover.terms                counter        {term}       -                    scaleout_failover_terms_total
//	scaleout.failover.token                gauge          {token}      -                    scaleout_failover_token
//	scaleout.failover.leader               gauge          {state}      -                    scaleout_failover_leader
//	scaleout.failover.leader_changes       counter        {change}     -                    scaleout_failover_leader_changes_total
//	scaleout.failover.self_fencing         counter        {term}       -                    scaleout_failover_self_fencing_total
//	scaleout.replica.lag                   gauge          s            node                 scaleout_replica_lag_seconds
//	scaleout.replica.primary               gauge          {state}      node                 scaleout_replica_primary
//	scaleout.replica.serving               gauge          {state}      node                 scaleout_replica_serving
//	scaleout.replica.reads                 counter        {statement}  node                 scaleout_replica_reads_total
//	scaleout.replica.writes                counter        {statement}  node                 scaleout_replica_writes_total
//	scaleout.replica.primary_fallbacks     counter        {statement}  -                    scaleout_replica_primary_fallbacks_total
//	scaleout.replica.no_primary            counter        {statement}  -                    scaleout_replica_no_primary_total
//	scaleout.queue.enqueued                counter        {job}        queue                scaleout_queue_enqueued_total
//	scaleout.queue.started                 counter        {job}        queue                scaleout_queue_started_total
//	scaleout.queue.succeeded               counter        {job}        queue                scaleout_queue_succeeded_total
//	scaleout.queue.failed                  counter        {job}        queue                scaleout_queue_failed_total
//	scaleout.queue.retried                 counter        {job}        queue                scaleout_queue_retried_total
//	scaleout.queue.dead_lettered           counter        {job}        queue                scaleout_queue_dead_lettered_total
//	scaleout.queue.handler.duration        histogram      s            queue                scaleout_queue_handler_duration_seconds
//	scaleout.queue.lease_losses            counter        {lease}      queue                scaleout_queue_lease_losses_total
//	scaleout.queue.depth                   gauge          {job}        queue, state         scaleout_queue_depth
//	scaleout.queue.oldest_age              gauge          s            queue                scaleout_queue_oldest_age_seconds
//
// Labels: backend is balance.Backend.Addr; state is down, ejected or up
// (balance) or ready, scheduled, active or dead (queue); class is 2xx,
// 3xx, 4xx or 5xx (httpclient's also 1xx, and error for a request that got
// no response); op is load, commit, renew or destroy; tier is local or
// shared; node is the replica node's Name; queue is the job queue's name.
//
// # Instrumenting a package
//
// A package that reports:
//
//  1. adds its metrics as Desc variables in names.go, to Descs and to the
//     table above;
//  2. takes Meter observe.Meter in its Config (nil: off) and, where it
//     logs, Logger *slog.Logger (nil: slog.Default());
//  3. makes its instruments with NewCounter, NewUpDownCounter, NewGauge
//     and NewHistogram when it is built or the thing measured appears,
//     keeping them in the struct that the hot path already holds, and
//     calls their methods on the hot path; it reads the clock for a
//     histogram only when Histogram.Enabled;
//  4. counts each event and logs it once, with no session ID, secret or
//     key in the record;
//  5. tests a known workload against a Recorder, asserting the figures, and
//     keeps its hot path at zero allocations with a Meter and without
//     (testing.AllocsPerRun).
package observe
