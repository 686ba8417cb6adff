// Package impls builds every sharding implementation the benchmarks compare
// (ours from github.com/scaleout/scaleout/shard and the third-party ones)
// behind one shape, so the go test benchmarks and the compare program
// measure exactly the same code paths.
//
// Every implementation is reached through one indirect call (a func value),
// ours included, so the call overhead is the same for all of them and the
// differences are the lookups themselves. Keys are 23-byte strings built
// once up front; the one library whose API takes []byte
// (buraksezer/consistent) gets pre-converted []byte keys, so it is not
// charged for a string-to-bytes conversion its callers might avoid.
package impls

import (
	"fmt"
	"testing"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
	jump "github.com/dgryski/go-jump"
	rendezvous "github.com/dgryski/go-rendezvous"
	"github.com/serialx/hashring"

	"github.com/scaleout/scaleout/shard"
)

// Implementation names. The compare program keys its targets and ratios
// on them.
const (
	OursJump       = "ours Jump"
	OursRendezvous = "ours Rendezvous"
	OursRing       = "ours Ring"
	OursRingKetama = "ours Ring (Ketama)"
	OursMaglev     = "ours Maglev"
	OursBounded    = "ours Bounded"
	// OursBounded64K is Bounded with 65,536 partitions: enough per member
	// for its moves to stay within 5% of the ideal at 50 and 100 shards,
	// where 4096 partitions leave 40 to 80 per member.
	OursBounded64K = "ours Bounded P=65536"

	Consistent     = "buraksezer/consistent"
	Consistent4096 = "buraksezer/consistent P=4096"
	GoJump         = "dgryski/go-jump"
	GoRendezvous   = "dgryski/go-rendezvous"
	Hashring       = "serialx/hashring"
)

// Impl is one implementation under test.
type Impl struct {
	// Name labels the implementation in reports.
	Name string
	// Bench is the sub-benchmark name: no spaces or slashes, so
	// -bench 'Lookup/Maglev/100' selects exactly one benchmark.
	Bench string
	// Ours marks our own shard package's strategies.
	Ours bool
	// Config says in words how it is configured, for the report.
	Config string
	// New builds the implementation over the given shard names.
	New func(names []string) (*Built, error)
}

// Built is an implementation built over a set of shards. Exactly one of
// Str and Bytes is set, matching the library's key type.
type Built struct {
	Str   func(key string) string
	Bytes func(key []byte) string
	// Sharder is our shard.Sharder, for inspecting it (e.g. Bounded's
	// partition loads); nil for the other libraries.
	Sharder shard.Sharder
}

// Lookup maps key number i of keys; it is the slow path used by the
// distribution and movement measurements, not by the benchmarks.
func (b *Built) Lookup(keys *Keys, i int) string {
	if b.Bytes != nil {
		return b.Bytes(keys.B[i])
	}
	return b.Str(keys.S[i])
}

// Keys holds the same keys as strings and as byte slices.
type Keys struct {
	S []string
	B [][]byte
}

// NewKeys returns n keys "user:000000000000000000", "user:000000000000000001",
// ...: 23 bytes each, long enough to exercise the multi-word path of every
// hash, like a typical user or session id.
func NewKeys(n int) *Keys {
	k := &Keys{S: make([]string, n), B: make([][]byte, n)}
	for i := range n {
		k.S[i] = fmt.Sprintf("user:%018d", i)
		k.B[i] = []byte(k.S[i])
	}
	return k
}

// ShardNames returns "shard-00", "shard-01", ... for n shards (two digits
// up to 100, more above).
func ShardNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("shard-%02d", i)
	}
	return names
}

