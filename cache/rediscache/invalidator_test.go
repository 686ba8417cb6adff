package rediscache_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache/rediscache"
	"github.com/scaleout/scaleout/internal/testenv"
)

// Close ends the Invalidator's goroutine before it returns, tells its
// subscribers they will hear nothing more, and is idempotent; after it,
// Subscribe registers nothing and Publish still reaches other processes.
func TestInvalidatorClose(t *testing.T) {
	client := testenv.RedisClient(t)
	require.NoError(t, client.Ping(t.Context()).Err())
	channel := testenv.Prefix(t) + "inv"
	other, err := rediscache.NewInvalidator(t.Context(), client, rediscache.InvalidatorConfig{Channel: channel})
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	heard := make(chan []string, 16)
	defer other.Subscribe(func(keys []string) { heard <- keys })()

	checkGoroutines := testenv.CheckGoroutines(t)
	inv, err := rediscache.NewInvalidator(t.Context(), client, rediscache.InvalidatorConfig{Channel: channel})
	require.NoError(t, err)
	var mu sync.Mutex
	var got [][]string
	inv.Subscribe(func(keys []string) {
		mu.Lock()
		got = append(got, keys)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { require.NoError(t, inv.Close()) })
	}
	wg.Wait()
	require.NoError(t, inv.Close(), "a third Close")
	checkGoroutines() // the subscription's goroutine ended before Close returned
	mu.Lock()
	require.Equal(t, [][]string{nil}, got, "subscribers must be told once, with nil, that the Invalidator is closed")
	mu.Unlock()

	var late atomic.Int32
	inv.Subscribe(func([]string) { late.Add(1) })()
	require.NoError(t, inv.Publish(t.Context(), []string{"k"}), "Publish after Close")
	select {
	case keys := <-heard:
		require.Equal(t, []string{"k"}, keys)
	case <-time.After(5 * time.Second):
		t.Fatal("another Invalidator did not hear, within 5s, what a closed one published")
	}
	require.Zero(t, late.Load())
}
