package shard_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/shard"
)

func TestSlot(t *testing.T) {
	for _, tc := range []struct {
		key  string
		slot int
	}{
		// Values from the Redis Cluster specification and CLUSTER KEYSLOT.
		{"123456789", 0x31C3}, // the CRC16/XMODEM check value
		{"foo", 12182},
		{"bar", 5061},
		{"", 0},
		{"{user1000}.following", shard.Slot("user1000")},
		{"{user1000}.followers", shard.Slot("user1000")},
		{"foo{}{bar}", shard.Slot("foo{}{bar}")},       // empty first tag: whole key
		{"foo{{bar}}zap", shard.Slot("{bar")},          // tag runs to the first '}'
		{"foo{bar}{zap}", shard.Slot("bar")},           // only the first tag counts
		{"{unterminated", shard.Slot("{unterminated")}, // no closing brace: whole key
	} {
		require.Equal(t, tc.slot, shard.Slot(tc.key), "key %q", tc.key)
	}
	require.Equal(t, 12182, shard.Slot("x{foo}y"))
}

// TestSlotMatchesRedisCluster asks a real Redis Cluster for the slot of
// keys with and without hash tags, odd bytes included.
func TestSlotMatchesRedisCluster(t *testing.T) {
	c := testenv.RedisClusterClient(t)
	ctx := context.Background()
	ks := append(keys(300), "", "{", "}", "{}", "{}x", "a{b}c", "a{{b}}c", "a{b", "\xff\x00{\xfe}", strings.Repeat("x", 5000)+"{tag}")
	for i := range 100 {
		ks = append(ks, fmt.Sprintf("{user%d}:profile", i), fmt.Sprintf("obj{%d}{%d}", i, i+1))
	}
	for _, k := range ks {
		want, err := c.ClusterKeySlot(ctx, k).Result()
		require.NoError(t, err)
		require.Equal(t, int(want), shard.Slot(k), "key %q", k)
	}
}