// All returns every implementation, ours first.
func All() []Impl {
	return []Impl{
		{Name: OursJump, Bench: "Jump", Ours: true, Config: "shard.NewJump; (*Jump).Shard as a func value", New: ours(shard.NewJump,
			func(j *shard.Jump) func(string) string { return j.Shard })},
		{Name: OursRendezvous, Bench: "Rendezvous", Ours: true, Config: "shard.NewRendezvous; (*Rendezvous).Shard as a func value", New: ours(shard.NewRendezvous,
			func(r *shard.Rendezvous) func(string) string { return r.Shard })},
		{Name: OursRing, Bench: "Ring", Ours: true, Config: "shard.NewRing, RingConfig{} (160 points/shard)", New: ours(func(m []shard.Member) (*shard.Ring, error) {
			return shard.NewRing(m, shard.RingConfig{})
		}, func(r *shard.Ring) func(string) string { return r.Shard })},
		{Name: OursRingKetama, Bench: "RingKetama", Ours: true, Config: "shard.NewRing, RingConfig{Ketama: true} (MD5, libketama-compatible)", New: ours(func(m []shard.Member) (*shard.Ring, error) {
			return shard.NewRing(m, shard.RingConfig{Ketama: true})
		}, func(r *shard.Ring) func(string) string { return r.Shard })},
		{Name: OursMaglev, Bench: "Maglev", Ours: true, Config: "shard.NewMaglev, MaglevConfig{} (table 65537)", New: ours(func(m []shard.Member) (*shard.Maglev, error) {
			return shard.NewMaglev(m, shard.MaglevConfig{})
		}, func(g *shard.Maglev) func(string) string { return g.Shard })},
		{Name: OursBounded, Bench: "Bounded", Ours: true, Config: "shard.NewBounded, BoundedConfig{} (4096 partitions, c=1.25)", New: ours(func(m []shard.Member) (*shard.Bounded, error) {
			return shard.NewBounded(m, shard.BoundedConfig{})
		}, func(b *shard.Bounded) func(string) string { return b.Shard })},
		{Name: OursBounded64K, Bench: "Bounded64K", Ours: true, Config: "shard.NewBounded, BoundedConfig{Partitions: 65536} (c=1.25)", New: ours(func(m []shard.Member) (*shard.Bounded, error) {
			return shard.NewBounded(m, shard.BoundedConfig{Partitions: 1 << 16})
		}, func(b *shard.Bounded) func(string) string { return b.Shard })},
		{
			Name:  Consistent,
			Bench: "buraksezer-consistent",
			Config: fmt.Sprintf("v0.10.0 documented defaults: PartitionCount %d, ReplicationFactor %d, Load %.2f; xxhash/v2 hasher as in its README; LocateKey",
				consistent.DefaultPartitionCount, consistent.DefaultReplicationFactor, consistent.DefaultLoad),
			New: newConsistent(0),
		},
		{
			// Not a documented default: the same partition count as our
			// Bounded, so the distribution and movement comparison is
			// like for like (271 partitions over 100 shards cannot be
			// balanced better than 3 vs 2.71 partitions per shard).
			Name:   Consistent4096,
			Bench:  "buraksezer-consistent-P4096",
			Config: "as above but PartitionCount 4096 (our Bounded's partition count), for a like-for-like balance comparison",
			New:    newConsistent(4096),
		},
		{Name: GoJump, Bench: "go-jump", Config: "jump.Hash(xxhash.Sum64String(key), n), hashing included", New: newGoJump},
		{Name: GoRendezvous, Bench: "go-rendezvous", Config: "rendezvous.New(nodes, xxhash.Sum64String).Lookup", New: newGoRendezvous},
		{Name: Hashring, Bench: "serialx-hashring", Config: "hashring.New(nodes).GetNode (its default: MD5, one ring point per node of weight 1)", New: newHashring},
	}
}

// ours adapts one of our constructors. The lookup is the method value of
// the concrete type (S is instantiated with *shard.Jump, *shard.Maglev,
// ...), so ours is reached through exactly one indirect call, the func
// value, like the other libraries' closures; a method value taken on the
// shard.Sharder interface would add an interface dispatch behind it.
func ours[S shard.Sharder](build func([]shard.Member) (S, error), shardOf func(S) func(string) string) func([]string) (*Built, error) {
	return func(names []string) (*Built, error) {
		s, err := build(shard.Members(names...))
		if err != nil {
			return nil, err
		}
		return &Built{Str: shardOf(s), Sharder: s}, nil
	}
}

// member is buraksezer/consistent's Member: any type with String().
type member string

func (m member) String() string { return string(m) }

// xxHasher is the consistent.Hasher its README recommends: xxhash's Sum64.
type xxHasher struct{}

func (xxHasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// newConsistent builds buraksezer/consistent with its defaults, or with the
// given partition count when it is not zero. Zero fields of Config are
// replaced by New with DefaultPartitionCount, DefaultReplicationFactor and
// DefaultLoad.
func newConsistent(partitions int) func([]string) (*Built, error) {
	return func(names []string) (b *Built, err error) {
		// New panics when the partitions cannot be spread within the load
		// bound; turn that into an error for the report.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("consistent.New: %v", r)
			}
		}()
		ms := make([]consistent.Member, len(names))
		for i, n := range names {
			ms[i] = member(n)
		}
		c := consistent.New(ms, consistent.Config{Hasher: xxHasher{}, PartitionCount: partitions})
		return &Built{Bytes: func(key []byte) string { return c.LocateKey(key).String() }}, nil
	}
}

func newGoJump(names []string) (*Built, error) {
	n := len(names)
	return &Built{Str: func(key string) string {
		return names[jump.Hash(xxhash.Sum64String(key), n)]
	}}, nil
}

func newGoRendezvous(names []string) (*Built, error) {
	r := rendezvous.New(names, xxhash.Sum64String)
	return &Built{Str: r.Lookup}, nil
}

func newHashring(names []string) (*Built, error) {
	r := hashring.New(names)
	return &Built{Str: func(key string) string {
		n, _ := r.GetNode(key)
		return n
	}}, nil
}

// Sink receives every lookup result so the compiler cannot drop the calls.
var Sink string

// BenchKeys is the number of distinct keys the lookup benchmarks cycle
// through: a power of two so the index is a mask, and enough keys (about
// 400 KB of keys and headers) that the lookup tables are not all
// L1-resident, as they would be with a handful of hot keys.
const BenchKeys = 1 << 14

// Bench is the body of every lookup benchmark: one lookup per iteration,
// cycling through keys, results stored to Sink. It reports allocations.
func (bt *Built) Bench(b *testing.B, keys *Keys) {
	b.ReportAllocs()
	mask := len(keys.S) - 1
	if mask&(mask+1) != 0 {
		b.Fatal("impls: key count must be a power of two")
	}
	if f := bt.Bytes; f != nil {
		ks := keys.B
		for i := 0; b.Loop(); i++ {
			Sink = f(ks[i&mask])
		}
		return
	}
	f, ks := bt.Str, keys.S
	for i := 0; b.Loop(); i++ {
		Sink = f(ks[i&mask])
	}
}
