// Command httpclient calls three clones of a web service through
// balance/httpclient, with no proxy in between: the caller is the load
// balancer. All on loopback:
//
//  1. three clones listen on 127.0.0.1 on ports the system picks, each
//     answering "hello from clone N";
//  2. an http.Client whose Transport is an httpclient.Transport over a
//     balance.Health (active checks of /healthz every 200 ms) around a
//     round robin calls http://users/ from four goroutines;
//  3. clone 2 is killed mid-way (its listener and connections closed, as
//     when its process dies): calls that were on it are retried on the
//     others, and Health takes it out;
//  4. the calls carry on; the program prints how many each clone served
//     and how many failed (none).
//
// Run it with: go run ./examples/httpclient
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/httpclient"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// result is what run measured.
type result struct {
	calls, errors int64
	served        map[string]int64 // by clone
	afterKill     map[string]int64 // by clone, calls that began after the kill
}

func run(w io.Writer) error {
	_, err := runResult(w)
	return err
}

func runResult(w io.Writer) (*result, error) {
	// 1. Three clones.
	var servers []*http.Server
	var backends []balance.Backend
	for i := 1; i <= 3; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("clone %d", i)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Clone", name)
			if r.URL.Path != "/healthz" {
				time.Sleep(time.Millisecond) // some work
				fmt.Fprintf(w, "hello from %s", name)
			}
		})}
		go srv.Serve(l)
		defer srv.Close()
		servers = append(servers, srv)
		backends = append(backends, balance.Backend{Addr: l.Addr().String()})
		fmt.Fprintf(w, "%s listens on %s\n", name, l.Addr())
	}

	// 2. The balancer, its health checks, and the client.
	lb, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{
		Check:    balance.HTTPCheck("/healthz"),
		Interval: 200 * time.Millisecond, Timeout: 200 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	defer lb.Close()
	if err := lb.Update(backends); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go lb.Run(ctx)

	t, err := httpclient.New(lb, httpclient.Config{Host: "users"})
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: t, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	res := &result{served: map[string]int64{}, afterKill: map[string]int64{}}
	var (
		mu     sync.Mutex
		killed atomic.Bool
		wg     sync.WaitGroup
		calls  atomic.Int64
	)
	call := func() {
		after := killed.Load()
		calls.Add(1)
		resp, err := client.Get("http://users/")
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			res.errors++
			fmt.Fprintf(w, "call failed: %v\n", err)
			return
		}
		clone := resp.Header.Get("X-Clone")
		res.served[clone]++
		if after {
			res.afterKill[clone]++
		}
	}
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 5000; i++ { // bounded; stop ends it sooner
				select {
				case <-stop:
					return
				default:
					call()
				}
			}
		})
	}

	// 3. Kill clone 2 under load.
	time.Sleep(500 * time.Millisecond)
	fmt.Fprintln(w, "killing clone 2")
	servers[1].Close()
	killed.Store(true)

	// 4. The calls carry on.
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	res.calls = calls.Load()

	names := make([]string, 0, len(res.served))
	for n := range res.served {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "%s served %d calls (%d after the kill)\n", n, res.served[n], res.afterKill[n])
	}
	fmt.Fprintf(w, "%d calls, %d failed\n", res.calls, res.errors)
	if res.errors > 0 {
		return res, errors.New("some calls failed")
	}
	return res, nil
}
