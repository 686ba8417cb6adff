package failover_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/electortest"
)

func newMemoryCandidates(t *testing.T, n int, cfg failover.Config) []failover.Elector {
	store := failover.NewMemoryStore()
	es := make([]failover.Elector, n)
	for i := range es {
		cfg.ID = fmt.Sprint("candidate-", i)
		m, err := store.Candidate(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, m.Close()) })
		es[i] = m
	}
	return es
}

func TestMemoryConformance(t *testing.T) {
	electortest.Run(t, newMemoryCandidates)
}

func TestMemoryConformanceSynctest(t *testing.T) {
	electortest.RunSynctest(t, newMemoryCandidates)
}

func TestMemoryConfig(t *testing.T) {
	electortest.CheckConfig(t, func(cfg failover.Config) error {
		m, err := failover.NewMemoryStore().Candidate(cfg)
		if err == nil {
			require.NoError(t, m.Close())
		}
		return err
	})
}

var testConfig = failover.Config{
	Lease:         time.Second,
	RenewInterval: 250 * time.Millisecond,
	RetryInterval: 100 * time.Millisecond,
	SafetyMargin:  100 * time.Millisecond,
}

func candidates(t *testing.T, store *failover.MemoryStore, ids ...string) []*failover.Memory {
	ms := make([]*failover.Memory, len(ids))
	for i, id := range ids {
		cfg := testConfig
		cfg.ID = id
		m, err := store.Candidate(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, m.Close()) })
		ms[i] = m
	}
	return ms
}

func campaign(t *testing.T, m *failover.Memory) *failover.Term {
	t.Helper()
	term, err := m.Campaign(t.Context())
	require.NoError(t, err)
	return term
}

func TestMemoryZeroValueStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var store failover.MemoryStore
		ms := candidates(t, &store, "a", "b")
		term := campaign(t, ms[0])
		require.Equal(t, uint64(1), term.Token)
		l, err := ms[1].Leader(t.Context())
		require.NoError(t, err)
		require.Equal(t, failover.Leader{ID: "a", Token: 1}, l)
	})
}

// A leader's deadline is (time the renewal was sent) + Lease - SafetyMargin,
// moved at every RenewInterval.
func TestMemoryRenewExtendsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a")
		start := time.Now()
		term := campaign(t, ms[0])
		require.Equal(t, start.Add(900*time.Millisecond), term.Deadline())
		for i := 1; i <= 8; i++ {
			time.Sleep(testConfig.RenewInterval)
			synctest.Wait()
			require.Equal(t, time.Now().Add(900*time.Millisecond), term.Deadline(), "renewal %d", i)
		}
		require.NoError(t, term.Err())
	})
}

// A partitioned leader self-fences at its deadline; the store keeps its
// lease a SafetyMargin longer, then another candidate takes over with a
// larger token at its next retry.
func TestMemoryPartitionSelfFences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a", "b")
		a, b := ms[0], ms[1]
		ta := campaign(t, a)
		time.Sleep(testConfig.RenewInterval) // one renewal
		synctest.Wait()
		lastRenewal := time.Now()
		a.Partition(true)

		got := make(chan *failover.Term, 1)
		go func() {
			tb, err := b.Campaign(t.Context())
			if err == nil {
				got <- tb
			}
			close(got)
		}()

		<-ta.Done()
		require.Equal(t, lastRenewal.Add(900*time.Millisecond), time.Now(), "self-fenced at the deadline")
		require.ErrorIs(t, ta.Err(), failover.ErrLeaseExpired)
		l, err := b.Leader(t.Context())
		require.NoError(t, err, "the store still holds a's lease")
		require.Equal(t, failover.Leader{ID: "a", Token: 1}, l)
		_, err = a.Leader(t.Context())
		require.Error(t, err, "partitioned")

		tb := <-got
		require.NotNil(t, tb)
		expiry := lastRenewal.Add(testConfig.Lease)
		require.False(t, time.Now().Before(expiry), "elected before the store's lease expired")
		require.LessOrEqual(t, time.Since(expiry), testConfig.RetryInterval)
		require.Equal(t, uint64(2), tb.Token)

		// Resign while partitioned ends nothing in the store.
		a.Partition(false)
		require.NoError(t, a.Resign(t.Context()))
		require.NoError(t, tb.Err())
		_, err = b.Leader(t.Context())
		require.NoError(t, err)
	})
}

