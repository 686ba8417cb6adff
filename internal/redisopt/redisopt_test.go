package redisopt

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
)

type wrapped struct{ redis.UniversalClient }

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		c    redis.UniversalClient
		ok   bool
	}{
		{"client default", redis.NewClient(&redis.Options{}), false},
		{"client enabled", redis.NewClient(&redis.Options{ContextTimeoutEnabled: true}), true},
		{"cluster default", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}}), false},
		{"cluster enabled", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true}), true},
		{"ring default", redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}}), false},
		{"ring enabled", redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}, ContextTimeoutEnabled: true}), true},
		{"sentinel default", redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:1"}}), false},
		{"sentinel enabled", redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true}), true},
		{"universal enabled", redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true}), true},
		{"a wrapper of the caller's", wrapped{redis.NewClient(&redis.Options{})}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer tc.c.Close()
			err := Check(tc.c)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrContextTimeouts)) {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
