package redisstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/redisstore"
	"github.com/scaleout/scaleout/session/sessiontest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, b := range testenv.RedisTopologiesWithSentinel {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			conformance(t, b, redisstore.Config{})
		})
	}
}

func conformance(t *testing.T, b testenv.RedisTopology, cfg redisstore.Config) {
	sessiontest.Run(t, func(t *testing.T) session.SessionStore {
		cfg.Prefix = testenv.Prefix(t)
		s, err := redisstore.New(b.Client(t), cfg)
		require.NoError(t, err)
		return s
	})
}
