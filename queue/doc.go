// Package queue does slow work in the background: a handler enqueues a
// job and answers at once ("your report is being prepared", HTTP 202),
// workers on any machine take jobs from the queue and run them, and
// whoever holds the job's ID learns when it is done (Wait, from any
// process). Periodic jobs precompute work on a schedule ("pre-render the
// front page every hour") without a leader.
//
// # Pieces
//
//   - JobQueue, with Memory (this process: single-process apps and a fake
//     for tests) and queue/redisqueue (Redis, single or Cluster); both
//     pass queue/queuetest.
//   - Worker runs handlers by job type with a concurrency limit, a
//     heartbeat, per-job timeouts, panic recovery and graceful shutdown.
//   - Scheduler enqueues periodic jobs from cron-like schedules.
//   - Type[T] gives a job type a Go payload type and a codec.
//   - Inspector, an optional ability of a queue (Memory and redisqueue
//     have it): counts, pages of jobs, pause and resume, dead letters.
//   - Chainer, another (Memory, redisqueue and pgqueue): a job's Ack and
//     the jobs that follow it (Delivery.Then) in one atomic step.
//   - DepthReporter polls an Inspector's counts into gauges.
//
// # Delivery
//
// At least once. Dequeue leases a job to one worker for a lease; the
// Worker renews it with a heartbeat while the handler runs. When a lease
// runs out (the worker died, hung or was partitioned), the job counts a
// failed attempt and is delivered again after its backoff. A handler may
// therefore run more than once for one job, and must be idempotent, or
// fenced: every delivery carries a fencing token (Delivery.Token) that
// grows with each delivery of the job, which a handler can pass to the
// resources it writes so they refuse an older one. The queue itself
// refuses an Ack, Fail or Extend from a delivery that is no longer
// current (ErrLeaseLost), so a late worker cannot overwrite the result
// of the delivery that replaced it.
//
// A delivery may also give its job back without counting an attempt:
// Release at once (as a Worker shutting down does), Snooze after a delay
// (the job is scheduled, with that RunAt, as a delayed job is). A handler
// asks its Worker to snooze the job by returning SnoozeFor(delay): for a
// job waiting on something not ready yet, retried later without spending
// its MaxAttempts or reaching the dead letters. Snooze is an optional
// ability of a queue (Snoozer; Memory, redisqueue and pgqueue have it),
// ErrUnsupported where it is missing, and then the Worker fails the
// attempt with that reason.
//
// # Chains
//
// A job that calls for another once it is done ("resize, then publish")
// declares it in its handler with Delivery.Then, and the Worker, when the
// handler returns nil, acknowledges the job and enqueues the declared jobs
// in one atomic step (Delivery.AckThen, outside a Worker): they exist if
// and only if the job is done. A step whose delivery is no longer current
// (ErrLeaseLost) enqueues nothing, as its Ack changes nothing, so a job
// run twice (at least once) still makes its next jobs once: only the
// delivery whose Ack is accepted enqueues them, and a failed, canceled or
// snoozed attempt drops what it declared. A step is also safe to run
// again after a lost reply (a client's retry): its next jobs are stored
// once. Each next job is checked before anything changes, and one the
// queue refuses (invalid, too large, its unique key held by another job
// than the acked one, whose key the ack frees for it; its ID holding
// another job) fails the whole step: the Worker then fails the attempt
// with the reason, and retries the job. A next job under an ID that holds
// the same job already is not enqueued again, as an Enqueue retry is not.
// Chaining is an optional ability of a queue (Chainer; Memory, redisqueue
// and pgqueue have it); on a queue without it the step fails with
// ErrUnsupported, changing nothing, and the Worker fails the attempt: it
// never acks then enqueues in two steps that a crash could cut apart.
// redisqueue chains within the acked job's queue only (one script runs
// on one Cluster slot, and a queue's keys are its slot's): a next job of
// another queue is refused with ErrUnsupported, on every topology.
//
// # Failures and retries
//
// A handler's error is a failed attempt: the job is retried after an
// exponential backoff with jitter (DefaultBackoff), until MaxAttempts are
// spent; then it is dead. An error wrapping ErrPermanent (Permanent(err))
// kills the job at once. A panic is a failed attempt whose LastErr names
// the panic's value; its stack goes to the Worker's Logger, never to
// LastErr, which callers may show to their clients. A job whose type has no handler, or whose payload does not
// decode (Type[T]), is dead at once with the reason. Dead jobs stay in the
// dead-letter set (DeadLetters) to be listed, inspected and requeued.
//
// # Order, delays, uniqueness
//
// Within a queue, ready jobs come out by Priority (0–9, higher first),
// then in the order they became ready. Across the queues a Worker serves,
// weights choose the order of each Dequeue (StrictPriority: highest
// weight first, always). RunAt delays a job; a retry is delayed by its
// backoff. A job with a UniqueKey is refused (ErrDuplicate, with the
// first job's ID) while another job with the key is pending, for at most
// UniqueFor. Cancel removes a waiting job, or stops a running one at its
// next heartbeat.
//
// # Enqueue failures and safe retries
//
// A failed Enqueue does not mean "not enqueued". When the connection
// drops or the context ends after the request reached the queue, the job
// may be stored (and will run) while the caller gets an error: the
// outcome is unknown, and a blind retry can make a second job. To retry
// safely, give the job an ID the caller can compute again (Job.ID: an
// order number, a request's idempotency key): Enqueue is idempotent by ID,
// so enqueueing the same Type and Payload under an ID the queue knows
// (pending, or ended within its Retention) is a no-op that returns the
// first job's ID with a nil error. Retry until Enqueue returns nil, and
// every attempt names the same one job. The same ID with another Type or
// Payload is a conflict (ErrDuplicate, with the ID). This is River's
// choice for unique inserts (the existing job, no error) rather than
// asynq's (ErrTaskIDConflict for any existing ID), so that generic retry
// code needs no special case. A job without an ID gets a random one on
// each call, so its retries are not deduplicated.
//
// # Limits
//
// Limits bound a queue across every process at once: how many of its jobs
// may be leased together (Concurrency) and how many may start per second
// (Rate, Burst). They are enforced where jobs are leased, in the queue,
// not by counting in each worker.
//
// # Completion
//
// Status reports a job's state, attempts, last error and result; Wait
// returns when the job has ended (done, dead or canceled), from any
// process, without polling: redisqueue publishes each end over Redis
// pub/sub and reads the status when it subscribes, so an end that came
// first is not missed. Ended jobs are kept for their Retention, then
// forgotten (ErrNotFound).
//
// # Headers and middleware
//
// Job.Headers carry metadata beside the payload, from the code that
// enqueues to the handler that runs the job: a W3C traceparent and
// tracestate, a request ID, a tenant. The queue stores them with the job
// (redisqueue in the job's hash; jobs stored before headers existed have
// none) and hands a copy to every delivery, retries and requeues
// included, and to Status. They are small by rule: keys of 1 to
// MaxHeaderKey bytes of [A-Za-z0-9._-], case-sensitive, values valid
// UTF-8, MaxHeaderBytes (8 KiB) of keys and values in all, beyond which
// Enqueue fails with ErrHeadersTooLarge (a bad key or value is
// ErrInvalidJob). The map is an OpenTelemetry carrier as it is
// (propagation.MapCarrier), and propagators write lowercase keys.
//
// WorkerConfig.Middleware wraps every handler in functions of type
// Middleware (func(Handler) Handler), the first outermost, so that what a
// middleware puts in the context (from the headers: a span, a request ID,
// a logger) the ones inside it and the handler see. The chain is built
// once per handler, when Handle registers it, and runs once per delivery,
// inside the Worker's panic recovery and the job's timeout; jobs of a
// type with no handler run through it too. What it returns settles the
// job as a handler's error does. ExampleMiddleware carries a request ID
// from an HTTP handler to the job's handler.
//
// # Metrics and tracing
//
// Metrics go through package observe (its documentation lists each one's
// name, unit and labels; every series is by queue), counted where each
// event happens:
//
//   - Enqueued jobs, by the queue that stores them: the Meter of
//     MemoryConfig, redisqueue.Config or pgqueue.Config
//     (scaleout.queue.enqueued). A backend is what knows whether an
//     Enqueue stored a job or named one already stored under its ID (a
//     retry, or a Scheduler on another machine that enqueued the slot
//     first), which is not counted again; a wrapper around the JobQueue
//     could not tell, and would hide the queue's optional interfaces
//     (Inspector, BatchEnqueuer) from whoever holds it.
//   - What the Worker does with each delivery, by WorkerConfig.Meter, with
//     the instruments of each queue of WorkerConfig.Queues bound by
//     NewWorker: started, then one of succeeded (the handler returned nil
//     and the Ack was accepted, with its Then jobs) or failed (an error, a
//     panic, a timeout, no handler, or Then jobs the queue refused), a failure then retried or dead-lettered as the queue
//     accepted it; the handler's duration, its middleware included; and
//     lease_losses, deliveries found no longer the Worker's (by a
//     heartbeat, an Ack or a Fail refused with ErrLeaseLost), which are
//     neither succeeded nor failed. A delivery canceled (Cancel), cut
//     off by shutdown and released, or snoozed (SnoozeFor), is only
//     started; a Snooze refused with ErrLeaseLost is a lease loss.
//   - How many jobs wait, by state, and how long the oldest ready one has
//     waited: a property of the queue, not of any process, polled from an
//     Inspector by a DepthReporter (scaleout.queue.depth,
//     scaleout.queue.oldest_age). Run one, or aggregate with max.
//
// With no Meter, the default, each costs a nil check, and a job's round
// through a Worker allocates the same with a Meter and without.
//
// Traces cross the queue in Job.Headers. With OpenTelemetry,
// observe/otelobserve's InjectJob writes the enqueuing request's trace
// context into a job's headers, and its JobMiddleware, first in
// WorkerConfig.Middleware, runs each delivery in a consumer span that is
// a child of the request's span, in whichever process the job runs, with
// the job's queue, type and attempt and the handler's error
// (otelobserve.ExampleJobMiddleware).
//
// The Worker, the Scheduler and the DepthReporter log through their
// Config's Logger, slog.Default() when nil, as every package of the
// library does.
//
// # Inspecting and steering a queue
//
// An Inspector (Memory, redisqueue) reports a queue's counts by state
// (ready, scheduled, active and dead now; running totals of done and
// canceled jobs; how long the oldest ready job has waited; whether it is
// paused), lists its ready, scheduled, active or dead jobs page by page
// with a cursor that skips no job that stayed in its state, pauses and
// resumes it, and requeues or deletes its dead letters, one or all.
// Ended jobs are kept only for Status, not indexed, so they are counted
// as totals and not listed. A paused queue is not leased by any
// process's Dequeue (on Redis the flag lives with the queue's limits,
// read by every Dequeue, so it holds across processes and restarts) until
// Resume, which wakes the blocked Dequeues; Enqueue goes on storing its
// jobs. Cancel is JobQueue.Cancel. Each implementation states each call's
// cost: none reads more of the queue than a page and the place where its
// cursor left off (redisqueue: no keyspace scan, one script on the
// queue's own keys, O(1) counts, O(log N + page) pages of sorted sets).
//
// # Periodic jobs
//
// A Scheduler enqueues each slot of a schedule as a job whose ID names the
// slot. Every machine may run a Scheduler with the same schedules: the
// first to enqueue a slot wins, and the others' Enqueues name the same job
// (no error, as a retry) or get ErrDuplicate, so each slot runs once with
// no leader to elect. A Scheduler that starts late
// enqueues the current slot (within MaxDelay) but never replays the slots
// it missed.
//
// Schedules are cron lines (ParseSchedule), read in the Scheduler's
// Location or a zone of the spec's own ("CRON_TZ=Europe/Paris 0 9 * * *"),
// or any Schedule through AddSchedule (a robfig/cron schedule, with
// seconds). Across daylight-saving changes a fixed-time job ("30 2 * * *")
// runs once every day, at the end of the gap when its time is skipped, and
// a wildcard one ("*/15 * * * *") follows real time; see
// ParseScheduleInLocation.
//
// # Lifecycle and shutdown
//
// Worker and Scheduler work in a loop the caller starts with Run(ctx); a
// second Run while one runs returns ErrAlreadyRunning at once, and their
// constructors start nothing. Worker.Run returns when its context ends,
// after it stopped dequeuing, let running handlers finish for
// ShutdownTimeout, cancelled the rest and released their jobs for
// redelivery (no attempt counted). No goroutine it started outlives it.
//
// The queues have Close: it wakes blocked Dequeue and Wait calls, releases
// what the queue holds (Memory's wake-up timer, redisqueue's subscription
// and batched Enqueues), and returns once the queue's goroutines have
// ended. It is idempotent, never closes the client passed in, and after it
// every method returns ErrClosed.
package queue
