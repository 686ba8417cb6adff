// Command dnsskew measures the caveat the notes give about round-robin
// DNS: "each client caches the returned IP address, which means that a
// particular client can be stuck with a particular server ... potentially
// increasing the load on that server".
//
// It starts a round-robin DNS server on loopback (a stub that rotates its
// A records on every query, as BIND's cyclic rrset-order does) and
// resolves through a real net.Resolver, then sends the same requests
// three ways:
//
//   - clients cache one answer: each client resolves once and sends all
//     its requests to the first address. Clients differ in how much they
//     send (a Zipf distribution: a few heavy clients, a long tail), so the
//     clone that a heavy client landed on gets far more than its share,
//     although DNS handed the clients out perfectly evenly;
//   - each request resolves: the rotation applied per request, which is
//     what round-robin DNS promises but caching takes away;
//   - a balancer per request: balance.DNS resolves the name once into a
//     backend set and a balance.RoundRobin spreads every request.
//
// For each it prints the busiest clone's load over the mean (1.00 is a
// perfect spread). It sends no real requests (only DNS queries, on
// loopback), so it finishes in about a second: go run ./examples/dnsskew
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/scaleout/scaleout/balance"
)

// config is one measurement.
type config struct {
	Clones   int     // A records of the name
	Clients  int     // clients, each resolving once in the cached case
	Requests int     // requests, spread over clients by a Zipf law
	ZipfS    float64 // Zipf exponent, > 1: larger is more skewed
	Lookups  int     // requests in the resolve-per-request case (each one a DNS query)
	Seed     uint64
}

var defaultConfig = config{Clones: 8, Clients: 200, Requests: 200_000, ZipfS: 1.2, Lookups: 2_000, Seed: 1}

// spread is how requests fell on the clones.
type spread struct {
	Name   string
	Counts map[string]int // clone address → requests
	Total  int
}

// Ratio is the busiest clone's requests over the mean: 1 is even.
func (s spread) Ratio(clones int) float64 {
	most := 0
	for _, n := range s.Counts {
		most = max(most, n)
	}
	return float64(most) / (float64(s.Total) / float64(clones))
}

// result is the three spreads.
type result struct {
	Cached, PerRequestDNS, Balancer spread
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := run(ctx, os.Stdout, defaultConfig); err != nil {
		log.Fatal(err)
	}
}

const name = "clones.dnsskew.test." // fully qualified: no search domains

func run(ctx context.Context, w io.Writer, cfg config) (result, error) {
	var res result
	if cfg.Clones < 1 || cfg.Clones > 250 || cfg.Clients < 2 || cfg.ZipfS <= 1 {
		return res, errors.New("dnsskew: bad config")
	}
	clones := make([]netip.Addr, cfg.Clones)
	for i := range clones {
		clones[i] = netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)})
	}
	dns, err := startStub(name, clones)
	if err != nil {
		return res, err
	}
	defer dns.close()
	resolver := dns.resolver()

	// Which client sends each request: a few heavy clients, a long tail.
	zipf := rand.NewZipf(rand.New(rand.NewPCG(cfg.Seed, cfg.Seed)), cfg.ZipfS, 1, uint64(cfg.Clients-1))
	senders := make([]int, cfg.Requests)
	for i := range senders {
		senders[i] = int(zipf.Uint64())
	}

	// 1. Each client resolves once and keeps the first address.
	cached := make([]string, cfg.Clients)
	for c := range cached {
		ips, err := resolver.LookupNetIP(ctx, "ip4", name)
		if err != nil {
			return res, fmt.Errorf("dnsskew: client %d: %w", c, err)
		}
		cached[c] = netip.AddrPortFrom(ips[0], 80).String()
	}
	res.Cached = spread{Name: "clients cache one answer", Counts: map[string]int{}}
	for _, c := range senders {
		res.Cached.Counts[cached[c]]++
		res.Cached.Total++
	}

	// 2. Every request resolves again (fewer requests: each is a query).
	res.PerRequestDNS = spread{Name: "each request resolves", Counts: map[string]int{}}
	for range min(cfg.Lookups, cfg.Requests) {
		ips, err := resolver.LookupNetIP(ctx, "ip4", name)
		if err != nil {
			return res, fmt.Errorf("dnsskew: lookup: %w", err)
		}
		res.PerRequestDNS.Counts[netip.AddrPortFrom(ips[0], 80).String()]++
		res.PerRequestDNS.Total++
	}

	// 3. A balancer resolves the set once and picks per request.
	lb := balance.NewRoundRobin()
	discovery, err := balance.NewDNS(balance.DNSConfig{Name: name, Port: 80, Network: "ip4", Resolver: resolver})
	if err != nil {
		return res, err
	}
	set, err := discovery.Resolve(ctx)
	if err != nil {
		return res, err
	}
	if err := lb.Update(set); err != nil {
		return res, err
	}
	res.Balancer = spread{Name: "a balancer per request", Counts: map[string]int{}}
	for range senders {
		c, err := lb.Pick(ctx, "")
		if err != nil {
			return res, err
		}
		res.Balancer.Counts[c.Backend().Addr]++
		res.Balancer.Total++
		c.Done(nil)
	}

	heavy := 0
	for _, c := range senders {
		if c == 0 {
			heavy++
		}
	}
	fmt.Fprintf(w, "round-robin DNS over %d clones; %d clients, request rates Zipf(s=%.1f): the heaviest client sends %.0f%%\n",
		cfg.Clones, cfg.Clients, cfg.ZipfS, 100*float64(heavy)/float64(len(senders)))
	fmt.Fprintf(w, "A queries the DNS stub answered: %d\n\n", dns.queries())
	fmt.Fprintf(w, "%-26s %9s %8s   %s\n", "", "requests", "max/mean", "share of each clone (%)")
	for _, s := range []spread{res.Cached, res.PerRequestDNS, res.Balancer} {
		var shares []string
		for _, ip := range clones {
			n := s.Counts[netip.AddrPortFrom(ip, 80).String()]
			shares = append(shares, fmt.Sprintf("%4.1f", 100*float64(n)/float64(s.Total)))
		}
		fmt.Fprintf(w, "%-26s %9d %8.2f   %s\n", s.Name, s.Total, s.Ratio(cfg.Clones), strings.Join(shares, " "))
	}
	fmt.Fprintf(w, "\nDNS gave every clone the same number of clients; caching turned that into a %.2f× overload.\n",
		res.Cached.Ratio(cfg.Clones))
	return res, nil
}