// A partitioned leader's Resign ends its Term but cannot free the lease.
func TestMemoryResignWhilePartitioned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a", "b")
		ta := campaign(t, ms[0])
		ms[0].Partition(true)
		require.Error(t, ms[0].Resign(t.Context()))
		require.ErrorIs(t, ta.Err(), failover.ErrResigned)
		l, err := ms[1].Leader(t.Context())
		require.NoError(t, err)
		require.Equal(t, "a", l.ID)
		start := time.Now()
		tb := campaign(t, ms[1])
		require.Equal(t, start.Add(testConfig.Lease), time.Now(), "b waited for the lease to expire")
		require.Equal(t, uint64(2), tb.Token)
	})
}

func TestMemoryResignWakesCampaigners(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a", "b")
		ta := campaign(t, ms[0])
		got := make(chan *failover.Term, 1)
		go func() {
			tb, _ := ms[1].Campaign(t.Context())
			got <- tb
		}()
		time.Sleep(testConfig.RetryInterval / 2)
		synctest.Wait()
		resigned := time.Now()
		require.NoError(t, ms[0].Resign(t.Context()))
		require.ErrorIs(t, ta.Err(), failover.ErrResigned)
		tb := <-got
		require.Equal(t, resigned, time.Now(), "took over at once")
		require.Equal(t, uint64(2), tb.Token)
	})
}

func TestMemoryObserveLatestValue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a", "b", "c")
		ch, err := ms[2].Observe(t.Context())
		require.NoError(t, err)
		// Nobody reads: the store is never blocked.
		for range 3 {
			campaign(t, ms[0])
			require.NoError(t, ms[0].Resign(t.Context()))
			campaign(t, ms[1])
			require.NoError(t, ms[1].Resign(t.Context()))
		}
		tb := campaign(t, ms[1])
		synctest.Wait()
		require.Equal(t, failover.Leader{ID: "b", Token: tb.Token}, <-ch, "only the latest")
		require.Equal(t, uint64(7), tb.Token)
		select {
		case l := <-ch:
			t.Fatalf("unexpected %+v", l)
		default:
		}
		// Expiry is a change too, sent when the lease runs out.
		ms[1].Partition(true)
		start := time.Now()
		l := <-ch
		require.Equal(t, failover.Leader{ID: "b", Token: 7, Vacant: true}, l)
		require.Equal(t, start.Add(testConfig.Lease), time.Now())
		// A partitioned observer delivers nothing until healed.
		ms[2].Partition(true)
		campaign(t, ms[0])
		synctest.Wait()
		select {
		case l := <-ch:
			t.Fatalf("partitioned observer got %+v", l)
		default:
		}
		ms[2].Partition(false)
		require.Equal(t, failover.Leader{ID: "a", Token: 8}, <-ch)
	})
}

func TestMemoryClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := failover.NewMemoryStore()
		ms := candidates(t, store, "a", "b")
		ta := campaign(t, ms[0])
		ch, err := ms[0].Observe(t.Context())
		require.NoError(t, err)
		require.NoError(t, ms[0].Close())
		require.NoError(t, ms[0].Close(), "idempotent")
		require.ErrorIs(t, ta.Err(), failover.ErrResigned)
		for range ch { // drains, then closed
		}
		_, err = ms[0].Campaign(t.Context())
		require.ErrorIs(t, err, failover.ErrClosed)
		_, err = ms[0].Observe(t.Context())
		require.ErrorIs(t, err, failover.ErrClosed)
		_, err = ms[0].Leader(t.Context())
		require.ErrorIs(t, err, failover.ErrClosed)
		_, err = ms[1].Leader(t.Context())
		require.ErrorIs(t, err, failover.ErrNoLeader, "Close resigned")
		require.Equal(t, uint64(2), campaign(t, ms[1]).Token)
	})
}

func TestMemoryCloseStopsCampaign(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a", "b")
		campaign(t, ms[0])
		errc := make(chan error, 1)
		go func() {
			_, err := ms[1].Campaign(context.Background())
			errc <- err
		}()
		synctest.Wait()
		require.NoError(t, ms[1].Close())
		require.ErrorIs(t, <-errc, failover.ErrClosed)
	})
}

func TestMemoryLeaderVacantNamesLastLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ms := candidates(t, failover.NewMemoryStore(), "a")
		l, err := ms[0].Leader(t.Context())
		require.ErrorIs(t, err, failover.ErrNoLeader)
		require.Equal(t, failover.Leader{Vacant: true}, l)
		campaign(t, ms[0])
		require.NoError(t, ms[0].Resign(t.Context()))
		l, err = ms[0].Leader(t.Context())
		require.ErrorIs(t, err, failover.ErrNoLeader)
		require.Equal(t, failover.Leader{ID: "a", Token: 1, Vacant: true}, l)
	})
}
