package admin_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/scaleout/scaleout/admin"
	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue"
)

// The admin page of a service, under /admin/, for its operators only: a
// queue store and a balancer registered, the charts sampled by Run.
func Example() {
	h, err := admin.New(admin.Config{
		// Who may see the page and press its buttons. A real service
		// checks its own login here (what its middleware put in the
		// request's context), or its SSO proxy's headers.
		Authorize: func(r *http.Request) error {
			if r.Header.Get("Authorization") != "Bearer ops-token" {
				return errors.New("operators only")
			}
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	// What the page shows: a queue store, and a balancer's metrics, teed
	// to the service's own metrics system (nil here: none).
	jobs, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer jobs.Close()
	h.Queues("jobs", jobs)
	var yours observe.Meter // promobserve.New(...) or otelobserve.New(...)
	lb, err := balance.NewHealth(balance.NewRoundRobin(), balance.HealthConfig{Meter: observe.Tee(h.Meter("web"), yours)})
	if err != nil {
		log.Fatal(err)
	}
	defer lb.Close()

	// The charts and rates, sampled until the service stops.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = h.Run(ctx) })
	defer wg.Wait()
	defer stop()

	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, token := range []string{"", "ops-token"} {
		req, _ := http.NewRequest("GET", srv.URL+"/admin/", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		csp, _, _ := strings.Cut(resp.Header.Get("Content-Security-Policy"), ";")
		fmt.Println(resp.Status, csp)
	}
	// Output:
	// 403 Forbidden default-src 'self'
	// 200 OK default-src 'self'
}
