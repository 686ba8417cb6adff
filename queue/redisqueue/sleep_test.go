package redisqueue_test

// Real-time test in this file: TestIdleDequeuesShareOneBlock (how many
// connections of a real client's pool idle Dequeues hold); it samples the
// pool, and its one bound is a generous wait against a hang.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
	"github.com/scaleout/scaleout/queue/redisqueue"
)

// Idle Dequeues of one queue hold one connection of the client's pool
// between them, not one each: 16 workers on a pool of 4 leave the client
// to its other users (an Elector renewing its lease on the same client
// waited for a connection until a BLPOP timed out, and lost its term).
// Every one of them still gets a job once jobs come.
func TestIdleDequeuesShareOneBlock(t *testing.T) {
	clients := map[string]func(t *testing.T) redis.UniversalClient{
		"single": func(t *testing.T) redis.UniversalClient {
			testenv.RedisClient(t) // deletes Prefix(t) at the end
			return redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t), PoolSize: 4, ContextTimeoutEnabled: true})
		},
		"cluster": func(t *testing.T) redis.UniversalClient {
			testenv.RedisClusterClient(t) // deletes Prefix(t) at the end
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.RedisClusterAddrs(t), PoolSize: 4, ContextTimeoutEnabled: true})
		},
	}
	for name, client := range clients {
		t.Run(name, func(t *testing.T) {
			rdb := client(t)
			t.Cleanup(func() { _ = rdb.Close() })
			q := newQueue(t, rdb, redisqueue.Config{})
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()

			const workers = 16
			got := make(chan *queue.Delivery, workers)
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					d, err := q.Dequeue(ctx, []string{"idle"}, time.Minute)
					if err == nil {
						got <- d
					}
				})
			}
			defer wg.Wait()
			defer cancel()

			// Sample the connections in use over two BLPOP timeouts: at
			// most one blocks; the others are the lease scripts of the
			// Dequeues that look again after each timeout.
			time.Sleep(300 * time.Millisecond)
			var held []int
			for range 40 {
				s := rdb.PoolStats()
				held = append(held, int(s.TotalConns-s.IdleConns))
				time.Sleep(50 * time.Millisecond)
			}
			one := 0
			for _, n := range held {
				if n <= 1 {
					one++
				}
			}
			require.GreaterOrEqual(t, one, len(held)*3/4,
				"connections in use while %d Dequeues idled on a pool of 4, sampled every 50 ms: %v", workers, held)

			for range workers {
				_, err := q.Enqueue(ctx, queue.Job{Queue: "idle", Type: "x"})
				require.NoError(t, err)
			}
			for i := range workers {
				select {
				case d := <-got:
					require.NoError(t, d.Ack(ctx, nil))
				case <-time.After(10 * time.Second):
					t.Fatalf("%d of %d idle Dequeues got a job", i, workers)
				}
			}
		})
	}
}
