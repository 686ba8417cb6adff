package balance

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// DNS record types and response codes the stub knows.
const (
	stubTypeA    = 1
	stubTypeAAAA = 28
	stubTypeSRV  = 33

	stubRcodeOK       = 0
	stubRcodeServFail = 2
	stubRcodeNXDomain = 3
)

// stubSRV is one SRV record the stub serves.
type stubSRV struct {
	Priority, Weight, Port uint16
	Target                 string
}

// dnsStub is a tiny authoritative DNS server on UDP 127.0.0.1:0, written
// with the standard library only: it parses one question and answers A,
// AAAA and SRV records from its tables, rotating the answer order on
// every query like a round-robin DNS server. Names are matched
// case-insensitively, fully qualified ("name.test.").
type dnsStub struct {
	conn    *net.UDPConn
	queries atomic.Int64

	mu    sync.Mutex
	addrs map[string][]netip.Addr // name → A and AAAA
	srvs  map[string][]stubSRV
	rcode int // forced response code; 0 answers from the tables
	turn  int
	wg    sync.WaitGroup
}

// newDNSStub starts a stub and stops it when the test ends.
func newDNSStub(t testing.TB) *dnsStub {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsStub{conn: conn, addrs: map[string][]netip.Addr{}, srvs: map[string][]stubSRV{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		conn.Close()
		s.wg.Wait()
	})
	return s
}

// setAddrs sets a name's A/AAAA records.
func (s *dnsStub) setAddrs(name string, addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ips := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		ips[i] = netip.MustParseAddr(a)
	}
	s.addrs[strings.ToLower(name)] = ips
}

// setSRV sets a name's SRV records.
func (s *dnsStub) setSRV(name string, recs ...stubSRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srvs[strings.ToLower(name)] = recs
}

// setRcode forces every answer's response code (0 to answer normally).
func (s *dnsStub) setRcode(rcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rcode = rcode
}

// resolver returns a pure-Go Resolver that sends every query to the stub.
func (s *dnsStub) resolver() *net.Resolver {
	addr := s.conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

func (s *dnsStub) serve() {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.queries.Add(1)
		if resp := s.answer(buf[:n]); resp != nil {
			_, _ = s.conn.WriteToUDPAddrPort(resp, from)
		}
	}
}

// answer builds the response to one query, or nil for a packet that is
// not a query it understands.
func (s *dnsStub) answer(q []byte) []byte {
	if len(q) < 12 || q[2]&0x80 != 0 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	name, end, ok := stubParseName(q, 12)
	if !ok || end+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[end:])
	question := q[12 : end+4] // name, type, class, echoed verbatim

	s.mu.Lock()
	rcode := s.rcode
	var rdatas [][]byte
	key := strings.ToLower(name)
	_, hasAddrs := s.addrs[key]
	_, hasSRV := s.srvs[key]
	switch qtype {
	case stubTypeA, stubTypeAAAA:
		for _, ip := range s.addrs[key] {
			if ip.Is4() == (qtype == stubTypeA) {
				rdatas = append(rdatas, ip.AsSlice())
			}
		}
	case stubTypeSRV:
		for _, r := range s.srvs[key] {
			rd := binary.BigEndian.AppendUint16(nil, r.Priority)
			rd = binary.BigEndian.AppendUint16(rd, r.Weight)
			rd = binary.BigEndian.AppendUint16(rd, r.Port)
			rdatas = append(rdatas, stubAppendName(rd, r.Target))
		}
	}
	if len(rdatas) > 0 { // rotate, as round-robin DNS servers do
		k := s.turn % len(rdatas)
		rdatas = append(rdatas[k:], rdatas[:k]...)
	}
	s.turn++
	s.mu.Unlock()
	if rcode == stubRcodeOK && !hasAddrs && !hasSRV {
		rcode = stubRcodeNXDomain
	}
	if rcode != stubRcodeOK {
		rdatas = nil
	}

	resp := make([]byte, 12, 512)
	copy(resp, q[:2])                       // ID
	resp[2] = 0x84 | q[2]&0x01              // QR, AA, copy RD
	resp[3] = 0x80 | byte(rcode)            // RA, RCODE
	binary.BigEndian.PutUint16(resp[4:], 1) // QDCOUNT
	binary.BigEndian.PutUint16(resp[6:], uint16(len(rdatas)))
	resp = append(resp, question...)
	for _, rd := range rdatas {
		resp = append(resp, 0xC0, 12) // pointer to the question's name
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, 1) // class IN
		resp = binary.BigEndian.AppendUint32(resp, 0) // TTL
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rd)))
		resp = append(resp, rd...)
	}
	return resp
}

// stubParseName reads an uncompressed name at off and returns it with a
// trailing dot and the offset after it.
func stubParseName(b []byte, off int) (string, int, bool) {
	var sb strings.Builder
	for {
		if off >= len(b) {
			return "", 0, false
		}
		n := int(b[off])
		off++
		if n == 0 {
			break
		}
		if n > 63 || off+n > len(b) {
			return "", 0, false
		}
		sb.Write(b[off : off+n])
		sb.WriteByte('.')
		off += n
	}
	if sb.Len() == 0 {
		return ".", off, true
	}
	return sb.String(), off, true
}

// stubAppendName appends name in wire format.
func stubAppendName(b []byte, name string) []byte {
	for label := range strings.SplitSeq(strings.TrimSuffix(name, "."), ".") {
		if label == "" {
			continue
		}
		b = append(b, byte(len(label)))
		b = append(b, label...)
	}
	return append(b, 0)
}
