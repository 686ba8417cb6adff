package grpcbalance

import (
	"context"
	"strconv"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// LoadReporter is the server's side of load reports over gRPC, as
// balance.LoadReporter is over HTTP: its interceptors count the RPCs in
// flight and set the count, "inflight=N", in the LoadTrailer of every
// response, where a client's LoadTable reads it. Reports ride on the
// responses the clients get anyway, so there is nothing to poll; a client
// learns a server's load as often as it calls it, which is as often as
// the load matters to it. The zero value is ready to use.
type LoadReporter struct {
	inflight atomic.Int64
}

// ServerOptions returns the options that install the reporter's
// interceptors on a grpc.Server (chained after any others).
func (r *LoadReporter) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(r.UnaryInterceptor),
		grpc.ChainStreamInterceptor(r.StreamInterceptor),
	}
}

// Inflight returns the number of RPCs in flight through the interceptors.
func (r *LoadReporter) Inflight() int64 { return r.inflight.Load() }

// UnaryInterceptor counts a unary RPC in flight while its handler runs
// and reports the count of the others when it ends.
func (r *LoadReporter) UnaryInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	r.inflight.Add(1)
	resp, err := handler(ctx, req)
	// The count after this RPC: what the client reading the trailer adds
	// to when it sends the next one.
	_ = grpc.SetTrailer(ctx, r.trailer(r.inflight.Add(-1)))
	return resp, err
}

// StreamInterceptor counts a streaming RPC in flight while its handler
// runs and reports the count of the others when it ends.
func (r *LoadReporter) StreamInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	r.inflight.Add(1)
	err := handler(srv, ss)
	ss.SetTrailer(r.trailer(r.inflight.Add(-1)))
	return err
}

func (r *LoadReporter) trailer(n int64) metadata.MD {
	return metadata.MD{LoadTrailer: []string{"inflight=" + strconv.FormatInt(n, 10)}}
}
