package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/session/redisstore"
)

// BenchmarkCommit measures one commit (SaveIf over the version just written), by
// default and waiting for one replica, on the Sentinel group and the Cluster: the
// durable ÷ default ratio of ns/op is the cost of WaitReplicas 1.
//
//	go test ./session/redisstore -run '^$' -bench Commit -benchtime 2000x -count 5
func BenchmarkCommit(b *testing.B) {
	for _, topo := range []testenv.RedisTopology{testenv.SentinelTopology, testenv.RedisTopologies[1]} {
		for _, mode := range []struct {
			name string
			cfg  redisstore.Config
		}{{"default", redisstore.Config{}}, {"durable", redisstore.Config{WaitReplicas: 1}}} {
			b.Run(topo.Name+"/"+mode.name, func(b *testing.B) {
				cfg := mode.cfg
				cfg.Prefix = testenv.Prefix(b)
				s, err := redisstore.New(topo.Client(b), cfg)
				require.NoError(b, err)
				ctx := context.Background()
				exp := time.Now().Add(time.Hour)
				data := make([]byte, 512)
				v, err := s.SaveIf(ctx, "bench", data, exp, 0)
				require.NoError(b, err)
				b.ReportAllocs()
				for b.Loop() {
					if v, err = s.SaveIf(ctx, "bench", data, exp, v); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
