package shard_test

import (
	"fmt"
	"testing"

	"github.com/scaleout/scaleout/shard"
)

var sink string

// BenchmarkShard measures one lookup of a 23-byte key, hashing included,
// for every strategy at 10 and 100 shards. bench/ runs the same lookups side
// by side with other libraries.
func BenchmarkShard(b *testing.B) {
	ks := keys(1 << 16)
	mask := len(ks) - 1
	for _, s := range strategies {
		for _, n := range []int{10, 100} {
			sh, err := s.build(shard.Members(names(n)...))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%d", s.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					sink = sh.Shard(ks[i&mask])
				}
			})
		}
	}
}

func BenchmarkOwners(b *testing.B) {
	ks := keys(1 << 16)
	mask := len(ks) - 1
	for _, s := range strategies {
		sh, err := s.build(shard.Members(names(100)...))
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := sh.(shard.Replicator); !ok {
			continue
		}
		b.Run(s.name+"/100/3", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				o, _ := shard.Owners(sh, ks[i&mask], 3)
				sink = o[0]
			}
		})
	}
}

func BenchmarkSlot(b *testing.B) {
	ks := keys(1 << 16)
	mask := len(ks) - 1
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		n += shard.Slot(ks[i&mask])
	}
	_ = n
}
