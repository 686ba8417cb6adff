package grpcbalance

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/base"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/status"

	"github.com/scaleout/scaleout/balance"
)

var logger = grpclog.Component("scaleout-balance")

// builder is one registered policy.
type builder struct {
	name        string
	newBalancer func() balance.Balancer
	cfg         Config
}

func (b *builder) Name() string { return b.name }

// Build gives a ClientConn its balancer. Connections are endpointsharding's
// business, as in grpc-go's own round_robin and least_request: one
// pick_first child per endpoint, which connects, reconnects with backoff and
// runs the client-side health check when the service config asks for one;
// this policy only chooses among the children that are Ready.
func (b *builder) Build(cc balancer.ClientConn, opts balancer.BuildOptions) balancer.Balancer {
	g := &grpcBalancer{ClientConn: cc, cfg: b.cfg, lb: b.newBalancer()}
	if g.lb == nil {
		logger.Errorf("policy %s: %v", b.name, ErrNilBalancer)
		return g // fails every RPC; see UpdateClientConnState
	}
	g.child = endpointsharding.NewBalancer(g, opts, balancer.Get(pickfirst.Name).Build, endpointsharding.Options{})
	// A balancer with a loop of its own (balance.Health's active checks)
	// runs for as long as the ClientConn's balancer lives.
	if r, ok := g.lb.(interface{ Run(context.Context) error }); ok {
		ctx, cancel := context.WithCancel(context.Background())
		g.stop = cancel
		g.running.Go(func() {
			if err := r.Run(ctx); err != nil && ctx.Err() == nil {
				logger.Errorf("policy %s: the balancer's Run: %v", b.name, err)
			}
		})
	}
	return g
}

// grpcBalancer is the policy's balancer of one ClientConn. It stands
// between endpointsharding and the ClientConn: endpointsharding's states
// (UpdateState) tell which endpoints are Ready; the balance.Balancer gets
// them as its set, and the ClientConn a picker that asks it.
type grpcBalancer struct {
	balancer.ClientConn // the ClientConn's; UpdateState is intercepted
	cfg                 Config
	lb                  balance.Balancer // nil: the factory failed
	child               balancer.Balancer

	stop    context.CancelFunc // ends lb's Run, when it has one
	running sync.WaitGroup

	mu     sync.Mutex // serialises UpdateState and Close
	closed bool
}

func (g *grpcBalancer) UpdateClientConnState(s balancer.ClientConnState) error {
	if g.lb == nil {
		err := status.Error(codes.Internal, ErrNilBalancer.Error())
		g.ClientConn.UpdateState(balancer.State{ConnectivityState: connectivity.TransientFailure, Picker: base.NewErrPicker(err)})
		return nil
	}
	// The health listener lets pick_first's children see the client-side
	// health checks of the service config (healthCheckConfig), so that a
	// backend whose health service says NOT_SERVING leaves the Ready set.
	return g.child.UpdateClientConnState(balancer.ClientConnState{
		ResolverState: pickfirst.EnableHealthListener(s.ResolverState),
	})
}

func (g *grpcBalancer) ResolverError(err error) {
	if g.child != nil {
		g.child.ResolverError(err)
	}
}

func (g *grpcBalancer) UpdateSubConnState(sc balancer.SubConn, s balancer.SubConnState) {
	// Not called: the children create the SubConns, with state listeners.
	logger.Errorf("UpdateSubConnState(%v, %+v) called unexpectedly", sc, s)
}

func (g *grpcBalancer) ExitIdle() {
	if g.child != nil {
		g.child.ExitIdle()
	}
}

// Close closes the children, stops the balancer's Run and closes the
// balancer when it can be (balance.Health), and returns once the Run has
// returned. States the children report after it are dropped.
func (g *grpcBalancer) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	if g.child != nil {
		g.child.Close()
	}
	if g.stop != nil {
		g.stop()
	}
	g.running.Wait()
	if c, ok := g.lb.(interface{ Close() error }); ok {
		_ = c.Close()
	}
}

// UpdateState receives endpointsharding's state, whose picker holds every
// child's. The Ready children become the balancer's set, and the
// ClientConn gets a picker over them. With none Ready, the ClientConn gets
// endpointsharding's own state and picker (Connecting, which queues RPCs,
// or TransientFailure, which fails those that do not wait for ready), as
// grpc-go's least_request does.
func (g *grpcBalancer) UpdateState(s balancer.State) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	children := endpointsharding.ChildStatesFromPicker(s.Picker)
	backends := make([]balance.Backend, 0, len(children))
	pickers := make(map[string]balancer.Picker, len(children))
	for _, c := range children {
		if c.State.ConnectivityState != connectivity.Ready || len(c.Endpoint.Addresses) == 0 {
			continue
		}
		b := endpointBackend(c.Endpoint)
		if _, dup := pickers[b.Addr]; dup {
			continue // two endpoints led by one address: the first serves
		}
		backends = append(backends, b)
		pickers[b.Addr] = c.State.Picker
	}
	if err := g.lb.Update(backends); err != nil {
		// Not reached with endpoints from gRPC (addresses are unique and
		// weights are checked where they are set); the balancer keeps its
		// previous set and the picker hands out only what it knows.
		logger.Errorf("balancer Update of %d backends: %v", len(backends), err)
	}
	if len(backends) == 0 {
		g.ClientConn.UpdateState(s)
		return
	}
	g.ClientConn.UpdateState(balancer.State{
		ConnectivityState: connectivity.Ready,
		Picker:            &picker{lb: g.lb, children: pickers, cfg: &g.cfg},
	})
}

// errNotReady is Pick's error when the balancer chose a backend the
// picker does not know, which happens when a pick races an update.
var errNotReady = fmt.Errorf("%w: the chosen backend is not ready", balance.ErrAborted)