// stub is a round-robin DNS server for one name on UDP loopback: it
// answers A queries with the clones' addresses, rotated by one on every
// query, and NXDOMAIN for any other name.
type stub struct {
	conn  *net.UDPConn
	name  string
	addrs []netip.Addr
	wg    sync.WaitGroup

	mu   sync.Mutex
	turn int
}

func startStub(name string, addrs []netip.Addr) (*stub, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	s := &stub{conn: conn, name: strings.ToLower(name), addrs: addrs}
	s.wg.Go(s.serve)
	return s, nil
}

func (s *stub) close() {
	s.conn.Close()
	s.wg.Wait()
}

func (s *stub) queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.turn
}

// resolver is a pure-Go Resolver that asks only the stub.
func (s *stub) resolver() *net.Resolver {
	addr := s.conn.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

func (s *stub) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		if resp := s.answer(buf[:n]); resp != nil {
			_, _ = s.conn.WriteToUDPAddrPort(resp, from)
		}
	}
}

// answer parses one query (header and question) and builds the answer.
func (s *stub) answer(q []byte) []byte {
	if len(q) < 12 || q[2]&0x80 != 0 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	var labels []string
	off := 12
	for {
		if off >= len(q) {
			return nil
		}
		n := int(q[off])
		off++
		if n == 0 {
			break
		}
		if n > 63 || off+n > len(q) {
			return nil
		}
		labels = append(labels, string(q[off:off+n]))
		off += n
	}
	if off+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[off:])
	question := q[12 : off+4]

	rcode := byte(0)
	var answers []netip.Addr
	if strings.ToLower(strings.Join(labels, ".")+".") != s.name {
		rcode = 3 // NXDOMAIN
	} else if qtype == 1 { // A; other types get an empty answer
		s.mu.Lock()
		k := s.turn % len(s.addrs)
		s.turn++
		s.mu.Unlock()
		answers = append(slices.Clone(s.addrs[k:]), s.addrs[:k]...)
	}

	resp := make([]byte, 12, 512)
	copy(resp, q[:2])          // ID
	resp[2] = 0x84 | q[2]&0x01 // response, authoritative, RD copied
	resp[3] = 0x80 | rcode     // recursion available
	binary.BigEndian.PutUint16(resp[4:], 1)
	binary.BigEndian.PutUint16(resp[6:], uint16(len(answers)))
	resp = append(resp, question...)
	for _, a := range answers {
		resp = append(resp, 0xC0, 12)                 // the question's name
		resp = binary.BigEndian.AppendUint16(resp, 1) // A
		resp = binary.BigEndian.AppendUint16(resp, 1) // IN
		resp = binary.BigEndian.AppendUint32(resp, 300)
		resp = binary.BigEndian.AppendUint16(resp, 4)
		resp = append(resp, a.AsSlice()...)
	}
	return resp
}
