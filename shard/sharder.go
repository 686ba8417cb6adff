package shard

import "fmt"

// A Sharder maps every key to the shard that owns it.
//
// Lookups are total and deterministic: any string, including "" and invalid
// UTF-8, maps to one of Shards, the same one in every process that built the
// Sharder from the same members. A Sharder is immutable and safe for
// concurrent use; changing membership builds a new one, and PlanMoves tells
// which data the change moves.
type Sharder interface {
	// Shard returns the name of the shard that owns key.
	Shard(key string) string
	// Shards returns the shard names, in the order the Sharder was built
	// with. The caller must not modify the slice.
	Shards() []string
}

// A Replicator places a key on several distinct shards, for replicated
// placement: the first owner is always Shard(key), and the rest are the
// shards the key falls to when the ones before them are gone.
type Replicator interface {
	Sharder
	// Owners returns n distinct shards for key, most preferred first. It
	// fails with ErrInvalidCount when n < 1 or n > len(Shards()).
	Owners(key string, n int) ([]string, error)
}

// A Member is one shard and its relative weight. Weighted strategies give a
// member a share of keys proportional to Weight; Weight must be at least 1.
type Member struct {
	Name   string
	Weight int
}

// Members returns one Member of weight 1 for each name.
func Members(names ...string) []Member {
	ms := make([]Member, len(names))
	for i, n := range names {
		ms[i] = Member{Name: n, Weight: 1}
	}
	return ms
}

// Owners returns n distinct owners of key from s when s is a Replicator. A
// Sharder that cannot replicate still answers n == 1 with Shard(key), and
// fails with ErrNotSupported for more.
func Owners(s Sharder, key string, n int) ([]string, error) {
	if r, ok := s.(Replicator); ok {
		return r.Owners(key, n)
	}
	if n == 1 {
		return []string{s.Shard(key)}, nil
	}
	return nil, fmt.Errorf("%w: %T cannot place a key on %d shards", ErrNotSupported, s, n)
}

// checkCount validates the n of an Owners call against the shard count.
func checkCount(n, shards int) error {
	if n < 1 || n > shards {
		return fmt.Errorf("%w: asked for %d owners of %d shards", ErrInvalidCount, n, shards)
	}
	return nil
}
