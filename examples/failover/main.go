// Command failover runs two load balancers as an active-passive
// failover.Pair in front of three clones of a web service, all in one
// process on loopback, and shows that killing the active balancer moves
// the service to the other one, with a measured gap:
//
//  1. three clones listen on 127.0.0.1 on ports the system picks, each
//     answering "hello from clone N";
//  2. two balancers, lb1 (preferred: higher priority) and lb2, each with a
//     round-robin balance.RoundRobin and an httpproxy.Proxy over the
//     clones, exchange heartbeats on their own private ports (signed with
//     a shared secret); the one that becomes active binds the public
//     address and serves it (OnPromote), the other waits;
//  3. a client sends a request to the public address every 10 ms;
//  4. after a while the program kills the active balancer (its heartbeat
//     server and its public listener close at once, like a crashed
//     machine's), the passive one misses three heartbeats, promotes
//     itself and binds the public address;
//  5. the client's gap without a successful answer is printed, and
//     everything shuts down.
//
// Run it with: go run ./examples/failover [-interval 200ms] [-kill-after 3s]
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/httpproxy"
	"github.com/scaleout/scaleout/failover"
)

type options struct {
	addr      string        // public address; a free loopback port when empty
	interval  time.Duration // heartbeat interval
	missed    int           // missed heartbeats before failover
	killAfter time.Duration // when to kill the active balancer
	after     time.Duration // how long to go on after the kill
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "", "public address the active balancer serves (default: a free loopback port)")
	flag.DurationVar(&o.interval, "interval", 200*time.Millisecond, "heartbeat interval")
	flag.IntVar(&o.missed, "missed", 3, "missed heartbeats before the passive balancer takes over")
	flag.DurationVar(&o.killAfter, "kill-after", 3*time.Second, "kill the active balancer after this long")
	flag.DurationVar(&o.after, "after", 3*time.Second, "go on this long after the kill")
	flag.Parse()
	if _, err := run(os.Stdout, o); err != nil {
		log.Fatal(err)
	}
}

// server is one loopback HTTP server.
type server struct {
	srv  *http.Server
	addr string
	done chan error
}

func serve(l net.Listener, h http.Handler) *server {
	s := &server{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		addr: l.Addr().String(),
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(l) }()
	return s
}

func start(addr string, h http.Handler) (*server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return serve(l, h), nil
}

// stop shuts s down gracefully, or at once when ctx has ended.
func (s *server) stop(ctx context.Context) error {
	var err error
	if ctx.Err() != nil {
		err = s.srv.Close()
	} else {
		err = s.srv.Shutdown(ctx)
	}
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}

// lb is one load balancer of the pair.
type lb struct {
	name   string
	pair   *failover.Pair
	proxy  *httpproxy.Proxy
	hb     *server // heartbeats, on its own private port
	public string  // the address it serves when active

	mu     sync.Mutex
	front  *server // serving public while active
	out    *syncWriter
	cancel context.CancelFunc
	done   chan error
}

// promote binds the public address; it retries briefly in case the
// address is not free yet.
func (b *lb) promote(ctx context.Context) {
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", b.public); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err != nil {
		b.out.printf("%s: promoted, but cannot bind %s: %v\n", b.name, b.public, err)
		return
	}
	b.mu.Lock()
	b.front = serve(l, b.proxy)
	b.mu.Unlock()
	b.out.printf("%s: active (epoch %d), serving %s\n", b.name, b.pair.Epoch(), b.public)
}

// demote releases the public address.
func (b *lb) demote(ctx context.Context) {
	b.mu.Lock()
	f := b.front
	b.front = nil
	b.mu.Unlock()
	if f != nil {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_ = f.stop(sctx)
		b.out.printf("%s: passive, released %s\n", b.name, b.public)
	}
}

// kill closes b's servers at once, like a crash, then stops its Pair.
func (b *lb) kill() {
	b.hb.srv.Close()
	<-b.hb.done
	b.hb = nil
	b.mu.Lock()
	f := b.front
	b.front = nil
	b.mu.Unlock()
	if f != nil {
		_ = f.srv.Close()
		<-f.done
	}
	b.cancel()
	<-b.done
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *syncWriter) printf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(w.w, format, args...)
}

// result is what the client saw.
type result struct {
	okBefore, okAfter, failed int
	gap                       time.Duration // longest time without a successful answer
	clones                    map[string]int
}

