package memcachedstore

import (
	"testing"

	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/sessiontest"
)

func TestConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) session.SessionStore {
		s, _ := newStore(t)
		return s
	})
}
