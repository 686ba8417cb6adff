package chaos

import (
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/scaleout/scaleout/queue"
)

// queueHist builds synthetic queue histories for the checker's tests.
type queueHist []porcupine.Operation

const qj = queue.JobID("q/j1")

func (h *queueHist) add(kind string, token uint64, out QueueOut, call, ret int64) *queueHist {
	in := QueueOp{Kind: kind, Job: qj, Token: token, MaxAttempts: 5}
	if kind == "ack" {
		in.Result = queueResult(qj, token)
	}
	*h = append(*h, porcupine.Operation{Input: in, Output: out, Call: call, Return: ret})
	return h
}

var (
	qOK      = QueueOut{Outcome: queueOK}
	qRefused = QueueOut{Outcome: queueRefused}
	qUnknown = QueueOut{Outcome: queueError, Err: "i/o timeout"}
)

func qDone(token uint64) QueueOut {
	return QueueOut{Outcome: queueOK, State: queue.StateDone, Result: queueResult(qj, token), Attempt: int(token)}
}

// queueValid is a job enqueued, delivered twice (the first lease
// superseded: its late Ack refused), acked by the second.
func queueValid() *queueHist {
	h := &queueHist{}
	h.add("enqueue", 0, qOK, 0, 10)
	h.add("deliver", 1, qOK, 20, 20)
	h.add("run", 1, qOK, 21, 21)
	h.add("deliver", 2, qOK, 40, 40)
	h.add("ack", 1, qRefused, 50, 55)
	h.add("ack", 2, qOK, 60, 65)
	h.add("wait", 0, qDone(2), 15, 70)
	h.add("status", 0, qDone(2), 100, 101)
	return h
}