func run(w io.Writer, o options) (res result, err error) {
	if o.interval == 0 {
		o.interval = 200 * time.Millisecond
	}
	if o.missed == 0 {
		o.missed = 3
	}
	out := &syncWriter{w: w}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// 1. Clones.
	var backends []balance.Backend
	var clones []*server
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		for _, s := range clones {
			err = errors.Join(err, s.stop(sctx))
		}
	}()
	for i := 1; i <= 3; i++ {
		s, err := start("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "hello from clone %d\n", i)
		}))
		if err != nil {
			return res, err
		}
		clones = append(clones, s)
		backends = append(backends, balance.Backend{Addr: s.addr})
	}

	// The public address: a free loopback port unless given.
	public := o.addr
	if public == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return res, err
		}
		public = l.Addr().String()
		l.Close()
	}
	out.printf("clones on %s; public address %s; heartbeat every %v, failover after %d missed\n",
		strings.Join(addrs(clones), ", "), public, o.interval, o.missed)

	// 2. Two balancers in an active-passive pair.
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	lbs := []*lb{{name: "lb1"}, {name: "lb2"}}
	for _, b := range lbs {
		rr := balance.NewRoundRobin()
		if err := rr.Update(backends); err != nil {
			return res, err
		}
		if b.proxy, err = httpproxy.New(rr, httpproxy.Config{}); err != nil {
			return res, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return res, err
		}
		mux := http.NewServeMux()
		b.hb = serve(l, mux)
		b.public, b.out = public, out
		defer func() {
			if b.cancel != nil {
				b.cancel()
				<-b.done
			}
			if b.hb != nil {
				b.hb.srv.Close()
				<-b.hb.done
			}
		}()
	}
	for i, b := range lbs {
		other := lbs[1-i]
		b.pair, err = failover.NewPair(failover.PairConfig{
			Self:        b.name,
			Peers:       []failover.Peer{{ID: other.name, URL: "http://" + other.hb.addr + "/failover/heartbeat"}},
			Priority:    2 - i, // lb1 preferred
			Interval:    o.interval,
			MissedBeats: o.missed,
			Secret:      secret,
			OnPromote:   b.promote,
			OnDemote:    b.demote,
			OnPeerDown:  func(p string) { out.printf("%s: peer %s down\n", b.name, p) },
			OnPeerUp:    func(p string) { out.printf("%s: peer %s up\n", b.name, p) },
		})
		if err != nil {
			return res, err
		}
		b.hb.srv.Handler.(*http.ServeMux).Handle("/failover/heartbeat", b.pair.Handler())
	}
	for _, b := range lbs {
		rctx, c := context.WithCancel(ctx)
		b.cancel, b.done = c, make(chan error, 1)
		go func() { b.done <- b.pair.Run(rctx) }()
	}

	// 3. The client.
	res.clones = map[string]int{}
	var killedAt time.Time
	var killedMu sync.Mutex
	clientDone := make(chan struct{})
	cctx, stopClient := context.WithCancel(ctx)
	go func() {
		defer close(clientDone)
		client := &http.Client{Transport: &http.Transport{}, Timeout: 200 * time.Millisecond}
		defer client.CloseIdleConnections()
		var lastOK time.Time
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
			}
			body, ok := get(cctx, client, "http://"+public+"/")
			if cctx.Err() != nil {
				return
			}
			killedMu.Lock()
			after := !killedAt.IsZero()
			killedMu.Unlock()
			if !ok {
				res.failed++
				continue
			}
			now := time.Now()
			if !lastOK.IsZero() && now.Sub(lastOK) > res.gap {
				res.gap = now.Sub(lastOK)
			}
			lastOK = now
			res.clones[strings.TrimSpace(body)]++
			if after {
				res.okAfter++
			} else {
				res.okBefore++
			}
		}
	}()

	// 4. Kill the active balancer.
	select {
	case <-time.After(o.killAfter):
	case <-ctx.Done():
	}
	var victim *lb
	for _, b := range lbs {
		if b.pair.Role() == failover.Active {
			victim = b
		}
	}
	if victim == nil {
		stopClient()
		<-clientDone
		return res, errors.New("no balancer became active")
	}
	out.printf("killing %s, the active balancer\n", victim.name)
	killedMu.Lock()
	killedAt = time.Now()
	killedMu.Unlock()
	victim.kill()
	victim.cancel = nil
	time.Sleep(o.after)
	stopClient()
	<-clientDone

	// 5. Report.
	out.printf("client: %d answers before the kill, %d after, %d failed requests\n", res.okBefore, res.okAfter, res.failed)
	for i := 1; i <= 3; i++ {
		k := fmt.Sprintf("hello from clone %d", i)
		out.printf("  %q: %d\n", k, res.clones[k])
	}
	out.printf("service gap: %v without a successful answer (%.1f heartbeat intervals)\n",
		res.gap.Round(time.Millisecond), float64(res.gap)/float64(o.interval))
	out.printf("shutting down\n")
	return res, nil
}

func get(ctx context.Context, c *http.Client, url string) (string, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", false
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err == nil && resp.StatusCode == http.StatusOK
}

func addrs(ss []*server) []string {
	var a []string
	for _, s := range ss {
		a = append(a, s.addr)
	}
	return a
}
