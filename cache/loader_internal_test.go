package cache

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A local fill whose cache read came before an invalidation is discarded:
// the value it read may be the one the invalidation replaced.
func TestFillLocalDiscardsFillRacedByInvalidation(t *testing.T) {
	remote, err := NewMemory(MemoryConfig{})
	require.NoError(t, err)
	l, err := NewLoader(remote, LoaderConfig[string]{LocalTTL: time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })

	epoch := l.epoch.Load() // the fill reads the cache here
	l.invalidated([]string{"k"})
	l.fillLocal("k", epoch, localEntry[string]{v: "before the change"}, 17, 0)
	_, ok := l.local.get("k")
	require.False(t, ok, "a fill older than an invalidation must not be kept")

	l.fillLocal("k", l.epoch.Load(), localEntry[string]{v: "after"}, 5, 0)
	e, ok := l.local.get("k")
	require.True(t, ok)
	require.Equal(t, "after", e.v)

	// A reset (lost invalidations) also voids fills begun before it.
	epoch = l.epoch.Load()
	l.invalidated(nil)
	l.fillLocal("j", epoch, localEntry[string]{v: "x"}, 1, 0)
	_, ok = l.local.get("j")
	require.False(t, ok)
}
