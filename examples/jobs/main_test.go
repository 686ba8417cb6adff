// Real-time tests in this file: TestRun and TestRunRedis (the example end
// to end on a real loopback port, in memory and on a real Redis; they
// assert no duration). TestAPI runs the handlers in a synctest bubble.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scaleout/scaleout/internal/testenv"
	"github.com/scaleout/scaleout/queue"
)

// testConfig is the example with a schedule short enough to see two
// slots, and reports slow enough that the status read right after the
// 202 cannot find them ended even on a loaded machine.
func testConfig() config {
	return config{
		Addr: "127.0.0.1:0", Every: "@every 2s", Reports: 3, Work: 3 * time.Second,
		Concurrency: 4, Wait: 30 * time.Second, Renders: 2,
	}
}

// check asserts what every run must show, in memory or on Redis.
func check(t *testing.T, res result, out string) {
	t.Helper()
	if len(res.Reports) != 3 {
		t.Fatalf("%d reports, want 3", len(res.Reports))
	}
	ids := map[string]bool{}
	for _, r := range res.Reports {
		if r.Code != http.StatusAccepted {
			t.Errorf("%s: POST answered %d, want 202", r.Request.Customer, r.Code)
		}
		if !strings.HasPrefix(r.Location, "/jobs/"+reportQueue+"~") || r.StatusURL != r.Location {
			t.Errorf("%s: Location %q, body status_url %q: want the same /jobs/reports~<id>", r.Request.Customer, r.Location, r.StatusURL)
		}
		id := strings.TrimPrefix(r.Location, "/jobs/"+reportQueue+"~")
		if len(id) != 16 || ids[id] {
			t.Errorf("job ID %q: want 16 random characters, distinct", id)
		}
		ids[id] = true
		// In progress at once, then done.
		if r.First.State != queue.StateReady && r.First.State != queue.StateActive {
			t.Errorf("%s: state right after the 202 = %s, want ready or active", r.Request.Customer, r.First.State)
		}
		if r.First.Result != nil {
			t.Errorf("%s: a result before the job ended: %s", r.Request.Customer, r.First.Result)
		}
		if r.Final.State != queue.StateDone || r.Final.Attempts != 1 || r.Final.EndedAt.IsZero() {
			t.Errorf("%s: long poll answered %s after %d attempts (ended %v), want done after 1", r.Request.Customer, r.Final.State, r.Final.Attempts, r.Final.EndedAt)
		}
		if r.Report.Customer != r.Request.Customer || r.Report.Month != r.Request.Month || r.Report.Orders < 10 {
			t.Errorf("%s: result %+v does not answer request %+v", r.Request.Customer, r.Report, r.Request)
		}
		// The long poll returned when the job ended, not when ?wait= ran
		// out (30 s), nor before the work (≥ Work/2) was done.
		if r.Report.TookMS < 1500 || r.DoneIn > 20*time.Second {
			t.Errorf("%s: handler took %d ms, long poll answered after %v", r.Request.Customer, r.Report.TookMS, r.DoneIn)
		}
		if r.AcceptedIn > 2*time.Second {
			t.Errorf("%s: the 202 took %v: it should not wait for the work", r.Request.Customer, r.AcceptedIn)
		}
	}
	if res.NotFound != http.StatusNotFound {
		t.Errorf("unknown job: %d, want 404", res.NotFound)
	}
	// The scheduled renders: at least two distinct slots, after the
	// startup render.
	if res.Renders < 2 {
		t.Errorf("%d scheduled renders, want ≥ 2", res.Renders)
	}
	var slots []string
	for _, p := range res.Pages {
		if strings.HasPrefix(p, string(queue.FormatID(pageQueue, "periodic:front-page:"))) {
			slots = append(slots, p)
		} else if p != "startup" {
			t.Errorf("front page rendered by %q", p)
		}
	}
	if len(slots) < 2 {
		t.Errorf("front pages seen by renderer %q, want ≥ 2 scheduled slots", res.Pages)
	}
	if !strings.Contains(res.Page, "<h1>Front page</h1>") || !strings.Contains(res.Page, "periodic:front-page:") {
		t.Errorf("front page:\n%s", res.Page)
	}
	for _, want := range []string{"202 Accepted", "long-polling", "done after", "404 Not Found", "shutting down"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestRun runs the example end to end in memory on a loopback port: 202s
// with status URLs, in progress then done with the result, two scheduled
// renders of the front page, a 404, and no goroutine outliving run.
func TestRun(t *testing.T) {
	defer testenv.CheckGoroutines(t)()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	res, err := run(ctx, &out, testConfig())
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	check(t, res, out.String())
	if strings.Contains(out.String(), "level=ERROR") {
		t.Errorf("the worker or the scheduler logged an error")
	}
}

// TestRunRedis runs it on the test Redis: the same, and no key is left
// under the prefix.
func TestRunRedis(t *testing.T) {
	rdb := testenv.RedisClient(t)
	prefix := testenv.Prefix(t)
	defer testenv.CheckGoroutines(t)()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cfg := testConfig()
	cfg.client, cfg.prefix = rdb, prefix
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	check(t, res, out.String())
	if res.Keys == 0 || !strings.Contains(out.String(), "deleted the example's") {
		t.Errorf("deleted %d keys, want the queue's", res.Keys)
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("keys left under %s: %q (%v)", prefix, keys, err)
	}
}

// TestAPI checks the HTTP API's answers with no worker: the job stays
// ready, a long poll answers the current state when its wait runs out (at
// maxWait exactly: the handler is called in a synctest bubble), and at
// once when the job ends, and bad requests are refused.
func TestAPI(t *testing.T) {
	synctest.Test(t, testAPI)
}

func testAPI(t *testing.T) {
	q, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	a := &app{q: q, maxWait: 300 * time.Millisecond, log: testLogger(t)}
	routes := a.routes()
	serve := func(req *http.Request) *http.Response {
		rec := httptest.NewRecorder()
		routes.ServeHTTP(rec, req)
		return rec.Result()
	}

	post := func(body string) *http.Response {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/reports", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return serve(req)
	}
	get := func(path string) (*http.Response, status) {
		t.Helper()
		resp := serve(httptest.NewRequest(http.MethodGet, path, nil))
		var s status
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
				t.Fatal(err)
			}
		}
		return resp, s
	}

	for _, bad := range []string{``, `{}`, `{"customer":" "}`, `{"customer":"a","month":"May"}`, `{"customer":"a","extra":1}`} {
		if resp := post(bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s: %s, want 400", bad, resp.Status)
		}
	}
	resp := post(`{"customer":"acme"}`)
	var acc accepted
	if err := json.NewDecoder(resp.Body).Decode(&acc); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST: %s, %v", resp.Status, err)
	}
	if loc := resp.Header.Get("Location"); loc != acc.StatusURL || loc != "/jobs/"+string(acc.ID) {
		t.Errorf("Location %q, status_url %q, id %q", loc, acc.StatusURL, acc.ID)
	}
	info, err := q.Status(t.Context(), acc.ID)
	if err != nil || info.Type != "report" || !strings.Contains(string(info.Payload), `"month":"`+time.Now().UTC().Format("2006-01")) {
		t.Errorf("enqueued %+v (%v): want a report of this month", info, err)
	}

	if resp, s := get(acc.StatusURL); resp.StatusCode != http.StatusOK || s.State != queue.StateReady || s.ID != acc.ID {
		t.Errorf("GET %s: %s %+v, want ready", acc.StatusURL, resp.Status, s)
	}
	// ?wait=10s is capped at maxWait (300 ms), then answers the state.
	start := time.Now()
	resp, s := get(acc.StatusURL + "?wait=10s")
	if d := time.Since(start); d != a.maxWait {
		t.Errorf("the long poll of a job nobody runs answered after %v, want maxWait (%v)", d, a.maxWait)
	}
	if resp.StatusCode != http.StatusOK || s.State != queue.StateReady || resp.Header.Get("Retry-After") == "" {
		t.Errorf("long poll ran out: %s %+v, want ready with Retry-After", resp.Status, s)
	}
	// A job that ends while a long poll waits: the poll answers at once.
	d, err := q.Dequeue(t.Context(), []string{reportQueue}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a.maxWait = time.Minute
	const ackAfter = 100 * time.Millisecond
	go func() {
		time.Sleep(ackAfter)
		_ = d.Ack(context.Background(), []byte(`{"customer":"acme"}`))
	}()
	start = time.Now()
	if resp, s := get(acc.StatusURL + "?wait=30s"); resp.StatusCode != http.StatusOK || s.State != queue.StateDone ||
		string(s.Result) != `{"customer":"acme"}` || time.Since(start) != ackAfter {
		t.Errorf("long poll: %s %+v after %v, want done with the result at once when the job ended (%v)", resp.Status, s, time.Since(start), ackAfter)
	}

	// An ID in the "<queue>/<name>" form, escaped into one path
	// segment, still names the job.
	if qn, name, err := queue.ParseID(acc.ID); err != nil {
		t.Errorf("ParseID(%q): %v", acc.ID, err)
	} else if resp, s := get("/jobs/" + url.PathEscape(qn+"/"+name)); resp.StatusCode != http.StatusOK || s.State != queue.StateDone {
		t.Errorf("GET of the slash form of the ID: %s %+v, want the done job", resp.Status, s)
	}

	for _, path := range []string{"/jobs/reports~0000000000000000", "/jobs/nonsense", "/jobs/reports~0000000000000000?wait=1s", "/jobs/reports%2F0000000000000000"} {
		if resp, _ := get(path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", path, resp.Status)
		}
	}
	if resp, _ := get(acc.StatusURL + "?wait=forever"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("?wait=forever: %s, want 400", resp.Status)
	}
	if resp, _ := get("/"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET / before any render: %s, want 503", resp.Status)
	}
}

