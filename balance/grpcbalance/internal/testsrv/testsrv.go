// Package testsrv is a gRPC server on loopback for the tests, benchmarks
// and example of grpcbalance: grpc-go's own interop TestService (no code
// generation needed), which can be made slow, made to fail, killed and
// restarted on the same address, and which reports its load in trailers.
package testsrv

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/scaleout/scaleout/balance/grpcbalance"
)

// HoldMetadata, present in a UnaryCall's metadata, holds the call on the
// server until Release or the call's end.
const HoldMetadata = "testsrv-hold"

// Server is one clone of the test service.
type Server struct {
	ID   string
	Addr string // host:port, the same across restarts

	calls  atomic.Int64
	dead   atomic.Bool  // between Kill and Restart
	delay  atomic.Int64 // nanoseconds added to every UnaryCall
	code   atomic.Uint32
	report grpcbalance.LoadReporter

	mu      sync.Mutex
	srv     *grpc.Server
	done    chan struct{} // closed when srv's Serve returns
	release chan struct{}
}

// Start serves a new Server on addr ("127.0.0.1:0" for any port).
func Start(id, addr string) (*Server, error) {
	s := &Server{ID: id, release: make(chan struct{})}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.Addr = lis.Addr().String()
	s.serve(lis)
	return s, nil
}

func (s *Server) serve(lis net.Listener) {
	srv := grpc.NewServer(s.report.ServerOptions()...)
	testpb.RegisterTestServiceServer(srv, service{s: s})
	done := make(chan struct{})
	s.mu.Lock()
	s.srv, s.done = srv, done
	s.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
}

// Kill stops the server as a crash would: the listener and every
// connection close at once, and the RPCs in flight fail.
func (s *Server) Kill() {
	s.dead.Store(true)
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
		<-done
	}
}

// Restart serves again on the same address after Kill, retrying the bind
// for up to five seconds (the port may linger).
func (s *Server) Restart() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		lis, err := net.Listen("tcp", s.Addr)
		if err == nil {
			s.dead.Store(false)
			s.serve(lis)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testsrv: restart %s on %s: %w", s.ID, s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close kills the server for good and lets held calls go.
func (s *Server) Close() {
	s.Release()
	s.Kill()
}

// Calls counts the calls the server received, across restarts; a call
// that starts once Kill has begun (its connection about to close) is not
// counted.
func (s *Server) Calls() int64 { return s.calls.Load() }

// SetDelay makes every UnaryCall take d longer.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// SetCode makes every UnaryCall answer with status code c (codes.OK:
// normally).
func (s *Server) SetCode(c codes.Code) { s.code.Store(uint32(c)) }

// Release lets every held call go, now and from now on.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.release:
	default:
		close(s.release)
	}
}

// Inflight is the server's RPCs in flight, as it reports them.
func (s *Server) Inflight() int64 { return s.report.Inflight() }

// service embeds the generated stubs, which answer Unimplemented, for the
// methods the tests do not call.
type service struct {
	testpb.UnimplementedTestServiceServer
	s *Server
}

// errKilled answers the calls that start while the server is being
// killed, as a server that died would have.
var errKilled = status.Error(codes.Unavailable, "testsrv: killed")

func (v service) EmptyCall(context.Context, *testpb.Empty) (*testpb.Empty, error) {
	if v.s.dead.Load() {
		return nil, errKilled
	}
	v.s.calls.Add(1)
	return &testpb.Empty{}, nil
}

func (v service) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s := v.s
	if s.dead.Load() {
		return nil, errKilled
	}
	s.calls.Add(1)
	if len(metadata.ValueFromIncomingContext(ctx, HoldMetadata)) > 0 {
		s.mu.Lock()
		release := s.release
		s.mu.Unlock()
		select {
		case <-release:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if d := time.Duration(s.delay.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if c := codes.Code(s.code.Load()); c != codes.OK {
		return nil, status.Error(c, "testsrv: told to fail")
	}
	return &testpb.SimpleResponse{ServerId: s.ID}, nil
}

// StartN starts n servers named s0, s1, ... on loopback.
func StartN(n int) ([]*Server, error) {
	var out []*Server
	for i := range n {
		s, err := Start(fmt.Sprintf("s%d", i), "127.0.0.1:0")
		if err != nil {
			for _, s := range out {
				s.Close()
			}
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
