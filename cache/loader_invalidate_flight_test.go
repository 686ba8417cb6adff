package cache_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
)

// source is a versioned row: load reads its version when it starts and,
// the first time only, answers when released, as a slow query answers
// from the snapshot it began with.
type source struct {
	version atomic.Int32
	loads   atomic.Int32
	release chan struct{}
}

func (s *source) load(context.Context) (int32, error) {
	v := s.version.Load()
	if s.loads.Add(1) == 1 {
		<-s.release
	}
	return v, nil
}

// getAfterInvalidation starts a Get through first whose load reads version
// 1 and is held; changes the source to version 2 and invalidates through
// the writer; then Gets through second, and returns what that Get and the
// held one answered.
func getAfterInvalidation(t *testing.T, first, writer, second *cache.Loader[int32]) (held, after int32) {
	src := &source{release: make(chan struct{})}
	src.version.Store(1)
	heldCh := make(chan int32)
	go func() {
		v, _ := first.Get(t.Context(), "row", time.Minute, src.load)
		heldCh <- v
	}()
	synctest.Wait() // the first flight has read version 1 and is loading
	src.version.Store(2)
	require.NoError(t, writer.Delete(t.Context(), "row"))
	afterCh := make(chan int32, 1)
	go func() {
		v, _ := second.Get(t.Context(), "row", time.Minute, src.load)
		afterCh <- v
	}()
	synctest.Wait() // the second Get has answered, or joined the held flight
	close(src.release)
	return <-heldCh, <-afterCh
}

// A Get that begins after Delete returned must not join a flight that
// began before: that flight's load may have read the source before the
// change the Delete announces ("Call it after the data source has
// changed"). The chaos model of cache invalidation (internal/chaos,
// TestCacheInvalChaos on memory) found such reads answering the old
// version.
func TestLoaderGetAfterDeleteStartsItsOwnFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoader(t, newMemory(t, cache.MemoryConfig{}), cache.LoaderConfig[int32]{})
		held, after := getAfterInvalidation(t, l, l, l)
		require.Equal(t, int32(1), held, "the Get that began before the change may answer the old version")
		require.Equal(t, int32(2), after, "a Get that began after Delete returned answered a flight begun before it")
	})
}

// The same across processes: an invalidation heard from another process
// (here through a LocalBus, which delivers before Delete returns) also
// ends the sharing of flights begun before it.
func TestLoaderGetAfterHeardInvalidationStartsItsOwnFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMemory(t, cache.MemoryConfig{})
		bus := &cache.LocalBus{}
		cfg := cache.LoaderConfig[int32]{LocalTTL: time.Minute, Invalidator: bus}
		reader, writer := newLoader(t, m, cfg), newLoader(t, m, cfg)
		held, after := getAfterInvalidation(t, reader, writer, reader)
		require.Equal(t, int32(1), held, "the Get that began before the change may answer the old version")
		require.Equal(t, int32(2), after, "a Get that began after another process's Delete returned answered a flight begun before it")
	})
}