func TestCheckQueueValid(t *testing.T) {
	cases := map[string]*queueHist{
		"superseded and refused": queueValid(),
		"unknown enqueue, never stored": (&queueHist{}).
			add("enqueue", 0, qUnknown, 0, Unknown).
			add("wait", 0, QueueOut{Outcome: queueNotFound}, 5, 6).
			add("status", 0, QueueOut{Outcome: queueNotFound}, 100, 101),
		"unknown enqueue, stored and done": (&queueHist{}).
			add("enqueue", 0, qUnknown, 0, Unknown).
			add("deliver", 1, qOK, 20, 20).
			add("ack", 1, qOK, 30, 31).
			add("status", 0, qDone(1), 100, 101),
		"an Ack of unknown outcome took effect": (&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("ack", 1, qUnknown, 30, Unknown).
			add("status", 0, qDone(1), 100, 101),
		"a Wait not found before its Enqueue returned, one timed out": (&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("wait", 0, QueueOut{Outcome: queueNotFound}, 5, 6).
			add("wait", 0, QueueOut{Outcome: queueTimeout}, 11, 50).
			add("deliver", 1, qOK, 20, 20).
			add("ack", 1, qOK, 30, 31).
			add("status", 0, qDone(1), 100, 101),
		"a Fail, then a retry acked": (&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("fail", 1, qOK, 25, 26).
			add("deliver", 2, qOK, 30, 30).
			add("ack", 2, qOK, 35, 36).
			add("status", 0, qDone(2), 100, 101),
		"dead after its attempts": (&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("status", 0, QueueOut{Outcome: queueOK, State: queue.StateDead, Attempt: 5}, 100, 101),
	}
	for name, h := range cases {
		if v := CheckQueue(*h); v != "" {
			t.Errorf("%s: a valid history was reported:\n%s", name, v)
		}
	}
}

func TestCheckQueueViolations(t *testing.T) {
	cases := map[string]struct {
		h    *queueHist
		want string
	}{
		"an acknowledged job lost": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("status", 0, QueueOut{Outcome: queueNotFound}, 100, 101), "not found once settled"},
		"an acknowledged job never ends": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("status", 0, QueueOut{Outcome: queueOK, State: queue.StateReady, Attempt: 1}, 100, 101), "still ready"},
		"a stored job of unknown enqueue never ends": {(&queueHist{}).
			add("enqueue", 0, qUnknown, 0, Unknown).
			add("status", 0, QueueOut{Outcome: queueOK, State: queue.StateScheduled}, 100, 101), "still scheduled"},
		"the settled status unread": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("status", 0, qUnknown, 100, Unknown), "could not be read"},
		"an Ack of a superseded lease accepted": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("deliver", 2, qOK, 40, 40).
			add("ack", 1, qOK, 50, 55).
			add("status", 0, qDone(1), 100, 101), "Ack of a superseded lease accepted"},
		"delivered again after an accepted Ack": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("ack", 1, qOK, 30, 35).
			add("deliver", 2, qOK, 40, 40).
			add("status", 0, qDone(1), 100, 101), "delivered again after an accepted Ack"},
		"two Acks accepted": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("ack", 1, qOK, 30, 35).
			add("ack", 1, qOK, 36, 37).
			add("status", 0, qDone(1), 100, 101), "2 Acks accepted"},
		"a Fail of a superseded lease accepted": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("deliver", 2, qOK, 40, 40).
			add("fail", 1, qOK, 50, 55).
			add("ack", 2, qOK, 60, 65).
			add("status", 0, qDone(2), 100, 101), "Fail of a superseded lease accepted"},
		"the result of an older token": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("deliver", 2, qOK, 40, 40).
			add("ack", 1, qUnknown, 50, Unknown).
			add("ack", 2, qRefused, 60, 65).
			add("status", 0, qDone(1), 100, 101), "older than the newest delivery"},
		"the result of a refused Ack": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("ack", 1, qRefused, 50, 55).
			add("status", 0, qDone(1), 100, 101), "an Ack that was refused"},
		"a result nobody sent": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("status", 0, qDone(1), 100, 101), "which no Ack sent"},
		"not the accepted Ack's result": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("ack", 1, qOK, 30, 35).
			add("status", 0, QueueOut{Outcome: queueOK, State: queue.StateDone, Result: "other"}, 100, 101), "which no Ack sent"},
		"not the result of the accepted Ack": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("ack", 1, qOK, 30, 35).
			add("deliver", 2, qOK, 40, 40).
			add("ack", 2, qUnknown, 50, Unknown).
			add("status", 0, qDone(2), 100, 101), "but the accepted Ack was"},
		"dead with an accepted Ack": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("deliver", 1, qOK, 20, 20).
			add("ack", 1, qOK, 30, 35).
			add("status", 0, QueueOut{Outcome: queueOK, State: queue.StateDead, Attempt: 5}, 100, 101), "dead, but an Ack was accepted"},
		"dead before its attempts": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("status", 0, QueueOut{Outcome: queueOK, State: queue.StateDead, Attempt: 2}, 100, 101), "dead after 2 attempts of 5"},
		"canceled by nobody": {(&queueHist{}).
			add("enqueue", 0, qOK, 0, 10).
			add("status", 0, QueueOut{Outcome: queueOK, State: queue.StateCanceled}, 100, 101), "nobody asked for"},
		"Wait returns a state that is not final": {queueValid().
			add("wait", 0, QueueOut{Outcome: queueOK, State: queue.StateActive}, 30, 31), "not final"},
		"Wait returns another end": {queueValid().
			add("wait", 0, qDone(1), 30, 80), "but the job ended"},
		"Wait fails while its context is live": {queueValid().
			add("wait", 0, QueueOut{Outcome: queueError, Err: "EOF"}, 30, 31), "Wait failed while its context was live"},
		"Wait finds no job already enqueued": {queueValid().
			add("wait", 0, QueueOut{Outcome: queueNotFound}, 30, 31), "Wait found no job"},
		"a handler ran on an unknown token": {queueValid().
			add("run", 7, qOK, 30, 30), "no Dequeue returned"},
	}
	for name, c := range cases {
		v := CheckQueue(*c.h)
		if !strings.Contains(v, c.want) {
			t.Errorf("%s: want a violation saying %q, got:\n%s", name, c.want, v)
		}
	}
}
