package testenv

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The environment variables this package reads.
const (
	EnvRedisAddr         = "SCALEOUT_REDIS_ADDR"
	EnvRedisClusterAddrs = "SCALEOUT_REDIS_CLUSTER_ADDRS"
	EnvMemcachedAddr     = "SCALEOUT_MEMCACHED_ADDR"
	EnvPGPrimaryDSN      = "SCALEOUT_PG_PRIMARY_DSN"
	EnvPGReplicaDSN      = "SCALEOUT_PG_REPLICA_DSN"
	EnvMySQLPrimaryDSN   = "SCALEOUT_MYSQL_PRIMARY_DSN"
	EnvMySQLReplicaDSN   = "SCALEOUT_MYSQL_REPLICA_DSN"
	// EnvRequireServices, when true (1), turns every skip for a missing server or
	// binary into a failure.
	EnvRequireServices = "SCALEOUT_REQUIRE_SERVICES"
)

// action is what a test does about a missing service.
type action int

const (
	use  action = iota // the value is there: use it
	skip               // t.Skip with the message
	fail               // t.Fatal with the message
)

func (a action) String() string {
	switch a {
	case use:
		return "use"
	case skip:
		return "skip"
	case fail:
		return "fail"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// required reports whether SCALEOUT_REQUIRE_SERVICES asks for failures over skips.
func required(getenv func(string) string) bool {
	ok, err := strconv.ParseBool(strings.TrimSpace(getenv(EnvRequireServices)))
	return err == nil && ok
}

// missing decides between skip and fail for a missing service described by msg.
func missing(getenv func(string) string, msg string) (action, string) {
	if required(getenv) {
		return fail, msg + " (" + EnvRequireServices + " is set, so this is a failure)"
	}
	return skip, msg
}

// decide looks up the variable name and says what a test should do.
func decide(getenv func(string) string, name string) (value string, act action, msg string) {
	value = strings.TrimSpace(getenv(name))
	if value != "" {
		return value, use, ""
	}
	act, msg = missing(getenv, fmt.Sprintf(
		"testenv: %s is not set; start the test servers and export their addresses with "+
			`eval "$(scripts/services.sh up)" (or eval "$(scripts/services.sh env)" when they are up), or run make test`,
		name))
	return "", act, msg
}

// apply carries out act on t.
func apply(t testing.TB, act action, msg string) {
	t.Helper()
	switch act {
	case skip:
		t.Skip(msg)
	case fail:
		t.Fatal(msg)
	}
}

func lookupEnv(t testing.TB, name string) string {
	t.Helper()
	v, act, msg := decide(os.Getenv, name)
	apply(t, act, msg)
	return v
}

// RedisAddr returns the address (host:port) of the shared Redis server.
func RedisAddr(t testing.TB) string {
	t.Helper()
	return lookupEnv(t, EnvRedisAddr)
}

// RedisClusterAddrs returns the seed addresses of the shared Redis Cluster.
func RedisClusterAddrs(t testing.TB) []string {
	t.Helper()
	return splitAddrs(lookupEnv(t, EnvRedisClusterAddrs))
}

// MemcachedAddr returns the address (host:port) of the shared memcached server.
func MemcachedAddr(t testing.TB) string {
	t.Helper()
	return lookupEnv(t, EnvMemcachedAddr)
}

// PGPrimaryDSN returns the connection URL of the shared PostgreSQL primary.
func PGPrimaryDSN(t testing.TB) string {
	t.Helper()
	return lookupEnv(t, EnvPGPrimaryDSN)
}

// PGReplicaDSN returns the connection URL of the streaming standby of PGPrimaryDSN.
func PGReplicaDSN(t testing.TB) string {
	t.Helper()
	return lookupEnv(t, EnvPGReplicaDSN)
}

// MySQLPrimaryDSN returns the go-sql-driver/mysql DSN of the shared MariaDB primary
// (user@tcp(host:port)/scaleout?parseTime=true).
func MySQLPrimaryDSN(t testing.TB) string {
	t.Helper()
	return lookupEnv(t, EnvMySQLPrimaryDSN)
}

// MySQLReplicaDSN returns the go-sql-driver/mysql DSN of the read-only replica of
// MySQLPrimaryDSN.
func MySQLReplicaDSN(t testing.TB) string {
	t.Helper()
	return lookupEnv(t, EnvMySQLReplicaDSN)
}

func splitAddrs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
