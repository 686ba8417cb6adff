package objects_test

import (
	"context"
	"testing"
	"time"

	"github.com/scaleout/scaleout/cache"
	"github.com/scaleout/scaleout/cache/objects"
)

func benchGetHit(b *testing.B, cfg objects.Config[Profile]) {
	mem, err := cache.NewMemory(cache.MemoryConfig{})
	if err != nil {
		b.Fatal(err)
	}
	o, err := objects.New(mem, func(context.Context, string) (Profile, error) {
		return Profile{Name: "Ada", Orders: 3}, nil
	}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	ctx := context.Background()
	if _, err := o.Get(ctx, "u1"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := o.Get(ctx, "u1"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// A hit in the cache: a flight, a copy out of Memory and a JSON decode.
func BenchmarkGetHit(b *testing.B) { benchGetHit(b, objects.Config[Profile]{}) }

// A hit in the local tier: no decode.
func BenchmarkGetHitLocal(b *testing.B) {
	benchGetHit(b, objects.Config[Profile]{LocalTTL: time.Minute})
}

// A local hit with refresh-ahead tracking the key.
func BenchmarkGetHitLocalRefreshAhead(b *testing.B) {
	benchGetHit(b, objects.Config[Profile]{LocalTTL: time.Minute, RefreshEvery: time.Minute})
}
