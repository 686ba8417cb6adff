package chaos

import (
	"math"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Unknown is the return time of an operation whose outcome its client
// could not learn (an error that may hide a success, a timeout): it may
// take effect at any point after its call.
const Unknown = math.MaxInt64

// A History records operations as porcupine.Operations, with times in
// nanoseconds since the history began. It is safe for concurrent use.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

// NewHistory starts a history now.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the current time on the history's clock.
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// At converts a wall-clock time to the history's clock.
func (h *History) At(t time.Time) int64 { return int64(t.Sub(h.start)) }

// Add records an operation of client, called at call and returned at ret
// (Unknown for an operation whose outcome is not known).
func (h *History) Add(client int, input, output any, call, ret int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: input, Output: output, Call: call, Return: ret})
}

// Ops returns the operations recorded so far.
func (h *History) Ops() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...)
}
