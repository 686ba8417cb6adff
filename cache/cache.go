package cache

import (
	"context"
	"time"
)

// An ObjectCache is a key-value cache in RAM: Redis, Memcached, or local
// memory. Values are opaque bytes. Implementations are safe for concurrent
// use. cachetest.Run checks the contract, which every method keeps:
//
//   - Keys that CheckKey refuses (empty, longer than MaxKeyLength) fail
//     with ErrInvalidKey; any other key works, whatever its bytes, and
//     distinct keys never collide.
//   - A value round-trips exactly (an empty value is a zero-length value,
//     not a miss) or, when too large for the store, fails with
//     ErrTooLarge, storing nothing: never a truncated value.
//   - Values are copied: neither the caller's buffer after Set nor the
//     slice Get returned shares memory with the stored value.
//   - A done context fails with an error other than ErrMiss or is ignored;
//     it never turns a present key into a miss. A Set that returned nil
//     stored its value.
//   - A positive TTL may be rounded to whole seconds, never shortened to
//     nothing nor kept more than 2 s beyond its end.
type ObjectCache interface {
	// Get returns the value of key, or ErrMiss when there is none (absent,
	// expired or evicted). A failure to reach the cache is an error other
	// than ErrMiss, so callers can fail open to the data source.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key for ttl; a ttl of 0 keeps it until it is
	// evicted, a negative ttl is ErrInvalidTTL.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes keys; deleting a missing key is not an error.
	Delete(ctx context.Context, keys ...string) error
}

// A BatchCache reads and writes many keys in one round trip.
type BatchCache interface {
	ObjectCache
	// GetMulti returns the values of the keys that are present; absent
	// keys are simply not in the map.
	GetMulti(ctx context.Context, keys []string) (map[string][]byte, error)
	// SetMulti stores every item for ttl.
	SetMulti(ctx context.Context, items map[string][]byte, ttl time.Duration) error
}

// A SwapCache stores conditionally: the two primitives a Loader needs to
// grant one process in a whole cluster a fill lease on a missing key and to
// refuse that process's write once the lease is void. Every store of this
// module is one; a Loader on a plain ObjectCache deduplicates loads within
// its own process only.
type SwapCache interface {
	ObjectCache
	// Add stores value under key only if key holds nothing; otherwise it
	// returns ErrNotStored.
	Add(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// CompareAndSwap stores value under key only if key holds exactly the
	// bytes old; otherwise (a different value, or none) it returns
	// ErrNotStored.
	CompareAndSwap(ctx context.Context, key string, old, value []byte, ttl time.Duration) error
}
