package rediselector_test

import (
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/failover/rediselector"
)

// proxy forwards TCP to a Redis server; Partition(true) cuts every
// connection and refuses new ones, as a network partition of one host.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]*atomic.Bool // true: silenced
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]*atomic.Bool{}}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		_ = ln.Close()
		p.Partition(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			_ = c.Close()
			continue
		}
		silent := new(atomic.Bool)
		p.conns[c], p.conns[u] = silent, silent
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 && !silent.Load() {
					if _, werr := dst.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			_ = dst.Close()
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(u, c) })
		p.wg.Go(func() { pipe(c, u) })
	}
}

// Partition implements electortest.Partitioner's method for the elector
// behind the proxy.
func (p *proxy) Partition(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

// Silence makes every open connection swallow what it carries in both
// directions, without closing it, as a connection whose NAT entry was
// dropped; new connections work.
func (p *proxy) Silence() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.conns {
		s.Store(true)
	}
}

// partitionable is an Elector whose link to Redis a test can cut.
type partitionable struct {
	*rediselector.Elector
	*proxy
}

func randomRole() string { return "test:" + rand.Text() }

func newElector(t *testing.T, c redis.UniversalClient, role, id string, cfg failover.Config) *rediselector.Elector {
	t.Helper()
	cfg.ID = id
	e, err := rediselector.New(c, rediselector.Config{Role: role, Prefix: prefixOf(t), Config: cfg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func candidateID(i int) string { return fmt.Sprint("candidate-", i) }
