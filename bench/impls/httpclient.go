package impls

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/bufbuild/httplb"
	"github.com/bufbuild/httplb/picker"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/httpclient"
)

// Client-side balancing: one GET per op through an http.Client to one
// loopback backend answering "ok", the body read and closed, so that the
// difference from HTTPClientBare is what the balancing costs per request.
// At defaults: our Transport over a RoundRobin, httplb.NewClient() (round
// robin). Tuned: both with their power-of-two picker and compression off.
const (
	HTTPClientBare         = "net/http bare"
	HTTPClientOurs         = "ours (httpclient, RoundRobin)"
	HTTPClientOursTuned    = "ours tuned (P2C)"
	HTTPClientHTTPLB       = "bufbuild/httplb"
	HTTPClientHTTPLBTunedN = "bufbuild/httplb tuned (power of two)"
)

// HTTPClients are the clients measured, HTTPClientBare first.
var HTTPClients = []string{HTTPClientBare, HTTPClientOurs, HTTPClientOursTuned, HTTPClientHTTPLB, HTTPClientHTTPLBTunedN}

// HTTPClientEnv is one loopback backend and the clients that call it.
type HTTPClientEnv struct {
	srv     *httptest.Server
	url     map[string]string
	clients map[string]*http.Client
	closers []func()
}

// NewHTTPClientEnv starts the backend and builds every client.
func NewHTTPClientEnv() (*HTTPClientEnv, error) {
	e := &HTTPClientEnv{url: map[string]string{}, clients: map[string]*http.Client{}}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	addr := e.srv.Listener.Addr().String()
	direct := "http://" + addr + "/"

	bare := &http.Transport{MaxIdleConnsPerHost: 64}
	e.clients[HTTPClientBare], e.url[HTTPClientBare] = &http.Client{Transport: bare}, direct
	e.closers = append(e.closers, bare.CloseIdleConnections)

	rr := balance.NewRoundRobin()
	p2c, err := balance.NewP2C(balance.P2CConfig{})
	if err != nil {
		return nil, err
	}
	for name, lb := range map[string]balance.Balancer{HTTPClientOurs: rr, HTTPClientOursTuned: p2c} {
		if err := lb.Update([]balance.Backend{{Addr: addr}}); err != nil {
			return nil, err
		}
		cfg := httpclient.Config{}
		if name == HTTPClientOursTuned {
			cfg.Base = &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
		}
		t, err := httpclient.New(lb, cfg)
		if err != nil {
			return nil, err
		}
		e.clients[name], e.url[name] = &http.Client{Transport: t}, "http://svc/"
		e.closers = append(e.closers, t.CloseIdleConnections)
	}

	lb := httplb.NewClient()
	tuned := httplb.NewClient(httplb.WithPicker(picker.NewPowerOfTwo), httplb.WithDisableCompression(true))
	e.clients[HTTPClientHTTPLB], e.url[HTTPClientHTTPLB] = lb.Client, direct
	e.clients[HTTPClientHTTPLBTunedN], e.url[HTTPClientHTTPLBTunedN] = tuned.Client, direct
	e.closers = append(e.closers, func() { lb.Close() }, func() { tuned.Close() })
	return e, nil
}

// Get sends one GET through the named client and reads the answer.
func (e *HTTPClientEnv) Get(name string) error {
	resp, err := e.clients[name].Get(e.url[name])
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// Close closes every client and the backend.
func (e *HTTPClientEnv) Close() {
	for _, c := range e.closers {
		c()
	}
	e.srv.Close()
}
