// Command loadbalancer runs a load balancer in front of three clones of a
// web service, all on loopback, with package balance and its reverse
// proxy balance/httpproxy:
//
//  1. three clones listen on 127.0.0.1 on ports the system picks, each
//     answering "hello from clone N";
//  2. a proxy in front of them picks a clone per request by round robin:
//     six requests show the rotation;
//  3. a client that keeps the proxy's sticky cookie stays on one clone,
//     and the cookie's value names the clone without revealing its address;
//  4. clone 2 is removed from the set: new requests go to the others;
//  5. everything shuts down gracefully.
//
// Run it with: go run ./examples/loadbalancer
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
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/httpproxy"
)

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// server is one loopback HTTP server.
type server struct {
	srv  *http.Server
	addr string
	done chan error
}

// start serves h on 127.0.0.1 on a free port.
func start(h http.Handler) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		addr: l.Addr().String(),
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(l) }()
	return s, nil
}

// stop shuts s down, letting requests in flight finish.
func (s *server) stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}

func run(out io.Writer) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var servers []*server
	defer func() {
		for _, s := range servers {
			err = errors.Join(err, s.stop(ctx))
		}
	}()

	// 1. Three clones.
	var backends []balance.Backend
	for n := 1; n <= 3; n++ {
		s, err := start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from clone %d", n)
		}))
		if err != nil {
			return err
		}
		servers = append(servers, s)
		backends = append(backends, balance.Backend{Addr: s.addr})
	}

	// 2. The proxy, round robin over the clones.
	lb := balance.NewRoundRobin()
	if err := lb.Update(backends); err != nil {
		return err
	}
	proxy, err := httpproxy.New(lb, httpproxy.Config{
		StickyCookie: "lb",
		ErrorLog:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	defer proxy.CloseIdleConnections()
	front, err := start(proxy)
	if err != nil {
		return err
	}
	servers = append([]*server{front}, servers...) // stopped first
	base, err := url.Parse("http://" + front.addr + "/")
	if err != nil {
		return err
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	plain := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func(c *http.Client) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String(), nil)
		if err != nil {
			return "", err
		}
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %s", resp.Status)
		}
		return string(body), nil
	}

	fmt.Fprintf(out, "proxy on %s, clones on %s\n\n", front.addr, strings.Join(addrs(backends), ", "))
	fmt.Fprintln(out, "round robin, no cookie:")
	seen := map[string]bool{}
	for i := 1; i <= 6; i++ {
		body, err := get(plain)
		if err != nil {
			return err
		}
		seen[body] = true
		fmt.Fprintf(out, "  request %d: %s\n", i, body)
	}
	if len(seen) != 3 {
		return fmt.Errorf("round robin reached %d clones, want 3", len(seen))
	}

	// 3. A client with a cookie jar: pinned to one clone.
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	sticky := &http.Client{Transport: tr, Jar: jar, Timeout: 5 * time.Second}
	fmt.Fprintln(out, "\nsticky session (client keeps the cookie):")
	var pinned string
	for i := 1; i <= 4; i++ {
		body, err := get(sticky)
		if err != nil {
			return err
		}
		if pinned == "" {
			pinned = body
		} else if body != pinned {
			return fmt.Errorf("sticky client moved from %q to %q", pinned, body)
		}
		fmt.Fprintf(out, "  request %d: %s\n", i, body)
	}
	for _, c := range jar.Cookies(base) {
		fmt.Fprintf(out, "  cookie %s=%s (an HMAC of the clone, not its address)\n", c.Name, c.Value)
		for _, b := range backends {
			host, port, _ := net.SplitHostPort(b.Addr)
			if strings.Contains(c.Value, host) || strings.Contains(c.Value, port) {
				return fmt.Errorf("cookie %q reveals %s", c.Value, b.Addr)
			}
		}
	}

	// 4. Remove clone 2: new requests avoid it.
	if err := lb.Update([]balance.Backend{backends[0], backends[2]}); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nclone 2 removed from the set:")
	for i := 1; i <= 4; i++ {
		body, err := get(plain)
		if err != nil {
			return err
		}
		if body == "hello from clone 2" {
			return errors.New("a removed clone got a new request")
		}
		fmt.Fprintf(out, "  request %d: %s\n", i, body)
	}
	fmt.Fprintln(out, "\nshutting down")
	return nil
}

func addrs(bs []balance.Backend) []string {
	s := make([]string, len(bs))
	for i, b := range bs {
		s[i] = b.Addr
	}
	return s
}
