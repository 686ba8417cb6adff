package pgqueue_test

// Real-time fault tests on real PostgreSQL servers: a worker process
// killed with SIGKILL mid-job, a PostgreSQL restart under load, and a
// standby promoted under load. No duration is asserted, only generous
// deadlines for a hang; each test reports its counts.

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/pgqueue"
	"github.com/scaleout/scaleout/replica"
)

const (
	childMode   = "SCALEOUT_PGQUEUE_CHILD" // "worker"
	childDSN    = "SCALEOUT_PGQUEUE_DSN"
	childPrefix = "SCALEOUT_PGQUEUE_PREFIX"
)

// TestQueueChild is the worker process the kill test runs: it takes jobs
// of queue "faults" with 1 s leases, prints "started <id> <token>" for
// each, hangs on type "slow" and acks the others after 2 ms.
func TestQueueChild(t *testing.T) {
	if os.Getenv(childMode) == "" {
		t.Skip("run by TestWorkerKilledMidJob as a child process")
	}
	db, err := sql.Open("pgx", os.Getenv(childDSN))
	require.NoError(t, err)
	q, err := pgqueue.New(db, pgqueue.Config{Prefix: os.Getenv(childPrefix)})
	require.NoError(t, err)
	ctx := context.Background()
	for {
		d, err := q.Dequeue(ctx, []string{"faults"}, time.Second)
		if err != nil {
			fmt.Println("error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		fmt.Printf("started %s %d\n", d.ID, d.Token)
		if d.Job.Type == "slow" {
			select {} // killed here
		}
		time.Sleep(2 * time.Millisecond)
		if err := d.Ack(ctx, nil); err == nil {
			fmt.Printf("acked %s\n", d.ID)
		}
	}
}

// TestWorkerKilledMidJob: a worker process killed with SIGKILL while it
// holds jobs loses none: each job it held runs again once its lease ran
// out (with a higher fencing token), and every job ends done.
func TestWorkerKilledMidJob(t *testing.T) {
	dsn := testenv.PGPrimaryDSN(t)
	db := testenv.PostgresDB(t, dsn)
	prefix := testPrefix(t, db)
	q := newQueue(t, db, prefix, pgqueue.Config{Backoff: func(int) time.Duration { return 50 * time.Millisecond }}, true)
	ctx := t.Context()
	const n = 300
	var ids []queue.JobID
	for i := range n {
		id, err := q.Enqueue(ctx, queue.Job{Queue: "faults", Type: "fast", Payload: []byte{byte(i)}})
		require.NoError(t, err)
		ids = append(ids, id)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestQueueChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childMode+"=worker", childDSN+"="+dsn, childPrefix+"="+prefix)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	started := map[queue.JobID]uint64{}
	var acked int
	sc := bufio.NewScanner(stdout)
	var slow queue.JobID
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "started" {
			var tok uint64
			fmt.Sscan(f[2], &tok)
			started[queue.JobID(f[1])] = tok
			if queue.JobID(f[1]) == slow {
				break // the child hangs in the slow job's handler
			}
		}
		if len(f) == 2 && f[0] == "acked" {
			acked++
			if acked == n/2 && slow == "" {
				// Mid-run: a slow job the child will hang in.
				slow, err = q.Enqueue(ctx, queue.Job{Queue: "faults", Type: "slow", Priority: 9})
				require.NoError(t, err)
			}
		}
	}
	require.NotEmpty(t, slow, "the child never took the slow job")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	go io.Copy(io.Discard, stdout)

	// This process finishes the queue; the jobs the child held come back
	// after their 1 s lease.
	redelivered := 0
	for {
		d, err := q.Dequeue(ctxFor(t, 3*time.Second), []string{"faults"}, time.Minute)
		if errors.Is(err, context.DeadlineExceeded) {
			break // nothing more comes back: every job must be done
		}
		require.NoError(t, err)
		if tok, ok := started[d.ID]; ok {
			redelivered++
			require.Greater(t, d.Token, tok, "a redelivery has a higher token")
			require.Equal(t, 2, d.Attempt)
		}
		require.NoError(t, d.Ack(ctx, nil))
	}
	for _, id := range append(ids, slow) {
		require.Equal(t, queue.StateDone, status(t, q, id).State, "%s", id)
	}
	t.Logf("jobs %d, acked by the child before SIGKILL %d, redelivered after its leases ran out %d (the slow job among them), lost 0",
		n+1, acked, redelivered)
	require.GreaterOrEqual(t, redelivered, 1)
}

// loadResult counts what a load run saw.
type loadResult struct {
	enqueued, acked, lost, ackedLost, errors int
}

// runLoad enqueues jobs (each with an ID, retried until Enqueue returns
// nil) and works them off with 8 workers while fault runs, then waits for
// every enqueued job to end done. A job whose Enqueue returned nil, or
// whose Ack returned nil, and that is not done at the end, is lost.
func runLoad(t *testing.T, q *pgqueue.Queue, fault func()) loadResult {
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	const producers, workers = 4, 8
	var (
		mu       sync.Mutex
		enqueued []queue.JobID
		acked    = map[queue.JobID]bool{}
		errs     atomic.Int64
	)
	var wg sync.WaitGroup
	producing, cancelProducers := context.WithCancel(ctx)
	for p := range producers {
		wg.Go(func() {
			for i := 0; producing.Err() == nil; i++ {
				j := queue.Job{Queue: "load", Type: "t", ID: fmt.Sprintf("p%d-%d", p, i)}
				for {
					id, err := q.Enqueue(ctx, j)
					if err == nil {
						mu.Lock()
						enqueued = append(enqueued, id)
						mu.Unlock()
						break
					}
					errs.Add(1)
					if ctx.Err() != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	var wwg sync.WaitGroup
	for range workers {
		wwg.Go(func() {
			for ctx.Err() == nil {
				dctx, cancel := context.WithTimeout(ctx, time.Second)
				d, err := q.Dequeue(dctx, []string{"load"}, 2*time.Second)
				cancel()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
						errs.Add(1)
						time.Sleep(20 * time.Millisecond)
					}
					continue
				}
				if err := d.Ack(ctx, nil); err == nil {
					mu.Lock()
					acked[d.ID] = true
					mu.Unlock()
				} else {
					errs.Add(1)
				}
			}
		})
	}
	time.Sleep(time.Second)
	fault()
	time.Sleep(time.Second)
	cancelProducers()
	wg.Wait()
	// Every enqueued job ends done, within a generous bound.
	mu.Lock()
	all := append([]queue.JobID(nil), enqueued...)
	mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	var res loadResult
	for _, id := range all {
		for {
			in, err := q.Status(ctx, id)
			if err == nil && in.State == queue.StateDone {
				break
			}
			if time.Now().After(deadline) {
				res.lost++
				mu.Lock()
				if acked[id] {
					res.ackedLost++
				}
				mu.Unlock()
				t.Errorf("%s: %v %v: lost", id, in.State, err)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stop()
	wwg.Wait()
	res.enqueued, res.acked, res.errors = len(all), len(acked), int(errs.Load())
	return res
}

// durableDSN asks for commits that survive a crash (the test servers run
// with synchronous_commit off).
func durableDSN(dsn string) string { return dsn + "&synchronous_commit=on" }

// TestPostgresRestartUnderLoad: PostgreSQL is killed and restarted while
// producers enqueue and workers ack: no job whose Enqueue or Ack returned
// nil is lost.
func TestPostgresRestartUnderLoad(t *testing.T) {
	pair := testenv.StartPostgresPair(t)
	db := testenv.PostgresDB(t, durableDSN(pair.Primary.DSN()))
	q := newQueue(t, db, "pgq_", pgqueue.Config{}, true)
	res := runLoad(t, q, func() {
		pair.Primary.Kill()
		time.Sleep(500 * time.Millisecond)
		pair.Primary.Start()
	})
	t.Logf("restart: enqueued %d (acknowledged), acked %d, lost %d (acked and lost %d), errors ridden out %d",
		res.enqueued, res.acked, res.lost, res.ackedLost, res.errors)
	require.Zero(t, res.lost)
	require.Positive(t, res.errors, "the restart was not felt")
}

// TestPromotionUnderLoad: the primary is killed and its standby promoted
// while producers enqueue and workers ack through replica.DB: no job whose
// Enqueue or Ack returned nil is lost. Replication is made synchronous
// (synchronous_standby_names = '*'): with asynchronous replication the
// commits of the last moments before the crash are not on the standby,
// whatever the queue does.
func TestPromotionUnderLoad(t *testing.T) {
	pair := testenv.StartPostgresPair(t)
	pdb := testenv.PostgresDB(t, durableDSN(pair.Primary.DSN()))
	sdb := testenv.PostgresDB(t, durableDSN(pair.Standby.DSN()))
	_, err := pdb.ExecContext(t.Context(), "ALTER SYSTEM SET synchronous_standby_names = '*'")
	require.NoError(t, err)
	_, err = pdb.ExecContext(t.Context(), "SELECT pg_reload_conf()")
	require.NoError(t, err)
	r, err := replica.New(replica.Config{Probe: new(replica.PostgreSQL), ProbeInterval: 100 * time.Millisecond},
		replica.Node{Name: "a", DB: pdb}, replica.Node{Name: "b", DB: sdb})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	q := newQueue(t, r.DB(), "pgq_", pgqueue.Config{}, true)
	res := runLoad(t, q, func() {
		pair.Primary.Kill()
		var promoted bool
		require.NoError(t, sdb.QueryRowContext(t.Context(), "SELECT pg_promote()").Scan(&promoted))
		require.True(t, promoted)
	})
	t.Logf("promotion: enqueued %d (acknowledged), acked %d, lost %d (acked and lost %d), errors ridden out %d",
		res.enqueued, res.acked, res.lost, res.ackedLost, res.errors)
	require.Zero(t, res.lost)
	require.Positive(t, res.errors, "the promotion was not felt")
}
