// Command example calls three clones of a gRPC service through a
// grpcbalance policy, with no proxy in between. All on loopback:
//
//  1. three clones of grpc-go's interop TestService listen on 127.0.0.1,
//     each with a grpcbalance.LoadReporter;
//  2. a grpc.ClientConn on the policy "clones_lb" (balance.Health with
//     TCP checks around P2C fed by the clones' load trailers) calls them
//     from four goroutines; its service config makes the calls wait for
//     a ready clone and retries those that fail Unavailable;
//  3. clone s1 is killed a third of the way in (its listener and
//     connections closed, as when its process dies) and restarted on the
//     same address two thirds of the way in;
//  4. the calls carry on; the program prints what each clone served in
//     each phase, and how many calls failed: none but, at worst, a call
//     s1 had begun to serve when it died (gRPC retries a call that failed
//     Unavailable only when the server answered with that status, or
//     never received it: one cut off in the server's hands may have run,
//     and only the caller can know whether it is safe to send again).
//
// Run it with: go run ./example (in balance/grpcbalance).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/grpcbalance"
	"github.com/scaleout/scaleout/balance/grpcbalance/internal/testsrv"
)

// policy is registered before any ClientConn exists, as gRPC requires.
const policy = "clones_lb"

func init() {
	err := grpcbalance.Register(policy, func() balance.Balancer {
		p2c, err := balance.NewP2C(balance.P2CConfig{Reports: grpcbalance.DefaultLoads})
		if err != nil {
			return nil // the ClientConn's calls fail with ErrNilBalancer
		}
		h, err := balance.NewHealth(p2c, balance.HealthConfig{
			Check:    balance.TCPCheck(),
			Interval: 500 * time.Millisecond,
			Timeout:  250 * time.Millisecond,
		})
		if err != nil {
			return nil
		}
		return h
	}, grpcbalance.Config{Loads: grpcbalance.DefaultLoads})
	if err != nil {
		panic(err)
	}
}

// serviceConfig makes the calls (all idempotent here) wait for a ready
// clone and retries on another one those whose connection broke.
const serviceConfig = `{
	"loadBalancingConfig": [{"clones_lb": {}}],
	"methodConfig": [{
		"name": [{"service": "grpc.testing.TestService"}],
		"waitForReady": true,
		"timeout": "10s",
		"retryPolicy": {
			"maxAttempts": 4, "initialBackoff": "0.02s", "maxBackoff": "0.5s",
			"backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]
		}
	}]
}`

func main() {
	duration := flag.Duration("duration", 6*time.Second, "how long to call")
	flag.Parse()
	if _, err := run(os.Stdout, *duration); err != nil {
		log.Fatal(err)
	}
}

// result is what run measured: calls served per phase and per clone.
type result struct {
	calls  int64
	failed [3]int64            // calls that failed, by the phase they began in
	served [3]map[string]int64 // before the kill, while down, after the restart
}

// callers is how many goroutines call: at most that many calls are in
// flight on s1 when it dies.
const callers = 4

func run(w io.Writer, duration time.Duration) (*result, error) {
	clones, err := testsrv.StartN(3)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, c := range clones {
			c.Close()
		}
	}()
	r, err := grpcbalance.NewResolver("clones")
	if err != nil {
		return nil, err
	}
	var set []balance.Backend
	for _, c := range clones {
		set = append(set, balance.Backend{Addr: c.Addr})
		fmt.Fprintf(w, "clone %s on %s\n", c.ID, c.Addr)
	}
	if err := r.Update(set); err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("clones:///users",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig),
		// Reconnect to a clone that is back within a second.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second,
		}}))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)

	res := &result{}
	var (
		mu    sync.Mutex
		phase atomic.Int32
	)
	for i := range res.served {
		res.served[i] = map[string]int64{}
	}
	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var wg sync.WaitGroup
	say := func(format string, args ...any) { // w is shared with the callers
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, format, args...)
	}
	for range callers {
		wg.Go(func() {
			for ctx.Err() == nil {
				p := phase.Load()
				resp, err := client.UnaryCall(context.Background(), &testpb.SimpleRequest{})
				mu.Lock()
				res.calls++
				if err != nil {
					res.failed[p]++
					fmt.Fprintf(w, "call failed: %v\n", err)
				} else {
					res.served[p][resp.GetServerId()]++
				}
				mu.Unlock()
				time.Sleep(time.Millisecond) // a steady trickle, not a flood
			}
		})
	}

	victim := clones[1]
	time.Sleep(duration / 3)
	victim.Kill()
	phase.Store(1)
	say("killed %s\n", victim.ID)
	time.Sleep(duration / 3)
	if err := victim.Restart(); err != nil {
		stop()
		wg.Wait()
		return nil, err
	}
	phase.Store(2)
	say("restarted %s\n", victim.ID)
	wg.Wait()

	for i, name := range []string{"before the kill", "while s1 was down", "after the restart"} {
		fmt.Fprintf(w, "%-18s served: s0 %d, s1 %d, s2 %d\n", name,
			res.served[i]["s0"], res.served[i]["s1"], res.served[i]["s2"])
	}
	fmt.Fprintf(w, "%d calls, %d failed (begun before the kill %d, while s1 was down %d, after its restart %d)\n",
		res.calls, res.failed[0]+res.failed[1]+res.failed[2], res.failed[0], res.failed[1], res.failed[2])
	return res, nil
}
