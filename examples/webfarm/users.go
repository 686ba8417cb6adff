package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// traffic is what simulated users saw: the farm's view from outside.
type traffic struct {
	ok, failed  atomic.Int64
	sessionLost atomic.Int64 // a logged-in user found logged out

	mu       sync.Mutex
	jobs     []string        // IDs of accepted report jobs
	failures []failedRequest // every failed request
}

// A failedRequest is a request that failed, with when it was sent and when
// it failed.
type failedRequest struct {
	method, path string
	status       int
	err          error
	sent, failed time.Time
}

func (f failedRequest) String() string {
	return fmt.Sprintf("%s %s sent %s, failed %s: status %d, %v", f.method, f.path,
		f.sent.Format("15:04:05.000"), f.failed.Format("15:04:05.000"), f.status, f.err)
}

func (t *traffic) fail(f failedRequest) {
	t.failed.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failures = append(t.failures, f)
}

func (t *traffic) failedRequests() []failedRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]failedRequest(nil), t.failures...)
}

func (t *traffic) acceptedJobs() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.jobs...)
}

// runUsers runs n simulated users against base until ctx ends: each logs
// in once, then reads its profile, records visits, asks for reports and
// the precomputed top list, with a short think time.
func runUsers(ctx context.Context, base string, n int, t *traffic) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { runUser(ctx, base, fmt.Sprintf("user_%d", i+1), t) })
	}
	wg.Wait()
}

func runUser(ctx context.Context, base, name string, t *traffic) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 3 * time.Second}
	do := func(method, path string, form url.Values) (int, []byte, error) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, body)
		if err != nil {
			return 0, nil, err
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		// A refused connection never reached a server, so even a POST is
		// safe to send again: a browser's user would press reload. This
		// rides out the moment the public address moves to the passive
		// balancer.
		for try := 0; err != nil && refused(err) && try < 40 && ctx.Err() == nil; try++ {
			time.Sleep(25 * time.Millisecond)
			if form != nil {
				req.Body = io.NopCloser(strings.NewReader(form.Encode()))
			}
			resp, err = client.Do(req)
		}
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	// record counts the outcome of a request sent at sent; it ignores those
	// cut by ctx's end.
	record := func(method, path string, sent time.Time, status int, err error, want int) bool {
		if ctx.Err() != nil {
			return false
		}
		if err != nil || status != want {
			t.fail(failedRequest{method: method, path: path, status: status, err: err, sent: sent, failed: time.Now()})
			return false
		}
		t.ok.Add(1)
		return true
	}
	loggedIn := false
	for ctx.Err() == nil {
		sent := time.Now()
		if !loggedIn {
			status, _, err := do(http.MethodPost, "/login", url.Values{"user": {name}})
			loggedIn = record(http.MethodPost, "/login", sent, status, err, http.StatusOK)
		} else {
			switch r := rand.IntN(10); {
			case r < 6:
				status, _, err := do(http.MethodGet, "/me", nil)
				if status == http.StatusUnauthorized && ctx.Err() == nil {
					t.sessionLost.Add(1)
					loggedIn = false
				}
				record(http.MethodGet, "/me", sent, status, err, http.StatusOK)
			case r < 8:
				status, _, err := do(http.MethodPost, "/visit", nil)
				record(http.MethodPost, "/visit", sent, status, err, http.StatusOK)
			case r < 9:
				status, body, err := do(http.MethodPost, "/report", nil)
				if record(http.MethodPost, "/report", sent, status, err, http.StatusAccepted) {
					var v struct{ Job string }
					if json.Unmarshal(body, &v) == nil && v.Job != "" {
						t.mu.Lock()
						t.jobs = append(t.jobs, v.Job)
						t.mu.Unlock()
					}
				}
			default:
				status, _, err := do(http.MethodGet, "/top", nil)
				record(http.MethodGet, "/top", sent, status, err, http.StatusOK)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(30+rand.IntN(50)) * time.Millisecond):
		}
	}
}

// jobState asks the farm for a job's state.
func jobState(ctx context.Context, base, id string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/jobs/"+url.PathEscape(id), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct{ State string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", fmt.Errorf("job %s: %s", id, resp.Status)
	}
	return v.State, nil
}

// refused reports a connection the server refused (nothing listens).
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
