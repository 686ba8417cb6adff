package httpproxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/httpproxy"
)

func Example() {
	// Two clones of a service on private addresses.
	var backends []balance.Backend
	for _, name := range []string{"a", "b"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s", name)
		}))
		defer srv.Close()
		backends = append(backends, balance.Backend{Addr: srv.Listener.Addr().String()})
	}
	lb := new(balance.RoundRobin) // the zero value starts at the first backend
	if err := lb.Update(backends); err != nil {
		panic(err)
	}
	proxy, err := httpproxy.New(lb, httpproxy.Config{StickyCookie: "lb"})
	if err != nil {
		panic(err)
	}
	defer proxy.CloseIdleConnections()
	front := httptest.NewServer(proxy)
	defer front.Close()

	get := func(cookie *http.Cookie) *http.Cookie {
		req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(string(body))
		for _, c := range resp.Cookies() {
			return c
		}
		return cookie
	}
	get(nil)        // a
	pin := get(nil) // b, and a cookie pinning to b
	get(pin)        // b again
	get(pin)        // and again
	// Output:
	// hello from a
	// hello from b
	// hello from b
	// hello from b
}
