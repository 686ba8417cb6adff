package session

import (
	"errors"

	"github.com/scaleout/scaleout/observe"
)

// metrics are the Manager's instruments (see package observe), bound by
// NewManager; without a Meter each costs a nil check.
type metrics struct {
	loads, commits, conflicts, mergeRetries, renewals observe.Counter
	storeErrors                                       [4]observe.Counter // by storeOp
}

// A storeOp is what a failed store call was for, the op label of
// scaleout.session.store_errors.
type storeOp uint8

const (
	opLoad storeOp = iota
	opCommit
	opRenew
	opDestroy
)

var storeOps = [...]string{opLoad: "load", opCommit: "commit", opRenew: "renew", opDestroy: "destroy"}

func newMetrics(m observe.Meter) metrics {
	ms := metrics{
		loads:        observe.NewCounter(m, observe.SessionLoads),
		commits:      observe.NewCounter(m, observe.SessionCommits),
		conflicts:    observe.NewCounter(m, observe.SessionConflicts),
		mergeRetries: observe.NewCounter(m, observe.SessionMergeRetries),
		renewals:     observe.NewCounter(m, observe.SessionRenewals),
	}
	for op, name := range storeOps {
		ms.storeErrors[op] = observe.NewCounter(m, observe.SessionStoreErrors, name)
	}
	return ms
}

// errEncode marks a commit that failed before reaching the store.
var errEncode = errors.New("session: encode")

// failed counts err, unless nil, as a failed store call for op. A commit
// that gave up on conflicts or could not encode did not fail in the store.
func (ms *metrics) failed(op storeOp, err error) {
	if err == nil || errors.Is(err, errEncode) || errors.Is(err, ErrConflict) && !errors.Is(err, ErrOutcomeUnknown) {
		return
	}
	ms.storeErrors[op].Inc()
}
