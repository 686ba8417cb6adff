package electortest_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/electortest"
)

// The kit on failover.Memory, inside synctest bubbles (failover's own
// tests also run it on real time).
func TestKitOnMemory(t *testing.T) {
	electortest.RunSynctest(t, func(t *testing.T, n int, cfg failover.Config) []failover.Elector {
		return memoryCandidates(t, n, cfg, func(m *failover.Memory) failover.Elector { return m })
	})
}

// memoryCandidates returns n candidates of one fresh failover.MemoryStore,
// each wrapped by wrap, closed when t ends.
func memoryCandidates(t *testing.T, n int, cfg failover.Config, wrap func(*failover.Memory) failover.Elector) []failover.Elector {
	store := failover.NewMemoryStore()
	es := make([]failover.Elector, n)
	for i := range es {
		cfg.ID = fmt.Sprint("candidate-", i)
		m, err := store.Candidate(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, m.Close()) })
		es[i] = wrap(m)
	}
	return es
}

func TestCheckConfigOnMemory(t *testing.T) {
	electortest.CheckConfig(t, func(cfg failover.Config) error {
		m, err := failover.NewMemoryStore().Candidate(cfg)
		if err == nil {
			require.NoError(t, m.Close())
		}
		return err
	})
}
