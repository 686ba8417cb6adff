package replicatest_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/replica"
	"github.com/scaleout/scaleout/replica/replicatest"
)

func TestRouterConforms(t *testing.T) {
	replicatest.Run(t, func(t *testing.T, topo *replicatest.Topology, cfg replica.Config) replica.ReplicaRouter {
		r, err := replica.New(cfg, topo.Nodes()...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = r.Close() })
		return r
	})
}
