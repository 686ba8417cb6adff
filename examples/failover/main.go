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
// With -mode active-active, the two balancers form an active-active
// failover.Pair instead: both serve, each on its own public address, and
// the client spreads its requests over both through a front
// balance.RoundRobin (standing for DNS round robin). Each balancer tracks
// the other's health; its OnPeerDown removes the dead peer from the front
// balancer (balance.Update with the survivor only), so the survivor takes
// the whole load, and its OnPeerUp adds the peer back when it returns.
// The program kills lb2, brings it back, and prints how many requests
// each balancer answered before, during and after, and how many failed.
//
// Run it with: go run ./examples/failover [-interval 200ms] [-kill-after 3s]
// or: go run ./examples/failover -mode active-active [-kill-after 3s] [-back-after 3s] [-after 3s]
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
	"sync/atomic"
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
	after     time.Duration // how long to go on after the kill (active-active: after the return)
	mode      string        // "active-passive" (default) or "active-active"
	backAfter time.Duration // active-active: bring the killed balancer back this long after the kill; 0: never
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "", "public address the active balancer serves (default: a free loopback port)")
	flag.DurationVar(&o.interval, "interval", 200*time.Millisecond, "heartbeat interval")
	flag.IntVar(&o.missed, "missed", 3, "missed heartbeats before the passive balancer takes over")
	flag.DurationVar(&o.killAfter, "kill-after", 3*time.Second, "kill the active balancer after this long")
	flag.DurationVar(&o.after, "after", 3*time.Second, "go on this long after the kill (active-active: after the killed balancer is back)")
	flag.StringVar(&o.mode, "mode", "active-passive", "active-passive or active-active")
	flag.DurationVar(&o.backAfter, "back-after", 3*time.Second, "active-active: bring the killed balancer back this long after the kill (0: never)")
	flag.Parse()
	var err error
	switch o.mode {
	case "active-passive":
		_, err = run(os.Stdout, o)
	case "active-active":
		_, err = runActiveActive(os.Stdout, o)
	default:
		err = fmt.Errorf("unknown -mode %q: want active-passive or active-active", o.mode)
	}
	if err != nil {
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

// poll calls request every 10 ms, with one HTTP client, until ctx ends
// or request returns false. A request to a dead balancer fails at once
// (connection refused or reset); the client's timeout is only for a
// stuck one, and long enough that a busy machine does not trip it.
func poll(ctx context.Context, request func(client *http.Client) bool) {
	client := &http.Client{Transport: &http.Transport{}, Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !request(client) {
			return
		}
	}
}

// noteAnswer records a successful answer at now, growing gap to the
// longest time between two successful answers.
func noteAnswer(last *time.Time, gap *time.Duration, now time.Time) {
	if !last.IsZero() && now.Sub(*last) > *gap {
		*gap = now.Sub(*last)
	}
	*last = now
}

// withDefaults fills the heartbeat settings a test may leave zero.
func (o options) withDefaults() options {
	if o.interval == 0 {
		o.interval = 200 * time.Millisecond
	}
	if o.missed == 0 {
		o.missed = 3
	}
	return o
}

// result is what the client saw.
type result struct {
	okBefore, okAfter, failed int
	gap                       time.Duration // longest time without a successful answer
	clones                    map[string]int
}

func run(w io.Writer, o options) (res result, err error) {
	o = o.withDefaults()
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
	if backends, err = startClones(&clones); err != nil {
		return res, err
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
		var lastOK time.Time
		poll(cctx, func(client *http.Client) bool {
			body, ok := get(cctx, client, "http://"+public+"/")
			if cctx.Err() != nil {
				return false
			}
			killedMu.Lock()
			after := !killedAt.IsZero()
			killedMu.Unlock()
			if !ok {
				res.failed++
				return true
			}
			noteAnswer(&lastOK, &res.gap, time.Now())
			res.clones[strings.TrimSpace(body)]++
			if after {
				res.okAfter++
			} else {
				res.okBefore++
			}
			return true
		})
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

// startClones starts the three clones, appending each to *clones as soon
// as it serves (so that the caller stops those that started even on
// error), and returns them as backends.
func startClones(clones *[]*server) ([]balance.Backend, error) {
	var backends []balance.Backend
	for i := 1; i <= 3; i++ {
		s, err := start("127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "hello from clone %d\n", i)
		}))
		if err != nil {
			return nil, err
		}
		*clones = append(*clones, s)
		backends = append(backends, balance.Backend{Addr: s.addr})
	}
	return backends, nil
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

// Active-active mode.

// Phases of the active-active run, as the client sees them.
const (
	phaseBefore = iota // both balancers serve
	phaseKilled        // lb2 killed; lb1 has not noticed yet
	phaseDown          // lb1 noticed (OnPeerDown) and removed lb2 from the front balancer
	phaseBack          // lb2 restarted; lb1 has not heard from it yet
	phaseUp            // lb1 heard from lb2 again (OnPeerUp) and added it back
	nPhases
)

var phaseNames = [nPhases]string{
	"before the kill",
	"kill → peer-down notice",
	"lb2 down",
	"lb2 restarted → peer-up notice",
	"after lb2 came back",
}

// aaLB is one balancer of the active-active pair: it always serves its
// public address while it lives.
type aaLB struct {
	name   string
	pair   *failover.Pair
	proxy  *httpproxy.Proxy
	mux    *http.ServeMux // heartbeats
	public string         // the address it serves
	hbAddr string         // its heartbeat address
	front  *server        // serving public
	hb     *server        // serving hbAddr
	cancel context.CancelFunc
	done   chan error
}

// run runs b's Pair.
func (b *aaLB) run(ctx context.Context) {
	rctx, c := context.WithCancel(ctx)
	b.cancel, b.done = c, make(chan error, 1)
	go func() { b.done <- b.pair.Run(rctx) }()
}

// stop stops b's Pair, if running.
func (b *aaLB) stop() {
	if b.cancel != nil {
		b.cancel()
		<-b.done
		b.cancel = nil
	}
}

// kill closes b's servers at once, like a crash, then stops its Pair.
func (b *aaLB) kill() {
	for _, s := range []*server{b.hb, b.front} {
		if s != nil {
			_ = s.srv.Close()
			<-s.done
		}
	}
	b.hb, b.front = nil, nil
	b.stop()
}

// restart binds b's addresses again, the public one first so that the
// peer hears from b only once it serves, and runs its Pair.
func (b *aaLB) restart(ctx context.Context) error {
	l, err := listenRetry(ctx, b.public)
	if err != nil {
		return err
	}
	b.front = serve(l, b.proxy)
	if l, err = listenRetry(ctx, b.hbAddr); err != nil {
		return err
	}
	b.hb = serve(l, b.mux)
	b.run(ctx)
	return nil
}

// waitFor polls cond every 10 ms until it holds (nil) or d has passed
// (an error).
func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// listenRetry listens on addr, retrying for a while in case it is not
// free yet.
func listenRetry(ctx context.Context, addr string) (net.Listener, error) {
	var err error
	for range 100 {
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil, err
}

// frontSet is the client's view of which balancers serve: a RoundRobin
// over their public addresses, standing for DNS round robin, that the
// balancers' OnPeerDown and OnPeerUp update.
type frontSet struct {
	rr  *balance.RoundRobin
	lbs []*aaLB

	mu   sync.Mutex
	down map[string]bool
}

// mark records each balancer of ups as up and each of downs as down, and
// updates the front balancer to those up; it returns their names.
func (f *frontSet) mark(ups, downs []string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range ups {
		delete(f.down, n)
	}
	for _, n := range downs {
		f.down[n] = true
	}
	var bs []balance.Backend
	var names []string
	for _, b := range f.lbs {
		if !f.down[b.name] {
			bs = append(bs, balance.Backend{Addr: b.public})
			names = append(names, b.name)
		}
	}
	return strings.Join(names, ", "), f.rr.Update(bs)
}

// aaResult is what the active-active client saw.
type aaResult struct {
	served [nPhases][2]int // successful answers by phase, from lb1 and lb2
	failed [nPhases]int    // failed requests by phase
	gap    time.Duration   // longest time without a successful answer
	detect time.Duration   // from the kill to lb1's OnPeerDown
	rejoin time.Duration   // from the restart to lb1's OnPeerUp
	clones map[string]int
}

func runActiveActive(w io.Writer, o options) (res aaResult, err error) {
	o = o.withDefaults()
	out := &syncWriter{w: w}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// 1. Clones.
	var clones []*server
	defer func() {
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		for _, s := range clones {
			err = errors.Join(err, s.stop(sctx))
		}
	}()
	backends, err := startClones(&clones)
	if err != nil {
		return res, err
	}

	// 2. Two balancers, each serving its own public address.
	lbs := []*aaLB{{name: "lb1"}, {name: "lb2"}}
	survivor, victim := lbs[0], lbs[1]
	defer func() {
		for _, b := range lbs {
			b.stop() // first, so that neither sees the other die
		}
		for _, b := range lbs {
			b.kill()
			if b.proxy != nil {
				b.proxy.CloseIdleConnections()
			}
		}
	}()
	for _, b := range lbs {
		rr := balance.NewRoundRobin()
		if err := rr.Update(backends); err != nil {
			return res, err
		}
		if b.proxy, err = httpproxy.New(rr, httpproxy.Config{}); err != nil {
			return res, err
		}
		if b.front, err = start("127.0.0.1:0", b.proxy); err != nil {
			return res, err
		}
		b.mux = http.NewServeMux()
		if b.hb, err = start("127.0.0.1:0", b.mux); err != nil {
			return res, err
		}
		b.public, b.hbAddr = b.front.addr, b.hb.addr
	}
	out.printf("clones on %s; lb1 serves %s, lb2 serves %s; heartbeat every %v, peer down after %d missed\n",
		strings.Join(addrs(clones), ", "), lbs[0].public, lbs[1].public, o.interval, o.missed)

	// 3. The front balancer over both, and the active-active pair that
	// updates it.
	front := &frontSet{rr: balance.NewRoundRobin(), lbs: lbs, down: map[string]bool{}}
	if _, err := front.mark(nil, nil); err != nil {
		return res, err
	}
	var phase atomic.Int32
	var evMu sync.Mutex
	var killedAt, backAt time.Time
	noticed := make(chan struct{})
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	for i, b := range lbs {
		other := lbs[1-i]
		b.pair, err = failover.NewPair(failover.PairConfig{
			Self:        b.name,
			Peers:       []failover.Peer{{ID: other.name, URL: "http://" + other.hbAddr + "/failover/heartbeat"}},
			Mode:        failover.ActiveActive,
			Interval:    o.interval,
			MissedBeats: o.missed,
			Secret:      secret,
			OnPeerDown: func(p string) {
				// b is alive: it takes the whole load.
				names, err := front.mark([]string{b.name}, []string{p})
				if err != nil {
					out.printf("%s: peer %s down, but front balancer update failed: %v\n", b.name, p, err)
					return
				}
				msg := ""
				if b == survivor && p == victim.name && phase.CompareAndSwap(phaseKilled, phaseDown) {
					evMu.Lock()
					res.detect = time.Since(killedAt)
					msg = fmt.Sprintf(" %v after the kill (%.1f heartbeat intervals)", res.detect.Round(time.Millisecond), float64(res.detect)/float64(o.interval))
					evMu.Unlock()
					close(noticed)
				}
				out.printf("%s: peer %s down%s; front balancer now %s\n", b.name, p, msg, names)
			},
			OnPeerUp: func(p string) {
				msg := ""
				if b == survivor && p == victim.name && phase.CompareAndSwap(phaseBack, phaseUp) {
					// Before the update: a request that sees phaseBack must
					// not reach lb2.
					evMu.Lock()
					res.rejoin = time.Since(backAt)
					msg = fmt.Sprintf(" %v after the restart", res.rejoin.Round(time.Millisecond))
					evMu.Unlock()
				}
				names, err := front.mark([]string{p}, nil)
				if err != nil {
					out.printf("%s: peer %s up, but front balancer update failed: %v\n", b.name, p, err)
					return
				}
				out.printf("%s: peer %s up%s; front balancer now %s\n", b.name, p, msg, names)
			},
		})
		if err != nil {
			return res, err
		}
		b.mux.Handle("/failover/heartbeat", b.pair.Handler())
	}
	for _, b := range lbs {
		b.run(ctx)
	}

	// 4. The client: a request every 10 ms to the balancer the front
	// balancer picks.
	res.clones = map[string]int{}
	clientDone := make(chan struct{})
	cctx, stopClient := context.WithCancel(ctx)
	defer func() {
		stopClient()
		<-clientDone
	}()
	errFailed := errors.New("request failed")
	go func() {
		defer close(clientDone)
		var lastOK time.Time
		poll(cctx, func(client *http.Client) bool {
			// A failure counts in the phase before the pick, an answer in
			// the phase after it: lb1 removes lb2 from the front balancer
			// before it moves to phaseDown (a request that picked lb2 in
			// time fails in phaseKilled), and moves to phaseUp before it
			// adds lb2 back (a request that picks lb2 answers in phaseUp).
			p := phase.Load()
			fail := func() {
				// A request that began before the kill and failed after
				// it failed because of it.
				if p == phaseBefore && phase.Load() != phaseBefore {
					p = phaseKilled
				}
				res.failed[p]++
			}
			c, err := front.rr.Pick(cctx, "")
			if err != nil {
				if cctx.Err() != nil {
					return false
				}
				fail()
				return true
			}
			picked := phase.Load()
			addr := c.Backend().Addr
			body, ok := get(cctx, client, "http://"+addr+"/")
			if cctx.Err() != nil {
				c.Done(cctx.Err())
				return false
			}
			if !ok {
				c.Done(errFailed)
				fail()
				return true
			}
			c.Done(nil)
			noteAnswer(&lastOK, &res.gap, time.Now())
			res.clones[strings.TrimSpace(body)]++
			i := 0
			if addr == victim.public {
				i = 1
			}
			res.served[picked][i]++
			return true
		})
	}()
	out.printf("client: a request every 10ms to lb1 or lb2, in turn, through the front balancer\n")

	// 5. Kill lb2, then bring it back.
	select {
	case <-time.After(o.killAfter):
	case <-ctx.Done():
	}
	// On a busy machine a heartbeat may be late: wait for lb1 to hear
	// from lb2 again, for a while, before killing it.
	if err := waitFor(ctx, time.Duration(o.missed+10)*o.interval, func() bool { return survivor.pair.PeerUp(victim.name) }); err != nil {
		return res, fmt.Errorf("%s never heard from %s", survivor.name, victim.name)
	}
	out.printf("killing %s\n", victim.name)
	evMu.Lock()
	killedAt = time.Now()
	evMu.Unlock()
	phase.Store(phaseKilled)
	victim.kill()
	if o.backAfter > 0 {
		time.Sleep(o.backAfter)
		select {
		case <-noticed:
		case <-time.After(time.Duration(o.missed+10) * o.interval):
			return res, fmt.Errorf("%s did not notice %s down", survivor.name, victim.name)
		}
		out.printf("restarting %s\n", victim.name)
		evMu.Lock()
		backAt = time.Now()
		evMu.Unlock()
		phase.Store(phaseBack)
		if err := victim.restart(ctx); err != nil {
			return res, fmt.Errorf("restarting %s: %w", victim.name, err)
		}
	}
	time.Sleep(o.after)
	stopClient()
	<-clientDone

	// 6. Report.
	out.printf("client: successful answers from lb1 / lb2, and failed requests:\n")
	total := 0
	for p := range nPhases {
		out.printf("  %-32s %5d / %5d, %d failed\n", phaseNames[p]+":", res.served[p][0], res.served[p][1], res.failed[p])
		total += res.failed[p]
	}
	for i := 1; i <= 3; i++ {
		k := fmt.Sprintf("hello from clone %d", i)
		out.printf("  %q: %d\n", k, res.clones[k])
	}
	after := total - res.failed[phaseBefore] - res.failed[phaseKilled]
	evMu.Lock()
	out.printf("failed requests: %d in all, %d after the peer-down notice; %s noticed %s down %v after the kill\n",
		total, after, survivor.name, victim.name, res.detect.Round(time.Millisecond))
	evMu.Unlock()
	out.printf("longest time without a successful answer: %v (%.1f heartbeat intervals)\n",
		res.gap.Round(time.Millisecond), float64(res.gap)/float64(o.interval))
	out.printf("shutting down\n")
	return res, nil
}
