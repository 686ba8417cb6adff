// Package grpcbalance balances gRPC calls on the client side over any
// scaleout balance.Balancer: a load-balancing policy for grpc-go, the
// gRPC counterpart of balance/httpclient. It is a module of its own, so
// that the scaleout module does not depend on grpc.
//
// Importing the package registers ready-made policies — RoundRobin,
// WeightedRoundRobin, Random, P2C, LeastLoaded and ConsistentHash, named
// "scaleout_round_robin" and so on — and the "scaleout-dns" resolver. A
// client selects a policy in its service config:
//
//	conn, err := grpc.NewClient("scaleout-dns:///users.internal:50051",
//		grpc.WithTransportCredentials(creds),
//		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"scaleout_p2c": {}}]}`))
//
// Register adds a policy over a balancer of your own making, typically a
// strategy behind balance.Health:
//
//	func init() {
//		err := grpcbalance.Register("users_lb", func() balance.Balancer {
//			h, _ := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{
//				Check: balance.TCPCheck(), Interval: 2 * time.Second,
//			})
//			return h
//		}, grpcbalance.Config{})
//		...
//	}
//
// The factory is called once per ClientConn (and again when a ClientConn
// switches back to the policy), so that no two ClientConns share a
// balancer's statistics or Close it under each other. A factory that
// returns nil fails the ClientConn's RPCs with status Internal and
// ErrNilBalancer's message.
//
// # The backend set
//
// Connections are gRPC's: one pick_first child per endpoint the resolver
// gives (as in grpc-go's own round_robin), which connects, reconnects
// with exponential backoff (grpc.WithConnectParams) and, when the service
// config asks for it (healthCheckConfig), runs the gRPC health protocol.
// The endpoints whose connection is Ready are the balancer's set: its
// Update is called with them whenever one connects or disconnects. A
// Backend's Addr is its endpoint's first address; its Weight and Zone are
// those the resolvers of this package carry (see Endpoint), else 1 and
// none. A server that dies leaves the set as soon as its connection
// breaks, and comes back when it is reconnected, within one backoff
// interval of its return.
//
// # Picks and outcomes
//
// Each RPC calls Balancer.Pick once (and again for each of its retries,
// which gRPC makes when the service config's retryPolicy says so), with
// the first value of the outgoing metadata Config.KeyMetadata names as the
// key ("" without it): balance.ConsistentHash then sends the RPCs of one
// key to the same server while the set is stable. A set changes when a
// server connects or disconnects, so keys move then, as they do when
// backends come and go anywhere else.
//
// Choice.Done is called once per pick, from the Done callback of the
// PickResult, which gRPC calls when the RPC ends: a unary RPC when its
// response (or error) arrives, a stream when it is read to its end, fails
// or is cancelled — a stream that is abandoned without any of those holds
// its Choice, counted in flight, as gRPC holds its resources. Done is told
//
//   - nil for a success, and for an error that is the application's
//     answer: by default every status but those below (NotFound,
//     InvalidArgument, PermissionDenied, FailedPrecondition,
//     Unimplemented, ResourceExhausted, ...): a healthy server gives them;
//   - the error for a failure: Unavailable (no connection, or it broke),
//     DeadlineExceeded (the server did not answer in time), Internal,
//     Unknown (also any error without a status) and DataLoss; see
//     IsFailure, and Config.IsFailure to judge otherwise;
//   - an error wrapping balance.ErrAborted for Canceled: the caller gave
//     up, which says nothing of the server.
//
// So in-flight counts and latencies (P2C, LeastLoaded) cover every RPC,
// of every method alike: P2C keeps one latency per server, so give
// methods of very different cost ClientConns of their own when their mix
// changes (a burst of cheap calls makes a slow server look fast a while);
// and balance.Health's passive checks eject a server that keeps failing,
// while its active checks (balance.TCPCheck reaches a gRPC port) take out
// one that stops answering; either way it leaves the set the strategy
// picks from, though its connection stays Ready. When a pick races a
// change of the set, the RPC is picked again with the new set, and its
// first Choice is released as aborted.
//
// # Load reports
//
// A server publishes its load with LoadReporter, whose interceptors set
// "x-load: inflight=N" (LoadTrailer) in the trailer of every response.
// A policy whose Config.Loads is a LoadTable records each report there,
// and a balancer reading the table (balance.P2CConfig.Reports,
// balance.LeastLoadedConfig.Load) counts a server's requests in flight as
// the larger of its own count and the server's: the requests of other
// clients then weigh on the choice. The P2C and LeastLoaded policies use
// DefaultLoads. A report counts for one MaxAge (DefaultLoadMaxAge), after
// which the own count decides again. grpc-go's ORCA (package orca) is the
// standard, heavier form of the same idea, for servers that already
// publish it.
//
// # When no backend is up
//
// With no endpoint Ready, the ClientConn takes the state of its
// connections as a whole, as with round_robin: Connecting while any
// connects, then TransientFailure. RPCs that wait for ready
// (grpc.WaitForReady, or "waitForReady" in the service config) queue
// until a server is back or their deadline passes; the others fail at
// once with Unavailable and the last connection error. A balancer whose
// Pick fails (balance.ErrNoBackend: a ZoneAware or a Health whose set is
// empty) fails the RPCs the same way: those that wait for ready wait for
// the next change of the set. A resolver that never gave a set leaves the
// RPCs waiting, or failing with its error.
//
// # Lifecycle
//
// A policy's balancer lives as long as its ClientConn. When the balancer
// has a Run(context.Context) error method (balance.Health's active
// checks), it runs from the balancer's creation until the ClientConn
// closes; when it has Close() error (balance.Health), the ClientConn's
// Close calls it, after Run has returned. Nothing of the policy runs
// after Close. A LoadTable runs nothing. A scaleout-dns resolver looks its
// name up from its ClientConn's start until its close; a Resolver runs
// nothing: its source (balance.DNS's Run) is the caller's to run.
package grpcbalance
