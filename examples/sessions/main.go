// Command sessions shows a logged-in session surviving the loss of the
// clone that served it: two clones of a web service keep their sessions
// in one shared Redis store (package session with session/redisstore)
// behind a round-robin load balancer (balance/httpproxy), with no sticky
// cookie, so consecutive requests alternate between the clones.
//
//  1. two clones listen on 127.0.0.1 on ports the system picks, each with
//     its own session.Manager over the shared Redis store;
//  2. a client logs in and increments a counter a few times: every
//     response names the clone that served it, and the count goes on
//     across clones because neither keeps the session itself;
//  3. the clone that served the last request is shut down (and taken out
//     of the balancer, as a health check would): the survivor serves the
//     same session and the count keeps increasing;
//  4. the example deletes its keys from Redis and exits.
//
// It needs Redis: run it with
//
//	SCALEOUT_REDIS_ADDR=127.0.0.1:6379 go run ./examples/sessions
//
// (the address defaults to 127.0.0.1:6379).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/balance/httpproxy"
	"github.com/scaleout/scaleout/session"
	"github.com/scaleout/scaleout/session/redisstore"
)

// EnvRedisAddr names the environment variable with Redis's address.
const EnvRedisAddr = "SCALEOUT_REDIS_ADDR"

const defaultRedisAddr = "127.0.0.1:6379"

// quiet drops go-redis's own log lines (its dial retries): run reports
// an unreachable Redis itself.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func main() {
	redis.SetLogger(quiet{})
	addr := os.Getenv(EnvRedisAddr)
	if addr == "" {
		addr = defaultRedisAddr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := run(ctx, os.Stdout, addr); err != nil {
		fmt.Fprintln(os.Stderr, "sessions:", err)
		os.Exit(1)
	}
}

// result is what run observed, for its test.
type result struct {
	Count   int      // the counter's final value
	Want    int      // how many increments were sent
	Clones  []string // the clones that served requests, in the order first seen
	Killed  string   // the clone shut down
	Survive []string // the clones that served requests after the shutdown
}

// server is one loopback HTTP server.
type server struct {
	name string
	srv  *http.Server
	addr string
	done chan error
}

// start serves h on 127.0.0.1 on a free port.
func start(name string, h http.Handler) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &server{
		name: name,
		srv:  &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		addr: l.Addr().String(),
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(l) }()
	return s, nil
}

// stop shuts s down, letting requests in flight finish; a second call
// does nothing.
func (s *server) stop(ctx context.Context) error {
	if s.done == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if serveErr := <-s.done; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	s.done = nil
	return err
}

// clone is the web service: POST /login?user=U logs in, POST /inc
// increments the session's counter; every response carries X-Clone.
func clone(name string, sessions *session.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if err := session.Login(r.Context(), user); err != nil {
			http.Error(w, "login failed", http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "logged in as %s", user)
	})
	mux.HandleFunc("POST /inc", func(w http.ResponseWriter, r *http.Request) {
		user := session.User(r.Context())
		if user == "" {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		n, err := session.Update(r.Context(), "n", func(n int) int { return n + 1 })
		if err != nil {
			http.Error(w, "session unavailable", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d", n)
	})
	return sessions.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Clone", name)
		mux.ServeHTTP(w, r)
	}))
}

