package httpclient_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/httpclient"
)

// Example calls three clones through an http.Client whose Transport
// balances over them, then kills one: the calls carry on, each refused
// connection retried on another clone.
func Example() {
	var servers []*httptest.Server
	var backends []balance.Backend
	for i := 1; i <= 3; i++ {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "clone %d", i)
		}))
		defer srv.Close()
		servers = append(servers, srv)
		backends = append(backends, balance.Backend{Addr: srv.Listener.Addr().String()})
	}
	lb := balance.NewRoundRobin()
	if err := lb.Update(backends); err != nil {
		panic(err)
	}
	t, err := httpclient.New(lb, httpclient.Config{Host: "users"})
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: t}
	defer client.CloseIdleConnections()

	calls := func(n int) map[string]int {
		served := map[string]int{}
		for range n {
			resp, err := client.Get("http://users/hello")
			if err != nil {
				served["error"]++
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			served[string(body)]++
		}
		return served
	}
	fmt.Println(calls(6))
	servers[1].Close() // clone 2 dies
	served := calls(6)
	fmt.Println("after clone 2 died:", served["clone 1"]+served["clone 3"], "calls served,", served["clone 2"]+served["error"], "lost")
	// Output:
	// map[clone 1:2 clone 2:2 clone 3:2]
	// after clone 2 died: 6 calls served, 0 lost
}
