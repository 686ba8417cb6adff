package cachetest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/cachetest"
	"github.com/scaleout/scaleout/internal/kitcheck"
)

// The kit is a product: a cache that breaks a clause must fail it. Each
// broken cache below is cache.Memory with one promise broken by a
// wrapper; TestKitCatchesBrokenCaches runs the clause it breaks in a child
// process and requires that clause to fail.

// brokenEnv names the broken cache the child process runs the kit on.
const brokenEnv = "CACHETEST_BROKEN"

// brokenCaches maps each broken behaviour to the clause that must catch
// it.
var brokenCaches = map[string]string{
	"a miss is no error":                    "GetMissing",
	"an empty value is a miss":              "RoundTrip",
	"Set keeps the first value":             "Overwrite",
	"Delete removes the first key only":     "Delete",
	"TTLs are ignored":                      "TTL",
	"a negative TTL keeps the key":          "NegativeTTL",
	"long keys are cut to MaxKeyLength":     "InvalidKeys",
	"keys collide past 280 bytes":           "OddKeys",
	"large values are truncated":            "LargeValues",
	"values are shared":                     "Copies",
	"a canceled Get is a miss":              "CanceledContext",
	"GetMulti finds nothing":                "Batch",
	"Add overwrites":                        "Swap",
	"CompareAndSwap is not atomic":          "SwapConcurrent",
	"Add always stores":                     "LoaderOneLoad",
	"CompareAndSwap stores into a void key": "LoaderDeleteVoidsFill",
	"CompareAndSwap stores nothing":         "LoaderNotFound",
}

type broken struct {
	*cache.Memory
	how string

	mu     sync.Mutex
	shared map[string][]byte // "values are shared": the caller's buffers
}

func (b *broken) key(key string) string {
	switch {
	case b.how == "long keys are cut to MaxKeyLength" && len(key) > cache.MaxKeyLength:
		return key[:cache.MaxKeyLength]
	case b.how == "keys collide past 280 bytes" && len(key) > 280:
		return key[:280]
	}
	return key
}

func (b *broken) Get(ctx context.Context, key string) ([]byte, error) {
	key = b.key(key)
	switch b.how {
	case "a canceled Get is a miss":
		if ctx.Err() != nil {
			return nil, cache.ErrMiss
		}
	case "values are shared":
		b.mu.Lock()
		v, ok := b.shared[key]
		b.mu.Unlock()
		if ok {
			if _, err := b.Memory.Get(ctx, key); err != nil {
				return nil, err
			}
			return v, nil
		}
	}
	v, err := b.Memory.Get(ctx, key)
	if b.how == "a miss is no error" && errors.Is(err, cache.ErrMiss) {
		return nil, nil
	}
	if b.how == "an empty value is a miss" && err == nil && len(v) == 0 {
		return nil, cache.ErrMiss
	}
	return v, err
}

func (b *broken) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	key = b.key(key)
	switch b.how {
	case "Set keeps the first value":
		if _, err := b.Memory.Get(ctx, key); err == nil {
			return nil
		}
	case "TTLs are ignored":
		if ttl > 0 {
			ttl = 0
		}
	case "a negative TTL keeps the key":
		if ttl < 0 {
			ttl = 0
		}
	case "large values are truncated":
		if len(value) > 256<<10 {
			value = value[:256<<10]
		}
	case "values are shared":
		b.mu.Lock()
		if b.shared == nil {
			b.shared = map[string][]byte{}
		}
		b.shared[key] = value
		b.mu.Unlock()
	}
	return b.Memory.Set(ctx, key, value, ttl)
}

func (b *broken) Delete(ctx context.Context, keys ...string) error {
	if b.how == "Delete removes the first key only" && len(keys) > 1 {
		keys = keys[:1]
	}
	for i := range keys {
		keys[i] = b.key(keys[i])
	}
	return b.Memory.Delete(ctx, keys...)
}

func (b *broken) GetMulti(ctx context.Context, keys []string) (map[string][]byte, error) {
	if b.how == "GetMulti finds nothing" {
		return map[string][]byte{}, nil
	}
	return b.Memory.GetMulti(ctx, keys)
}

func (b *broken) Add(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	switch b.how {
	case "Add overwrites", "Add always stores":
		return b.Memory.Set(ctx, key, value, ttl)
	}
	return b.Memory.Add(ctx, key, value, ttl)
}

func (b *broken) CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error {
	switch b.how {
	case "CompareAndSwap is not atomic":
		cur, err := b.Memory.Get(ctx, key)
		if err != nil || !bytes.Equal(cur, old) {
			return cache.ErrNotStored
		}
		runtime.Gosched()
		return b.Memory.Set(ctx, key, value, ttl)
	case "CompareAndSwap stores into a void key":
		if _, err := b.Memory.Get(ctx, key); errors.Is(err, cache.ErrMiss) {
			return b.Memory.Set(ctx, key, value, ttl)
		}
	case "CompareAndSwap stores nothing":
		return nil
	}
	return b.Memory.CompareAndSwap(ctx, key, old, value, ttl)
}

// TestBrokenCacheChild runs the kit on the broken cache the parent names;
// it is skipped in a normal run.
func TestBrokenCacheChild(t *testing.T) {
	how := os.Getenv(brokenEnv)
	if how == "" {
		t.Skip("run by TestKitCatchesBrokenCaches")
	}
	cachetest.Run(t, func(t *testing.T) cache.ObjectCache {
		m, err := cache.NewMemory(cache.MemoryConfig{})
		require.NoError(t, err)
		return &broken{Memory: m, how: how}
	})
}

func TestKitCatchesBrokenCaches(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in the child process")
	}
	for how, clause := range brokenCaches {
		t.Run(how, func(t *testing.T) {
			t.Parallel() // TTL waits in real time
			kitcheck.Catches(t, "TestBrokenCacheChild", clause, "a cache where "+how, brokenEnv+"="+how)
		})
	}
}
