package queue

import (
	"errors"

	"github.com/scaleout/scaleout/observe"
)

// queueMetrics are a Worker's instruments for the jobs of one of its
// queues (see package observe), bound by NewWorker; without a Meter each
// costs a nil check.
type queueMetrics struct {
	started, succeeded, failed, retried, deadLettered, leaseLosses observe.Counter
	duration                                                       observe.Histogram
}

// noMetrics counts nothing: the instruments of a Worker without a Meter,
// and of a delivery from a queue the Worker was not given.
var noMetrics queueMetrics

func newQueueMetrics(m observe.Meter, queue string) *queueMetrics {
	return &queueMetrics{
		started:      observe.NewCounter(m, observe.QueueStarted, queue),
		succeeded:    observe.NewCounter(m, observe.QueueSucceeded, queue),
		failed:       observe.NewCounter(m, observe.QueueFailed, queue),
		retried:      observe.NewCounter(m, observe.QueueRetried, queue),
		deadLettered: observe.NewCounter(m, observe.QueueDeadLettered, queue),
		leaseLosses:  observe.NewCounter(m, observe.QueueLeaseLosses, queue),
		duration:     observe.NewHistogram(m, observe.QueueHandlerDuration, queue),
	}
}

// metricsOf returns the instruments of d's queue.
func (w *Worker) metricsOf(d *Delivery) *queueMetrics {
	if qm, ok := w.metrics[d.Job.Queue]; ok {
		return qm
	}
	return &noMetrics
}

// settled counts the outcome of a settlement call (Ack or Fail) that
// returned err: a lost lease, or ok when the queue accepted it.
func (qm *queueMetrics) settled(err error, ok observe.Counter) {
	switch {
	case err == nil:
		ok.Inc()
	case errors.Is(err, ErrLeaseLost):
		qm.leaseLosses.Inc()
	}
}

// failedAttempt counts a failed attempt whose Fail returned ferr: retried
// or dead-lettered by the rule of the queue package (a permanent error or
// the attempts spent kill the job), when the queue accepted it.
func (qm *queueMetrics) failedAttempt(d *Delivery, cause, ferr error) {
	qm.failed.Inc()
	if !qm.retried.Enabled() {
		return
	}
	maxAttempts := d.Job.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	outcome := qm.retried
	if errors.Is(cause, ErrPermanent) || d.Attempt >= maxAttempts {
		outcome = qm.deadLettered
	}
	qm.settled(ferr, outcome)
}
