package chaos

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/memcachedstore"
	"github.com/scaleout/scaleout/session/redisstore"
)

// rotateGrace is short, so that forwards of rotated IDs expire within a
// run, and requests presenting them after that are checked too.
const rotateGrace = 2 * time.Second

// clones is how many Managers (clones of a service) share a store.
const clones = 3

// A chaosBackend is a store per clone, each reaching its server through
// links of its own, with the processes the run may pause and kill.
type chaosBackend struct {
	name      string
	stores    []session.SessionStore
	links     []*testenv.FaultProxy
	procs     []Process
	losesData bool              // a kill and restart empties the server
	pace      time.Duration     // the workload's Pace
	request   func([]byte) bool // requests a lost reply may hit
}

// redisCommand matches every request but a connection's handshake.
func redisCommand(req []byte) bool {
	return !bytes.Contains(req, []byte("hello")) && !bytes.Contains(req, []byte("client"))
}

func redisClients(t *testing.T, addr string) ([]*redis.Client, []*testenv.FaultProxy) {
	var cs []*redis.Client
	var links []*testenv.FaultProxy
	for range clones {
		p := testenv.StartFaultProxy(t, addr)
		c := redis.NewClient(&redis.Options{Addr: p.Addr(), ContextTimeoutEnabled: true})
		t.Cleanup(func() { _ = c.Close() })
		cs, links = append(cs, c), append(links, p)
	}
	return cs, links
}

// clusterClients returns a Cluster client per clone, each reaching every
// node of the Cluster at addrs through a proxy of its own, and the proxies.
func clusterClients(t *testing.T, addrs []string) ([]*redis.ClusterClient, []*testenv.FaultProxy) {
	var cs []*redis.ClusterClient
	var links []*testenv.FaultProxy
	for range clones {
		proxies := map[string]*testenv.FaultProxy{}
		for _, a := range addrs {
			proxies[a] = testenv.StartFaultProxy(t, a)
			links = append(links, proxies[a])
		}
		var d net.Dialer
		c := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:                 addrs,
			ContextTimeoutEnabled: true,
			Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if p, ok := proxies[addr]; ok {
					addr = p.Addr()
				}
				return d.DialContext(ctx, network, addr)
			},
		})
		t.Cleanup(func() { _ = c.Close() })
		cs = append(cs, c)
	}
	return cs, links
}

func sessionBackends(t *testing.T) []func(t *testing.T) chaosBackend {
	return []func(t *testing.T) chaosBackend{
		func(t *testing.T) chaosBackend {
			m, err := session.NewMemory(session.MemoryConfig{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close() })
			return chaosBackend{name: "memory", stores: []session.SessionStore{m, m, m}, pace: 200 * time.Microsecond}
		},
		func(t *testing.T) chaosBackend { return privateRedis(t, true) },
		func(t *testing.T) chaosBackend { return privateRedis(t, false) },
		func(t *testing.T) chaosBackend {
			addrs := testenv.RedisClusterAddrs(t)
			testenv.RedisClusterClient(t) // deletes Prefix(t) at the end
			b := chaosBackend{name: "redis-cluster", request: redisCommand}
			cs, links := clusterClients(t, addrs)
			b.links = links
			for _, c := range cs {
				s, err := redisstore.New(c, redisstore.Config{Prefix: testenv.Prefix(t)})
				if err != nil {
					t.Fatal(err)
				}
				b.stores = append(b.stores, s)
			}
			return b
		},
		func(t *testing.T) chaosBackend {
			// The model keeps every acknowledged write until a crash: a full
			// server must refuse a store (a failed request) rather than evict.
			srv := testenv.StartMemcachedWith(t, testenv.MemcachedOptions{NoEviction: true})
			b := chaosBackend{name: "memcached", procs: []Process{srv}, losesData: true}
			for range clones {
				p := testenv.StartFaultProxy(t, srv.Addr())
				s, err := memcachedstore.New(memcache.New(p.Addr()), memcachedstore.Config{})
				if err != nil {
					t.Fatal(err)
				}
				b.stores, b.links = append(b.stores, s), append(b.links, p)
			}
			return b
		},
	}
}

// privateRedis is a redis-server of the run's own, with an append-only
// file synced on every write (a kill loses nothing acknowledged) or
// without persistence (a kill empties it).
func privateRedis(t *testing.T, persistent bool) chaosBackend {
	srv := testenv.StartRedis(t, testenv.RedisOptions{AppendOnly: persistent})
	cs, links := redisClients(t, srv.Addr())
	b := chaosBackend{name: "redis (appendfsync always)", links: links, procs: []Process{srv}, request: redisCommand}
	if !persistent {
		b.name, b.losesData = "redis (no persistence)", true
	}
	for _, c := range cs {
		s, err := redisstore.New(c, redisstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		b.stores = append(b.stores, s)
	}
	return b
}

// TestSessionChaos runs the session model on every store: clones of a
// service serve families of requests (appends, reads, renewals, a logout)
// while the schedule breaks links and servers, and the history must be
// linearizable per family.
func TestSessionChaos(t *testing.T) {
	runModel(t, "session", sessionBackends(t), func(b chaosBackend) string { return b.name },
		func(t *testing.T, b chaosBackend, s uint64, d time.Duration) modelRun {
			var managers []*session.Manager
			for _, st := range b.stores {
				m, err := session.NewManager(st, session.Config{StoreTimeout: 2 * time.Second, RotateGrace: rotateGrace,
					Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				managers = append(managers, m)
			}
			w := NewSessionWorkload(managers, s)
			w.RotateGrace, w.Pace = rotateGrace, b.pace
			sched := NewSchedule(s, b.links, b.procs, b.request)
			sched.LosesData, sched.OnCrash = b.losesData, w.Crash
			ctx, cancel := context.WithTimeout(t.Context(), d)
			defer cancel()
			driven := make(chan struct{})
			go func() { defer close(driven); w.Drive(ctx) }()
			sched.Run(ctx) // on the test's goroutine: it restarts servers
			<-driven
			ops := w.Verify()
			return modelRun{len(ops), sched.String(), CheckSessions(ops)}
		})
}
