// Package testenv is the helper every scaleout integration test uses to reach the real
// servers that scripts/services.sh starts, and to start private servers for fault tests.
//
// # Shared servers
//
// The address functions read one environment variable each:
//
//	RedisAddr          SCALEOUT_REDIS_ADDR            host:port
//	RedisClusterAddrs  SCALEOUT_REDIS_CLUSTER_ADDRS   host:port,host:port,...
//	MemcachedAddr      SCALEOUT_MEMCACHED_ADDR        host:port
//	PGPrimaryDSN       SCALEOUT_PG_PRIMARY_DSN        postgres://... (a writable primary)
//	PGReplicaDSN       SCALEOUT_PG_REPLICA_DSN        postgres://... (its streaming standby)
//	MySQLPrimaryDSN    SCALEOUT_MYSQL_PRIMARY_DSN     root@tcp(host:port)/scaleout?parseTime=true (MariaDB primary)
//	MySQLReplicaDSN    SCALEOUT_MYSQL_REPLICA_DSN     root@tcp(...)/... (its read-only replica)
//	RedisSentinelAddrs SCALEOUT_REDIS_SENTINEL_ADDRS  host:port,... (three sentinels)
//	RedisSentinelMaster SCALEOUT_REDIS_SENTINEL_MASTER the name they monitor the master under
//
// When a variable is unset the test is skipped with a message naming it and saying how to
// set it (eval "$(scripts/services.sh env)", or make test). When
// SCALEOUT_REQUIRE_SERVICES=1 (make test and .ci/run set it) the test fails instead, so
// CI can never pass by skipping.
//
// # Keys and cleanup
//
// Tests share those servers, with each other and with parallel packages, so every test
// keeps its keys under its own prefix. Prefix(t) returns it: the same string for every
// call within one test (and different for each subtest, each test and each run), of the
// form
//
//	scaleout-test:<sanitized test name>:<16 random hex digits>:
//
// It holds only [A-Za-z0-9_.:-], so it is safe in glob patterns and never contains a
// Redis Cluster {hash tag}; a test that needs keys in one slot adds its own tag after it.
//
// RedisClient, RedisClusterClient and MemcachedClient return a ready (PINGed) client on
// the shared server and register a t.Cleanup that deletes every key under Prefix(t) and
// then closes the client. The usual shape is:
//
//	func TestStore(t *testing.T) {
//		rdb := testenv.RedisClient(t)
//		store := redisstore.New(rdb, redisstore.Config{Prefix: testenv.Prefix(t)})
//		...
//	}
//
// Only keys under Prefix(t) are cleaned up: a test writes nothing else. Subtests get
// their own prefix; a subtest that writes keys calls the client function with its own t
// (clients are cheap), or keeps using its parent's prefix. Cleanup deletes Redis keys with
// SCAN MATCH prefix* and UNLINK (on the Cluster, on every master); memcached has no key
// listing, so its cleanup lists keys with "lru_crawler metadump all" and deletes the
// matching ones. The cleanup uses its own connection, so a test may close the client it
// was given. gomemcache clients have no Close: they hold only idle sockets, no goroutines.
//
// # Private servers for fault tests
//
// StartRedis and StartMemcached run a server of the test's own on a free loopback port,
// with its files in t.TempDir(). Kill sends SIGKILL, Stop shuts down gracefully, and
// Restart starts it again on the same port with the same directory, so with
// RedisOptions{AppendOnly: true} (appendfsync always) every acknowledged write survives a
// Kill and Restart. A t.Cleanup kills the server; on Linux the server also dies with the
// test binary. The methods must be called from the test's goroutine. They need the
// redis-server or memcached binary in $PATH; without it the test skips (or fails under
// SCALEOUT_REQUIRE_SERVICES=1) naming the binary and the Debian package to install.
//
// Pause freezes a private server with SIGSTOP (it keeps its connections and answers
// nothing: a hung server) and Resume lets it go on.
//
// # Replicated Redis
//
// RedisSentinelClient returns a FailoverClient (go-redis's defaults but
// ContextTimeoutEnabled) on the shared Sentinel group; SentinelTopology and
// RedisTopologiesWithSentinel add it to the deployments a store is tested on. No
// test may fail the shared group over, nor the shared Cluster: go test runs packages
// in parallel, and a switch there would make every other package's test that is
// using it at that moment see errors it does not expect.
//
// A failover test starts its own: StartSentinelGroup runs a master, its replica and
// three sentinels (down-after-milliseconds 1 s) on free ports and returns once
// the sentinels know each other and the replica is in sync (about 3 s); StartCluster
// runs three masters with a replica each (node timeout 1 s). Failover and
// FailoverShard force a switch (SENTINEL FAILOVER, CLUSTER FAILOVER on the
// replica); KillMaster SIGKILLs the master, WaitSwitched waits for the new one and
// Rejoin starts the dead node again as a replica. Every one of them returns only
// once the topology is healthy again (all agree on the master, it takes writes,
// the replicas are in sync), so the next step starts from a sound group.
// CutReplication pauses the replicas and drops their links, so that the writes
// that follow reach the master only: killing the master then loses them, the case
// a durable setting must survive. Failovers says how many switches a failover test
// runs (SCALEOUT_FAILOVERS, 2 by default).
//
// # Network faults
//
// StartFaultProxy puts a TCP proxy on a free loopback port in front of any server (a
// shared one or a private one); the client under test dials its Addr. DropReply arms a
// lost reply (the request reaches the server, its reply is swallowed and the connection
// reset: the case a client's retry turns into a second application), SetDelay slows
// both directions, Blackhole makes the server look hung, Refuse makes it look gone and
// ResetAll resets every connection. go-redis sends HELLO and CLIENT SETINFO on every new
// connection, so a DropReply rule should match the command it means, not any bytes.
//
// StartPostgresPair does the same for PostgreSQL, for tests that stop a primary, promote
// its standby (SELECT pg_promote()) or pause replay, which they must never do to the
// shared servers. It creates a primary with initdb, clones a hot standby from it with
// pg_basebackup -R, starts both on free loopback ports and returns once the standby
// streams, within about two seconds on an idle machine. Each PostgresServer has DSN and
// Addr, which survive Stop and Start; Kill sends SIGKILL to the postmaster and its
// children, Stop is a fast shutdown (SIGINT), and Start runs the server again on its port
// and data directory. The
// settings are those of scripts/services.sh (fsync and synchronous_commit off, so Kill
// may lose the last few hundred milliseconds of commits of sessions that do not set
// synchronous_commit = on). The programs come from the newest
// /usr/lib/postgresql/<version>/bin or from $PATH (Debian package postgresql); as root
// they run as the OS user postgres, which must exist. It is not available on Windows.
//
// # Browser tests
//
// ChromiumPath returns the Chromium binary a browser test runs: $SCALEOUT_CHROMIUM
// (scripts/services.sh env exports it), else chromium or chromium-browser in $PATH
// (Debian package chromium, which scripts/services.sh up installs); without it the test
// skips, or fails under SCALEOUT_REQUIRE_SERVICES=1. The browser tests themselves, and
// chromedp that drives the browser, live in the nested module browsertest, so that the
// root module does not depend on a browser driver.
//
// No goroutine or process started here outlives the test that asked for it.
package testenv
