package shard

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
)

// AddrSelector puts a Sharder where a memcached client picks servers: it
// implements gomemcache's memcache.ServerSelector (PickServer and Each), so
//
//	sel, err := shard.NewAddrSelector(ring) // shard names are "host:port"
//	mc := memcache.NewFromSelector(sel)
//
// gives a memcached pool consistent hashing instead of gomemcache's default
// CRC32 mod N, which remaps almost every key when a server is added. With a
// Ring built with RingConfig{Ketama: true}, keys land on the same servers as
// in other ketama clients (libmemcached, pylibmc, spymemcached in ketama
// mode) given the same server list, weights and keys without hash tags.
//
// Shard names must be TCP "host:port" addresses or, containing a '/', Unix
// socket paths; they are resolved once, by Set. Set swaps the Sharder
// atomically while lookups go on.
type AddrSelector struct {
	cur atomic.Pointer[selection]
}

type selection struct {
	s     Sharder
	addrs map[string]net.Addr
	list  []net.Addr // in Shards() order
}

// NewAddrSelector returns an AddrSelector over s.
func NewAddrSelector(s Sharder) (*AddrSelector, error) {
	a := &AddrSelector{}
	if err := a.Set(s); err != nil {
		return nil, err
	}
	return a, nil
}

// Set resolves the shard names of s and makes s the selector's Sharder. On
// error the previous Sharder stays in place.
func (a *AddrSelector) Set(s Sharder) error {
	if s == nil {
		return ErrNoShards
	}
	sel := &selection{s: s, addrs: make(map[string]net.Addr, len(s.Shards()))}
	for _, name := range s.Shards() {
		addr, err := resolve(name)
		if err != nil {
			return fmt.Errorf("%w: shard %q is not an address: %v", ErrInvalidConfig, name, err)
		}
		sel.addrs[name] = addr
		sel.list = append(sel.list, addr)
	}
	a.cur.Store(sel)
	return nil
}

// staticAddr is a resolved address whose Network and String never change,
// so the memcache client can key its connection pools by it.
type staticAddr struct{ network, str string }

func (s staticAddr) Network() string { return s.network }
func (s staticAddr) String() string  { return s.str }

func resolve(name string) (net.Addr, error) {
	if strings.Contains(name, "/") {
		ua, err := net.ResolveUnixAddr("unix", name)
		if err != nil {
			return nil, err
		}
		return staticAddr{ua.Network(), ua.String()}, nil
	}
	ta, err := net.ResolveTCPAddr("tcp", name)
	if err != nil {
		return nil, err
	}
	return staticAddr{ta.Network(), ta.String()}, nil
}

// PickServer returns the address of the shard that owns key.
func (a *AddrSelector) PickServer(key string) (net.Addr, error) {
	sel := a.cur.Load()
	return sel.addrs[sel.s.Shard(key)], nil
}

// Each calls f with every server address, stopping at the first error.
func (a *AddrSelector) Each(f func(net.Addr) error) error {
	for _, addr := range a.cur.Load().list {
		if err := f(addr); err != nil {
			return err
		}
	}
	return nil
}
