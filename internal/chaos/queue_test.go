package chaos

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// queueSettle bounds the drain after the faults healed: a job leased when
// they stopped is delivered again within a lease and a backoff (0.4 s),
// a delayed one within 0.5 s; the rest is room for a loaded machine.
const queueSettle = 10 * time.Second

// queueNames are the queues jobs go to; on a Cluster each is a hash tag
// of its own, so they spread over the nodes.
var queueNames = []string{"qa", "qb", "qc"}

// A queueBackend is a JobQueue per clone, each reaching its server
// through links of its own, with the processes the run may pause and kill.
type queueBackend struct {
	name    string
	queues  []queue.JobQueue
	links   []*testenv.FaultProxy
	procs   []Process
	request func([]byte) bool
}

func queueMemory(t *testing.T) queueBackend {
	m, err := queue.NewMemory(queue.MemoryConfig{Backoff: queueBackoff})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return queueBackend{name: "memory", queues: []queue.JobQueue{m, m, m}}
}

func queueRedis(t *testing.T, c redis.UniversalClient, prefix string) *redisqueue.Queue {
	q, err := redisqueue.New(c, redisqueue.Config{Prefix: prefix, Backoff: queueBackoff})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func queueBackends() []func(t *testing.T) queueBackend {
	return []func(t *testing.T) queueBackend{
		queueMemory,
		// A private redis-server with an append-only file synced on every
		// write: a kill loses nothing a script call acknowledged.
		func(t *testing.T) queueBackend {
			srv := testenv.StartRedis(t, testenv.RedisOptions{AppendOnly: true})
			cs, links := redisClients(t, srv.Addr())
			b := queueBackend{name: "redis (appendfsync always)", links: links, procs: []Process{srv}, request: redisCommand}
			for _, c := range cs {
				b.queues = append(b.queues, queueRedis(t, c, "chaos:"))
			}
			return b
		},
		// The shared Cluster, under a prefix of the test's own (without
		// braces: the queue's name is each key's hash tag), each clone
		// reaching every node through a proxy of its own.
		func(t *testing.T) queueBackend {
			addrs := testenv.RedisClusterAddrs(t)
			testenv.RedisClusterClient(t) // deletes Prefix(t) at the end
			b := queueBackend{name: "redis-cluster", request: redisCommand}
			cs, links := clusterClients(t, addrs)
			b.links = links
			for _, c := range cs {
				b.queues = append(b.queues, queueRedis(t, c, testenv.Prefix(t)))
			}
			return b
		},
	}
}

// runQueueChaos runs the workload on b's queues under b's faults and
// returns the checked history's figures.
func runQueueChaos(t *testing.T, b queueBackend, s uint64, d time.Duration) (ops int, stats, faults, violation string) {
	w := NewQueueWorkload(b.queues, queueNames, s)
	sched := NewSchedule(s, b.links, b.procs, b.request)
	// Faults close together: leases (0.3 s) run out in most of them.
	sched.Quiet = 250 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	workCtx, stopWorkers := context.WithCancel(context.WithoutCancel(t.Context()))
	defer stopWorkers()
	waitWorkers, err := w.StartWorkers(workCtx)
	if err != nil {
		t.Fatal(err)
	}
	driven := make(chan struct{})
	go func() { defer close(driven); w.Drive(ctx) }()
	sched.Run(ctx) // on the test's goroutine: it restarts servers
	<-driven
	settleStart := time.Now()
	left := w.Settle(queueSettle)
	t.Logf("settled in %v, %d jobs not ended", time.Since(settleStart).Round(time.Millisecond), len(left))
	stopWorkers()
	waitWorkers()
	h := w.Verify()
	return len(h), QueueStats(h), sched.String(), CheckQueue(h)
}

// TestQueueChaos runs the queue model on every backend: producers enqueue
// jobs, Workers with short leases run them (and a user of Dequeue acks
// late), waiters Wait on them, while the schedule breaks links and
// servers; then the workers drain the queue and the history must keep
// every clause of the model (queue.go).
func TestQueueChaos(t *testing.T) {
	runModel(t, "queue", queueBackends(), func(b queueBackend) string { return b.name },
		func(t *testing.T, b queueBackend, s uint64, d time.Duration) modelRun {
			ops, stats, faults, violation := runQueueChaos(t, b, s, d)
			t.Logf("operations: %s", stats)
			return modelRun{ops, faults, violation}
		})
}

// queueStaleAccepting is a JobQueue broken in the fencing clause: its
// deliveries' Ack reports success when the queue refused it as stale.
type queueStaleAccepting struct{ queue.JobQueue }

func (q queueStaleAccepting) Dequeue(ctx context.Context, queues []string, lease time.Duration) (*queue.Delivery, error) {
	d, err := q.JobQueue.Dequeue(ctx, queues, lease)
	if err != nil || d == nil {
		return d, err
	}
	return queue.NewDelivery(staleAcceptingSettler{d}, *d), nil
}

type staleAcceptingSettler struct{ orig *queue.Delivery }

func (s staleAcceptingSettler) Ack(ctx context.Context, _ *queue.Delivery, result []byte) error {
	if err := s.orig.Ack(ctx, result); !errors.Is(err, queue.ErrLeaseLost) {
		return err
	}
	return nil // the mutation: a stale Ack "accepted"
}

func (s staleAcceptingSettler) Fail(ctx context.Context, _ *queue.Delivery, cause error) error {
	return s.orig.Fail(ctx, cause)
}

func (s staleAcceptingSettler) Extend(ctx context.Context, d *queue.Delivery, lease time.Duration) error {
	err := s.orig.Extend(ctx, lease)
	d.LeaseUntil = s.orig.LeaseUntil
	return err
}

func (s staleAcceptingSettler) Release(ctx context.Context, _ *queue.Delivery) error {
	return s.orig.Release(ctx)
}

// TestQueueChaosCatchesStaleAcks runs the workload on a memory queue that
// accepts stale Acks: the checker must report them.
func TestQueueChaosCatchesStaleAcks(t *testing.T) {
	b := queueMemory(t)
	for i, q := range b.queues {
		b.queues[i] = queueStaleAccepting{q}
	}
	_, stats, _, violation := runQueueChaos(t, b, 1, min(*duration, 3*time.Second))
	t.Logf("operations: %s", stats)
	if !strings.Contains(violation, "superseded lease accepted") && !strings.Contains(violation, "after an accepted Ack") {
		t.Fatalf("the checker did not report the stale Acks a broken queue accepted; it said: %q", violation)
	}
	t.Logf("the checker said:\n%s", violation)
}