// TestAPIHidesFailureDetails: a report handler that panics with a
// backend's address in its message; the status the API answers says the
// job failed, and shows neither the message nor the stack.
func TestAPIHidesFailureDetails(t *testing.T) {
	q, err := queue.NewMemory(queue.MemoryConfig{Backoff: func(int) time.Duration { return time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	a := &app{q: q, maxWait: 10 * time.Second, log: testLogger(t)}
	srv := httptest.NewServer(a.routes())
	defer srv.Close()
	w, err := queue.NewWorker(q, queue.WorkerConfig{Queues: map[string]int{reportQueue: 1}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = reportType.Handle(w, func(context.Context, ReportRequest, *queue.Delivery) error {
		panic("dial tcp 10.0.0.7:5432: connection refused")
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { stop(); <-done }()

	resp, err := srv.Client().Post(srv.URL+"/reports", "application/json", strings.NewReader(`{"customer":"acme"}`))
	if err != nil {
		t.Fatal(err)
	}
	var acc accepted
	err = json.NewDecoder(resp.Body).Decode(&acc)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	resp, err = srv.Client().Get(srv.URL + acc.StatusURL + "?wait=10s")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var s status
	if err := json.Unmarshal(body, &s); err != nil || s.State != queue.StateDead || s.Error == "" {
		t.Fatalf("status %s (%v): want dead, with an error", body, err)
	}
	for _, secret := range []string{"10.0.0.7", "goroutine", ".go:", "panic"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("the status shows %q to the client: %s", secret, body)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// TestRunPG runs it on the test PostgreSQL: the same, each report request
// written with its job in one transaction, and the tables dropped.
func TestRunPG(t *testing.T) {
	dsn := testenv.PGPrimaryDSN(t)
	defer testenv.CheckGoroutines(t)()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cfg := testConfig()
	cfg.PG = dsn
	var out bytes.Buffer
	res, err := run(ctx, &out, cfg)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	check(t, res, out.String())
	if res.Rows != cfg.Reports {
		t.Errorf("%d report requests written, want %d", res.Rows, cfg.Reports)
	}
	if !strings.Contains(out.String(), "dropped the example's tables") {
		t.Errorf("the tables were not dropped")
	}
}
