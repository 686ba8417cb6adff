package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/httpproxy"
	"github.com/scaleout/scaleout/failover"
)

// lbConfig is one load balancer of the active-passive pair.
type lbConfig struct {
	name, peer     string
	hb             net.Listener // heartbeats and /internal/status
	peerHB, public string       // the peer's heartbeat address; the farm's public address
	priority       int
	secret         []byte
	controller     string
}

// lbStatus is served at /internal/status.
type lbStatus struct {
	Role  string `json:"role"`
	Epoch uint64 `json:"epoch"`
}

// runLB runs a balancer until ctx ends: a failover.Pair member that, when
// active, binds the public address and proxies it to the healthy clones.
func runLB(ctx context.Context, cfg lbConfig) error {
	health, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{
		Check:    balance.HTTPCheck("/healthz"),
		Interval: 500 * time.Millisecond,
		Timeout:  300 * time.Millisecond,
		Rise:     1,
		Fall:     1,
	})
	if err != nil {
		return err
	}
	defer health.Close()
	proxy, err := httpproxy.New(health, httpproxy.Config{DialTimeout: 300 * time.Millisecond})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		front *http.Server
		wg    sync.WaitGroup
	)
	stopFront := func() {
		mu.Lock()
		f := front
		front = nil
		mu.Unlock()
		if f != nil {
			_ = f.Close()
		}
	}
	pair, err := failover.NewPair(failover.PairConfig{
		Self:        cfg.name,
		Peers:       []failover.Peer{{ID: cfg.peer, URL: "http://" + cfg.peerHB + "/failover/heartbeat"}},
		Priority:    cfg.priority,
		Interval:    100 * time.Millisecond,
		MissedBeats: 3,
		Secret:      cfg.secret,
		OnPromote: func(pctx context.Context) {
			// The old active's listener may linger a moment: retry the bind.
			for pctx.Err() == nil {
				l, err := net.Listen("tcp", cfg.public)
				if err == nil {
					srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
					mu.Lock()
					front = srv
					mu.Unlock()
					wg.Go(func() { _ = srv.Serve(l) })
					return
				}
				select {
				case <-pctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		},
		OnDemote: func(context.Context) { stopFront() },
	})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/failover/heartbeat", pair.Handler())
	mux.HandleFunc("GET /internal/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(lbStatus{Role: pair.Role().String(), Epoch: pair.Epoch()})
	})
	hb := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	wg.Go(func() { _ = hb.Serve(cfg.hb) })
	wg.Go(func() { _ = health.Run(ctx) })
	wg.Go(func() {
		watchTopology(ctx, cfg.controller, cfg.name, 300*time.Millisecond, func(t topology) {
			bs := make([]balance.Backend, len(t.Clones))
			for i, c := range t.Clones {
				bs[i] = balance.Backend{Addr: c.Addr}
			}
			_ = health.Update(bs)
		})
	})
	err = pair.Run(ctx)
	// Killed or stopped: drop everything at once, as a crashed machine would.
	_ = hb.Close()
	stopFront()
	cancel()
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
