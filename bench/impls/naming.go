package impls

import "github.com/scaleout/scaleout/internal/naming"

// A NamingScheme is one way shards get named in practice. Distribution and
// movement are measured over every scheme and the worst case is reported.
type NamingScheme = naming.Scheme

// NamingSchemes returns shard-NN (ShardNames), node-N, addresses with
// ports, DNS names with ports, and random UUIDs: the same schemes the
// shard package's tests hold Bounded's moves to.
func NamingSchemes() []NamingScheme { return naming.Schemes() }
