package redisqueue

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/internal/redisha"
)

// giveBackTimeout bounds a give-back, its retries through a master switch
// included; Close waits for the give-backs in flight at most this long.
const giveBackTimeout = 2 * time.Second

// giveBack undoes, in the background, whatever lease the failed Dequeue
// call nonce may have taken on the queue of k (its script may have run
// with the reply lost, or may still reach Redis: see "Dequeue records"
// in scripts.go), so that the job is ready again at once instead of at
// the end of its lease, its attempt not counted. The caller returns its
// error without waiting; Close waits for the give-back. After Close it
// runs before giveBack returns.
func (q *Queue) giveBack(k qkeys, nonce string) {
	q.enqMu.Lock()
	if q.isClosed() {
		q.enqMu.Unlock()
		q.runGiveBack(k, nonce)
		return
	}
	q.giveBacks.Add(1) // under enqMu, with the Queue seen open: see Close
	q.enqMu.Unlock()
	go func() {
		defer q.giveBacks.Done()
		q.runGiveBack(k, nonce)
	}()
}

// runGiveBack runs giveBackScript, retried through a switch within
// giveBackTimeout. It waits for no replica: a give-back lost in a
// failover leaves the lease to run out, as without it.
func (q *Queue) runGiveBack(k qkeys, nonce string) {
	ctx, cancel := context.WithTimeout(context.Background(), giveBackTimeout)
	defer cancel()
	_, _ = q.runWith(ctx, 0, giveBackScript, []string{k.active, k.lim, k.wake}, k.base, nonce)
}

// readJob reads a job hash, retried through a switch. With WaitReplicas it
// reads the master (redisha.MasterRead): after a Sentinel failover a
// client may reach the old master, demoted, and read a state older than
// writes the replicas confirmed.
func (q *Queue) readJob(ctx context.Context, key string) (map[string]string, error) {
	return redisha.Value(ctx, q.rdb, func(ctx context.Context) (map[string]string, error) {
		if q.replicas == 0 {
			return q.rdb.HGetAll(ctx, key).Result()
		}
		var cmd *redis.MapStringStringCmd
		if _, err := redisha.MasterRead(ctx, q.rdb, key, func(p redis.Pipeliner) { cmd = p.HGetAll(ctx, key) }); err != nil {
			return nil, err
		}
		return cmd.Result()
	})
}
