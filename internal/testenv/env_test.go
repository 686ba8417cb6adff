package testenv

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestDecide(t *testing.T) {
	t.Parallel()
	const v = EnvRedisAddr
	tests := []struct {
		name  string
		env   map[string]string
		value string
		act   action
	}{
		{"unset skips", map[string]string{}, "", skip},
		{"blank skips", map[string]string{v: "  "}, "", skip},
		{"unset with require=1 fails", map[string]string{EnvRequireServices: "1"}, "", fail},
		{"unset with require=true fails", map[string]string{EnvRequireServices: "true"}, "", fail},
		{"unset with require=0 skips", map[string]string{EnvRequireServices: "0"}, "", skip},
		{"unset with require=junk skips", map[string]string{EnvRequireServices: "maybe"}, "", skip},
		{"set is used", map[string]string{v: " 127.0.0.1:6379 "}, "127.0.0.1:6379", use},
		{"set is used under require", map[string]string{v: "127.0.0.1:6379", EnvRequireServices: "1"}, "127.0.0.1:6379", use},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			value, act, msg := decide(mapEnv(tc.env), v)
			require.Equal(t, tc.value, value)
			require.Equal(t, tc.act, act, "action %v, want %v", act, tc.act)
			if act == use {
				require.Empty(t, msg)
				return
			}
			require.Contains(t, msg, v)
			require.Contains(t, msg, `eval "$(scripts/services.sh env)"`)
			require.Contains(t, msg, "make test")
			if act == fail {
				require.Contains(t, msg, EnvRequireServices)
			}
		})
	}
}

func TestSplitAddrs(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"a:1", "b:2"}, splitAddrs(" a:1, ,b:2,"))
	require.Empty(t, splitAddrs(""))
}

// recorder stands in for a test so that Skip and Fatal can be observed without ending
// the real one.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()           {}
func (r *recorder) Skip(args ...any)  { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatal(args ...any) { r.failed = fmt.Sprint(args...) }

func TestAccessorsSkipOrFail(t *testing.T) {
	accessors := map[string]func(testing.TB){
		EnvRedisAddr:         func(t testing.TB) { RedisAddr(t) },
		EnvRedisClusterAddrs: func(t testing.TB) { RedisClusterAddrs(t) },
		EnvMemcachedAddr:     func(t testing.TB) { MemcachedAddr(t) },
		EnvPGPrimaryDSN:      func(t testing.TB) { PGPrimaryDSN(t) },
		EnvPGReplicaDSN:      func(t testing.TB) { PGReplicaDSN(t) },
		EnvMySQLPrimaryDSN:   func(t testing.TB) { MySQLPrimaryDSN(t) },
		EnvMySQLReplicaDSN:   func(t testing.TB) { MySQLReplicaDSN(t) },
	}
	for name := range accessors {
		t.Setenv(name, "")
	}
	for name, get := range accessors {
		t.Setenv(EnvRequireServices, "")
		r := &recorder{TB: t}
		get(r)
		require.Contains(t, r.skipped, name)
		require.Empty(t, r.failed)

		t.Setenv(EnvRequireServices, "1")
		r = &recorder{TB: t}
		get(r)
		require.Contains(t, r.failed, name)
		require.Empty(t, r.skipped)
	}

	t.Setenv(EnvRedisClusterAddrs, "127.0.0.1:7001, 127.0.0.1:7002")
	r := &recorder{TB: t}
	require.Equal(t, []string{"127.0.0.1:7001", "127.0.0.1:7002"}, RedisClusterAddrs(r))
	require.Empty(t, r.failed+r.skipped)

	const dsn = "root@tcp(127.0.0.1:3308)/scaleout?parseTime=true"
	t.Setenv(EnvMySQLReplicaDSN, dsn)
	require.Equal(t, dsn, MySQLReplicaDSN(r))
	require.Empty(t, r.failed+r.skipped)
}

func TestFindBinaryMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, act, msg := findBinary(mapEnv(nil), "memcached", "memcached")
	require.Equal(t, skip, act)
	require.Contains(t, msg, "memcached not found")
	require.Contains(t, msg, "apt-get install memcached")

	_, act, msg = findBinary(mapEnv(map[string]string{EnvRequireServices: "1"}), "redis-server", "redis-server")
	require.Equal(t, fail, act)
	require.Contains(t, msg, "apt-get install redis-server")
}
