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
	for _, b := range testenv.RedisTopologies {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			sessiontest.Run(t, func(t *testing.T) session.SessionStore {
				s, err := redisstore.New(b.Client(t), redisstore.Config{Prefix: testenv.Prefix(t)})
				require.NoError(t, err)
				return s
			})
		})
	}
}
