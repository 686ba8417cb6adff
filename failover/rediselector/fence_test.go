package rediselector_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/rediselector"
	"github.com/scaleout/scaleout/internal/testenv"
)

func TestFenceKey(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"orders", "{orders}:fence"},
		{"user:{42}:profile", "user:{42}:profile:fence"},
		{"a{b", "{a{b}:fence"},
		{"", "{}:fence"},
	} {
		got, err := rediselector.FenceKey(tc.key)
		require.NoError(t, err, tc.key)
		require.Equal(t, tc.want, got, tc.key)
	}
	for _, key := range []string{"a}b", "a{}b"} {
		_, err := rediselector.FenceKey(key)
		require.Error(t, err, key)
	}
}

func TestFenceSet(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(t *testing.T) redis.UniversalClient
	}{
		{"single", func(t *testing.T) redis.UniversalClient { return testenv.RedisClient(t) }},
		{"cluster", func(t *testing.T) redis.UniversalClient { return testenv.RedisClusterClient(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client(t)
			ctx := t.Context()
			p := testenv.Prefix(t)
			for _, key := range []string{p + "plain", p + "{tagged}:x"} {
				require.NoError(t, rediselector.FenceSet(ctx, c, key, []byte("a"), 5))
				require.NoError(t, rediselector.FenceSet(ctx, c, key, []byte("b"), 5), "equal token")
				err := rediselector.FenceSet(ctx, c, key, []byte("c"), 4)
				require.ErrorIs(t, err, failover.ErrStaleToken)
				v, err := c.Get(ctx, key).Result()
				require.NoError(t, err)
				require.Equal(t, "b", v)
				require.NoError(t, rediselector.FenceSet(ctx, c, key, []byte("d"), 10)) // 10 > 5 though "10" < "5"
				require.ErrorIs(t, rediselector.FenceSet(ctx, c, key, []byte("e"), 9), failover.ErrStaleToken)
				require.NoError(t, rediselector.FenceSet(ctx, c, key, []byte("f"), 1<<63+1))
				require.ErrorIs(t, rediselector.FenceSet(ctx, c, key, []byte("g"), 1<<63), failover.ErrStaleToken)
				v, err = c.Get(ctx, key).Result()
				require.NoError(t, err)
				require.Equal(t, "f", v)
			}
			_, err := rediselector.FenceKey(p + "bad}")
			require.Error(t, err)
			require.Error(t, rediselector.FenceSet(ctx, c, p+"bad}", nil, 1))
		})
	}
}
