// Package redisring plugs a shard strategy into go-redis's Ring client, in
// place of its default rendezvous hash:
//
//	ring := redis.NewRing(&redis.RingOptions{
//		Addrs:             map[string]string{"a": "10.0.0.1:6379", "b": "10.0.0.2:6379"},
//		NewConsistentHash: redisring.ConsistentHash(redisring.Maglev),
//	})
//
// go-redis rebuilds the hash from the live shard names whenever a shard goes
// down or comes back, and passes them in no fixed order; the adapter sorts
// them first, so every process maps keys the same way. Prefer a strategy
// whose mapping depends only on the set of names (Rendezvous, Maglev, Ring,
// Bounded): with Jump, a shard going down in the middle of the sorted order
// moves more keys than its own.
package redisring

import (
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/shard"
)

// A Builder builds a Sharder over shard members.
type Builder func(members []shard.Member) (shard.Sharder, error)

// Builders for the strategies with default settings.
var (
	Rendezvous Builder = func(m []shard.Member) (shard.Sharder, error) { return shard.NewRendezvous(m) }
	Maglev     Builder = func(m []shard.Member) (shard.Sharder, error) { return shard.NewMaglev(m, shard.MaglevConfig{}) }
	Ring       Builder = func(m []shard.Member) (shard.Sharder, error) { return shard.NewRing(m, shard.RingConfig{}) }
	Bounded    Builder = func(m []shard.Member) (shard.Sharder, error) { return shard.NewBounded(m, shard.BoundedConfig{}) }
)

// ConsistentHash returns a function for redis.RingOptions.NewConsistentHash
// that places keys with the Sharder build makes over the live shard names,
// each of weight 1.
//
// go-redis offers no way to report an error from here: if build fails (for
// example when no shard is live), every key gets the empty shard name, for
// which go-redis returns its "all ring shards are down" error.
func ConsistentHash(build Builder) func(shards []string) redis.ConsistentHash {
	return func(shards []string) redis.ConsistentHash {
		names := slices.Sorted(slices.Values(shards))
		s, err := build(shard.Members(names...))
		if err != nil {
			return noShards{}
		}
		return getter{s}
	}
}

type getter struct{ s shard.Sharder }

func (g getter) Get(key string) string { return g.s.Shard(key) }

type noShards struct{}

func (noShards) Get(string) string { return "" }
