package mckey

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestKey(t *testing.T) {
	require.Equal(t, "p:abc", Key("p:", "abc", "~h"))
	for _, s := range []string{"", "~abc", "a b", "a\x00b", "é", strings.Repeat("a", MaxKey)} {
		k := Key("p:", s, "~h")
		require.True(t, strings.HasPrefix(k, "p:~h"), "%q should be hashed", s)
		require.Len(t, k, len("p:~h")+HashLen)
		require.True(t, Safe(k))
	}
	require.NotEqual(t, Key("p:", "a b", "~h"), Key("p:", "a  b", "~h"))
	// The longest plain key still fits; one byte more is hashed.
	fit := strings.Repeat("a", MaxKey-2)
	require.Equal(t, "p:"+fit, Key("p:", fit, "~h"))
	require.NotEqual(t, "p:"+fit+"a", Key("p:", fit+"a", "~h"))
}

func TestExpiration(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		deadline time.Time
		want     int32
		ok       bool
	}{
		{now, 0, false},
		{now.Add(-time.Second), 0, false},
		{now.Add(time.Nanosecond), 2, true}, // rounded up, plus the server's tick
		{now.Add(1500 * time.Millisecond), 3, true},
		{now.Add(time.Second), 2, true},
		{now.Add((maxRelative - 1) * time.Second), maxRelative, true},
		{now.Add((maxRelative-1)*time.Second + time.Nanosecond), int32(now.Unix()) + maxRelative + 1, true},
		{now.AddDate(100, 0, 0), math.MaxInt32, true},
		{now.Add(time.Duration(math.MaxInt64)), math.MaxInt32, true}, // no overflow
	} {
		got, ok := Expiration(now, tc.deadline)
		require.Equal(t, tc.ok, ok, "%v", tc.deadline)
		require.Equal(t, tc.want, got, "%v", tc.deadline)
	}
}

func TestTooLarge(t *testing.T) {
	require.True(t, TooLarge(errors.New("memcache: unexpected response line from \"set\": \"SERVER_ERROR object too large for cache\\r\\n\"")))
	require.True(t, TooLarge(errors.New("SERVER_ERROR out of memory storing object")))
	require.False(t, TooLarge(errors.New("connection refused")))
}