func run(ctx context.Context, out io.Writer, redisAddr string) (res result, err error) {
	// The shared store, under a prefix of its own so the cleanup removes
	// exactly this run's keys.
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return res, fmt.Errorf("this example needs Redis, and %s (set %s) does not answer: %w", redisAddr, EnvRedisAddr, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // never fails
	prefix := "scaleout-example-sessions:" + hex.EncodeToString(rnd[:]) + ":"
	store, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		return res, err
	}
	defer func() {
		n, cerr := deletePrefix(context.WithoutCancel(ctx), rdb, prefix)
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("deleting keys %s*: %w", prefix, cerr))
			return
		}
		fmt.Fprintf(out, "\ndeleted the example's %d keys (%s*) from Redis\n", n, prefix)
	}()

	var servers []*server
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, s := range servers {
			err = errors.Join(err, s.stop(sctx))
		}
	}()

	// 1. Two clones, each with its own Manager over the shared store.
	var clones []*server
	var backends []balance.Backend
	for _, name := range []string{"clone A", "clone B"} {
		sessions, err := session.NewManager(store, session.Config{
			// Plain HTTP on loopback: without this the client would not
			// send the (Secure) cookie back. Never in production.
			Cookie: session.CookieConfig{Insecure: true},
		})
		if err != nil {
			return res, err
		}
		s, err := start(name, clone(name, sessions))
		if err != nil {
			return res, err
		}
		servers = append(servers, s)
		clones = append(clones, s)
		backends = append(backends, balance.Backend{Addr: s.addr})
	}

	// The proxy, round robin, no sticky cookie.
	lb := balance.NewRoundRobin()
	if err := lb.Update(backends); err != nil {
		return res, err
	}
	proxy, err := httpproxy.New(lb, httpproxy.Config{ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return res, err
	}
	defer proxy.CloseIdleConnections()
	front, err := start("proxy", proxy)
	if err != nil {
		return res, err
	}
	servers = append([]*server{front}, servers...) // stopped first
	base := "http://" + front.addr

	jar, err := cookiejar.New(nil)
	if err != nil {
		return res, err
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	browser := &http.Client{Transport: tr, Jar: jar, Timeout: 5 * time.Second}
	post := func(path string) (body, servedBy string, err error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, nil)
		if err != nil {
			return "", "", err
		}
		resp, err := browser.Do(req)
		if err != nil {
			return "", "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", "", fmt.Errorf("POST %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
		}
		return string(b), resp.Header.Get("X-Clone"), nil
	}
	seen := map[string]bool{}
	served := func(name string) {
		if !seen[name] {
			seen[name] = true
			res.Clones = append(res.Clones, name)
		}
	}
	last, count := "", 0
	inc := func() error {
		body, by, err := post("/inc")
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(body)
		if err != nil {
			return fmt.Errorf("POST /inc answered %q", body)
		}
		res.Want++
		if n != count+1 {
			return fmt.Errorf("increment %d: count %d after %d, want %d", res.Want, n, count, count+1)
		}
		count, last = n, by
		served(by)
		fmt.Fprintf(out, "  %-7s count = %d\n", by+":", n)
		return nil
	}

	fmt.Fprintf(out, "proxy on %s; %s on %s, %s on %s; sessions in Redis at %s\n\n",
		front.addr, clones[0].name, clones[0].addr, clones[1].name, clones[1].addr, redisAddr)

	// 2. Log in, then increment: the requests alternate between clones.
	body, by, err := post("/login?user=alice")
	if err != nil {
		return res, err
	}
	served(by)
	fmt.Fprintf(out, "  %-7s %s\n", by+":", body)
	for range 4 {
		if err := inc(); err != nil {
			return res, err
		}
	}
	if len(res.Clones) != 2 {
		return res, fmt.Errorf("round robin reached %d clones, want 2", len(res.Clones))
	}

	// 3. Shut down the clone that served the last request.
	var survivor *server
	for _, c := range clones {
		if c.name == last {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.stop(sctx)
			cancel()
			if err != nil {
				return res, fmt.Errorf("stopping %s: %w", c.name, err)
			}
		} else {
			survivor = c
		}
	}
	res.Killed = last
	if err := lb.Update([]balance.Backend{{Addr: survivor.addr}}); err != nil {
		return res, err
	}
	fmt.Fprintf(out, "\n%s shut down and taken out of the balancer; the session lives on in Redis:\n\n", last)
	res.Clones, seen = nil, map[string]bool{}
	for range 3 {
		if err := inc(); err != nil {
			return res, err
		}
	}
	res.Survive = res.Clones
	res.Clones = []string{clones[0].name, clones[1].name}
	res.Count = count
	return res, nil
}

// deletePrefix removes every key under prefix and returns how many.
func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var keys []string
	it := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	if err := it.Err(); err != nil {
		return 0, err
	}
	if len(keys) == 0 {
		return 0, nil
	}
	return len(keys), rdb.Unlink(ctx, keys...).Err()
}
