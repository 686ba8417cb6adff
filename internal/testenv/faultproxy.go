package testenv

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A FaultProxy is a TCP proxy on a loopback port in front of one server, for tests that
// need the network to misbehave between a client and a real server: a reply lost after
// the server acted on the request, a delay, a server that accepts and never answers, a
// connection reset, a refused connection. Point the client at Addr instead of the
// server's address; with no fault set, bytes pass through unchanged in both directions.
//
// Faults apply to every connection through the proxy, existing and new, from the moment
// the method returns. Its t.Cleanup closes the listener and every connection and waits
// for the proxy's goroutines.
type FaultProxy struct {
	t      testing.TB
	target string
	ln     net.Listener

	delay     atomic.Int64 // nanoseconds added before each forwarded chunk
	blackhole atomic.Bool
	refuse    atomic.Bool

	mu     sync.Mutex
	conns  map[*proxyConn]struct{}
	drops  []func(request []byte) bool // armed DropReply rules, oldest first
	closed bool
	wg     sync.WaitGroup

	accepted       atomic.Int64
	droppedReplies atomic.Int64
}

// proxyConn is one client connection and the proxy's connection to the server for it.
type proxyConn struct {
	client, server net.Conn
	dropNext       atomic.Bool // swallow the next reply and reset
	once           sync.Once
}

// reset closes both sides with SO_LINGER 0, so the client sees a reset, not a clean EOF.
func (c *proxyConn) reset() {
	c.once.Do(func() {
		for _, nc := range []net.Conn{c.client, c.server} {
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = nc.Close()
		}
	})
}

// StartFaultProxy starts a proxy to target (host:port) on a free loopback port.
func StartFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: fault proxy: %v", err)
	}
	p := &FaultProxy{t: t, target: target, ln: ln, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the address clients dial instead of the server's.
func (p *FaultProxy) Addr() string { return p.ln.Addr().String() }

// SetDelay holds every chunk of bytes for d before forwarding it, in both directions
// (a request and its reply each wait d). 0 removes the delay.
func (p *FaultProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// DropReply arms one lost reply: the next chunk a client sends for which match returns
// true (nil matches any) is forwarded to the server, and the server's reply to it is
// swallowed and the connection reset. The server acted on the request; the client never
// learns so, as when a reply is lost in the network. Each call arms one drop; rules
// fire in the order they were armed.
func (p *FaultProxy) DropReply(match func(request []byte) bool) {
	if match == nil {
		match = func([]byte) bool { return true }
	}
	p.mu.Lock()
	p.drops = append(p.drops, match)
	p.mu.Unlock()
}

// Disarm drops the DropReply rules that have not fired yet.
func (p *FaultProxy) Disarm() {
	p.mu.Lock()
	p.drops = nil
	p.mu.Unlock()
}

// Armed reports how many DropReply rules have not fired yet.
func (p *FaultProxy) Armed() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.drops)
}

// DroppedReplies reports how many replies DropReply rules have swallowed.
func (p *FaultProxy) DroppedReplies() int64 { return p.droppedReplies.Load() }

// Blackhole, while on, makes the server look hung: connections are accepted, and bytes
// in both directions are read and thrown away, so requests are never answered. Turning
// it off resets the connections that lost bytes; new connections work again.
func (p *FaultProxy) Blackhole(on bool) {
	if p.blackhole.Swap(on) && !on {
		p.ResetAll()
	}
}

// Refuse, while on, resets every connection and closes each new one as soon as it is
// accepted, as a server that went away does.
func (p *FaultProxy) Refuse(on bool) {
	// Under the lock accept registers connections with: one accepted as
	// Refuse turns on is either reset here or refused there, never kept.
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse.Store(on)
	if on {
		for c := range p.conns {
			c.reset()
		}
	}
}

// ResetAll resets every open connection through the proxy.
func (p *FaultProxy) ResetAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.reset()
	}
}

// Accepted reports how many connections the proxy has accepted.
func (p *FaultProxy) Accepted() int64 { return p.accepted.Load() }

func (p *FaultProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.accepted.Add(1)
		if p.refuse.Load() {
			c := &proxyConn{client: client, server: client}
			c.reset()
			continue
		}
		server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c := &proxyConn{client: client, server: client}
			c.reset()
			continue
		}
		c := &proxyConn{client: client, server: server}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.reset()
			return
		}
		if p.refuse.Load() { // turned on while this one was dialled
			p.mu.Unlock()
			c.reset()
			continue
		}
		p.conns[c] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pump(c, client, server, true)
		go p.pump(c, server, client, false)
	}
}

// takeDrop removes and reports the first armed rule that matches request.
func (p *FaultProxy) takeDrop(request []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, match := range p.drops {
		if match(request) {
			p.drops = append(p.drops[:i], p.drops[i+1:]...)
			return true
		}
	}
	return false
}

// pump copies src to dst, one read at a time, applying the faults in force.
func (p *FaultProxy) pump(c *proxyConn, src, dst net.Conn, request bool) {
	defer p.wg.Done()
	halfClosed := false
	defer func() {
		if halfClosed {
			return // the other pump ends the connection once the server has answered
		}
		c.reset()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			switch {
			case p.blackhole.Load():
				// Thrown away: the peer waits for an answer that never comes.
			case request:
				// Mark before forwarding, so the reply cannot overtake the mark.
				if p.takeDrop(chunk) {
					c.dropNext.Store(true)
				}
				p.wait()
				if _, werr := dst.Write(chunk); werr != nil {
					return
				}
			case c.dropNext.Load():
				p.droppedReplies.Add(1)
				return // the deferred reset closes both sides
			default:
				p.wait()
				if _, werr := dst.Write(chunk); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) || !request {
				return
			}
			// The client closed its side: pass the half-close on and let the reply
			// drain through the other pump.
			if tc, ok := dst.(*net.TCPConn); ok {
				halfClosed = tc.CloseWrite() == nil
			}
			return
		}
	}
}

func (p *FaultProxy) wait() {
	if d := time.Duration(p.delay.Load()); d > 0 {
		time.Sleep(d)
	}
}

func (p *FaultProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.ResetAll()
	p.wg.Wait()
}
