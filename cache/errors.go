package cache

import "errors"

// Errors of this package. Stores translate their client's "not found"
// (redis.Nil, memcache.ErrCacheMiss) into ErrMiss.
var (
	ErrMiss          = errors.New("cache: miss")
	ErrTooLarge      = errors.New("cache: value too large for the store")
	ErrInvalidTTL    = errors.New("cache: negative TTL")
	ErrInvalidKey    = errors.New("cache: invalid key")
	ErrInvalidConfig = errors.New("cache: invalid configuration")
	ErrNotStored     = errors.New("cache: not stored: condition failed")
	// ErrClosed is the answer of a Loader's Get, GetMany and Refresh
	// after Close, and of the types built on a Loader (querycache,
	// objects) after theirs.
	ErrClosed = errors.New("cache: closed")
	// ErrNotFound is what a load function returns when the data source
	// has no such object; a Loader caches that answer for NegativeTTL.
	ErrNotFound = errors.New("cache: not found in the data source")
)

// MaxKeyLength bounds keys; longer keys are ErrInvalidKey. Stores that
// cannot hold a key as it is (memcached: 250 bytes, no spaces or control
// characters) hash it instead of refusing it.
const MaxKeyLength = 64 << 10

// CheckKey returns ErrInvalidKey for an empty key or one longer than
// MaxKeyLength.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLength {
		return ErrInvalidKey
	}
	return nil
}

// ErrLoadPanic wraps the value of a load function that panicked.
var ErrLoadPanic = errors.New("cache: load panicked")
