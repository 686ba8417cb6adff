package rediscache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/internal/testenv"
)

// cacheProc is one process of a farm: its own client, Invalidator and Loader with
// a local tier that keeps entries for an hour, so that only invalidations keep it
// fresh.
type cacheProc struct{ l *cache.Loader[int] }

func newCacheProc(t *testing.T, c redis.UniversalClient) cacheProc {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := rediscache.New(c, rediscache.Config{Prefix: "fo:"})
	require.NoError(t, err)
	inv, err := rediscache.NewInvalidator(ctx, c, rediscache.InvalidatorConfig{Channel: "fo-inv"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = inv.Close() })
	l, err := cache.NewLoader(rc, cache.LoaderConfig[int]{LocalTTL: time.Hour, Invalidator: inv, CacheTimeout: 2 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return cacheProc{l}
}

// staleAllowance: a read that starts this long after a write was acknowledged must
// see it (pub/sub delivers in milliseconds; a resubscription after a switch drops
// the local tier).
const staleAllowance = time.Second

// cacheWorkload: a writer process sets keys in turn to a new version of the source
// of truth, a reader process reads them; a read that returns a version older than
// one acknowledged staleAllowance before it started is stale: an invalidation or a
// Set lost in the switch.
type cacheWorkload struct {
	writer, reader cacheProc
	keys           []string
	mu             sync.Mutex
	source         map[string]int // the source of truth
	acked          map[string]ack // the last acknowledged Set of each key
	stale          map[string]int // key → stale reads
	maxStale       time.Duration  // the oldest acknowledged write a read missed
	reads, writes  int
	failed         []error
	stop           atomic.Bool
	wg             sync.WaitGroup
	kill, first    atomic.Int64
}

type ack struct {
	v  int
	at time.Time
}

func (w *cacheWorkload) start() {
	w.wg.Go(func() {
		for round := 1; !w.stop.Load(); round++ {
			for _, k := range w.keys {
				if w.stop.Load() {
					return
				}
				w.mu.Lock()
				w.source[k] = round
				w.mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				err := w.writer.l.Set(ctx, k, round, time.Hour)
				cancel()
				w.mu.Lock()
				if err != nil {
					w.failed = append(w.failed, err)
				} else {
					w.writes++
					w.acked[k] = ack{round, time.Now()}
					if w.kill.Load() != 0 {
						w.first.CompareAndSwap(0, time.Now().UnixNano())
					}
				}
				w.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}
	})
	w.wg.Go(func() {
		for !w.stop.Load() {
			k := w.keys[rand.N(len(w.keys))]
			start := time.Now()
			w.mu.Lock()
			a := w.acked[k]
			w.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			v, err := w.reader.l.Get(ctx, k, time.Hour, func(context.Context) (int, error) {
				w.mu.Lock()
				defer w.mu.Unlock()
				return w.source[k], nil
			})
			cancel()
			w.mu.Lock()
			switch {
			case err != nil:
				w.failed = append(w.failed, err)
			case a.v > v && start.Sub(a.at) > staleAllowance:
				w.stale[k]++
				w.maxStale = max(w.maxStale, start.Sub(a.at))
			}
			w.reads++
			w.mu.Unlock()
		}
	})
}

const opTimeout = 20 * time.Second

// waitRewritten waits until every key has a Set acknowledged after since.
func (w *cacheWorkload) waitRewritten(t *testing.T, since time.Time) {
	t.Helper()
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, k := range w.keys {
			if !w.acked[k].at.After(since) {
				return false
			}
		}
		return true
	}, time.Minute, 10*time.Millisecond, "every key Set again after the switches")
}

func (w *cacheWorkload) killed() {
	w.first.Store(0)
	w.kill.Store(time.Now().UnixNano())
}

func (w *cacheWorkload) killToFirst() time.Duration {
	k, f := w.kill.Swap(0), w.first.Load()
	if k == 0 || f == 0 {
		return -1
	}
	return time.Duration(f - k)
}

// TestFailover: a writer and a reader process through testenv.Failovers()
// switches (SCALEOUT_FAILOVERS, 2 by default: a forced one and a killed master),
// on Sentinel and on a Cluster. No call fails within its deadline and no key is
// stale once the switches are over; the stale reads meanwhile (a lost invalidation
// or Set) are logged, not asserted: the cache has no durable mode.
func TestFailover(t *testing.T) {
	t.Parallel()
	for _, topo := range []string{"sentinel", "cluster"} {
		t.Run(topo, func(t *testing.T) {
			t.Parallel()
			var client func() redis.UniversalClient
			var sw testenv.Switcher
			if topo == "sentinel" {
				g := testenv.StartSentinelGroup(t, testenv.SentinelGroupOptions{})
				client = func() redis.UniversalClient { return g.Client(t) }
				sw = g.Switcher()
			} else {
				cl := testenv.StartCluster(t, testenv.ClusterOptions{})
				client = func() redis.UniversalClient { return cl.Client(t) }
				sw = cl.Switcher("fo:k0") // the shard of the first key; the others spread
			}
			w := &cacheWorkload{
				writer: newCacheProc(t, client()), reader: newCacheProc(t, client()),
				source: map[string]int{}, acked: map[string]ack{}, stale: map[string]int{},
			}
			for i := range 200 {
				w.keys = append(w.keys, fmt.Sprint("k", i))
			}
			w.start()
			var delays []time.Duration
			testenv.RunSwitches(sw, time.Second, w.killed, func() {
				time.Sleep(300 * time.Millisecond)
				delays = append(delays, w.killToFirst())
			})
			// A Set a killed master acknowledged and lost leaves its key
			// stale until the key's next Set (the cache has no durable
			// mode), so the check waits for one Set of every key after the
			// last switch, stops the writer, and gives pub/sub staleAllowance
			// to deliver the invalidations of its last Sets.
			w.waitRewritten(t, time.Now())
			w.stop.Store(true)
			w.wg.Wait()
			time.Sleep(staleAllowance)
			// After the switches, with nothing in flight: every key reads its
			// last acknowledged version.
			var staleAfter []string
			for _, k := range w.keys {
				v, err := w.reader.l.Get(context.Background(), k, time.Hour, func(context.Context) (int, error) { return w.source[k], nil })
				require.NoError(t, err)
				if v < w.acked[k].v {
					staleAfter = append(staleAfter, fmt.Sprintf("%s read %d, acked %d", k, v, w.acked[k].v))
				}
			}
			require.Empty(t, staleAfter, "keys stale once the switches are over")
			staleReads := 0
			for _, n := range w.stale {
				staleReads += n
			}
			t.Logf("%s, %d switches: %d writes, %d reads, %d failed, %d stale reads on %d of %d keys (invalidation or Set lost), stale for up to %v, kill to first Set %v",
				topo, testenv.Failovers(), w.writes, w.reads, len(w.failed), staleReads, len(w.stale), len(w.keys), w.maxStale, delays)
			testenv.LogFailoverFigures(t, testenv.FailoverFigures{Primitive: "cache", Topology: topo, Setting: "default", Switches: testenv.Failovers(),
				Counts:      map[string]int{testenv.CountAcknowledged: w.writes, testenv.CountFailed: len(w.failed), testenv.CountStaleKeys: len(staleAfter)},
				KillToFirst: delays})
			require.Empty(t, w.failed, "calls failed within their %v deadline", opTimeout)
			require.Positive(t, w.writes)
		})
	}
}
