package shard

import "errors"

// Errors returned by constructors and helpers. Lookups never fail: a Sharder
// that was built maps every key. Test with errors.Is; the returned errors
// wrap these with the offending value.
var (
	ErrNoShards        = errors.New("shard: no shards")
	ErrEmptyName       = errors.New("shard: empty shard name")
	ErrDuplicateName   = errors.New("shard: duplicate shard name")
	ErrInvalidWeight   = errors.New("shard: weight must be at least 1")
	ErrInvalidConfig   = errors.New("shard: invalid configuration")
	ErrUnknownShard    = errors.New("shard: unknown shard")
	ErrInvalidCount    = errors.New("shard: invalid number of owners")
	ErrNotSupported    = errors.New("shard: not supported by this strategy")
	ErrIncomparable    = errors.New("shard: sharders cannot be compared")
	ErrInvalidRange    = errors.New("shard: invalid range")
	ErrImpossibleBound = errors.New("shard: load bound cannot be met")
)
