package testenv_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/scaleout/scaleout/internal/testenv"
)

// TestRefusedAddr: connections are refused, addresses are distinct, and a
// listener cannot take a port while it is held.
func TestRefusedAddr(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		addr := testenv.RefusedAddr(t)
		if seen[addr] {
			t.Fatalf("address %s handed out twice", addr)
		}
		seen[addr] = true
	}
	for addr := range seen {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s succeeded", addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			t.Fatalf("a listener took the held port %s", addr)
		}
	}
}
