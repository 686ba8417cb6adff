package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/scaleout/scaleout/queue"
)

// session is a browser of the page: the cookie and the token it was
// served with.
type session struct {
	cookie *http.Cookie
	token  string
}

// openPage gets the page from h as a browser would, and keeps its token.
func openPage(t *testing.T, h http.Handler) session {
	t.Helper()
	resp := do(h, httptest.NewRequest("GET", "/", nil))
	page := body(t, resp)
	var s session
	for _, c := range resp.Cookies() {
		if c.Name == csrfCookie {
			s.cookie = c
		}
	}
	if s.cookie == nil || !s.cookie.HttpOnly || s.cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("the page set no HttpOnly SameSite=Strict CSRF cookie: %v", resp.Cookies())
	}
	const meta = `<meta name="admin-token" content="`
	i := strings.Index(page, meta)
	if i < 0 {
		t.Fatal("the page has no token")
	}
	s.token = page[i+len(meta):]
	s.token = s.token[:strings.IndexByte(s.token, '"')]
	return s
}

// post makes the request the page makes for an action.
func (s session) post(a queueAction) *http.Request {
	b, _ := json.Marshal(a)
	r := httptest.NewRequest("POST", "/api/queue", strings.NewReader(string(b)))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Origin", "http://example.com") // httptest's Host
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if s.cookie != nil {
		r.AddCookie(s.cookie)
	}
	if s.token != "" {
		r.Header.Set(csrfHeader, s.token)
	}
	return r
}

func result(t *testing.T, resp *http.Response) actionResult {
	t.Helper()
	var res actionResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatalf("status %d, body not an action result: %v", resp.StatusCode, err)
	}
	return res
}

// withQueue returns a Handler showing a Memory queue store "jobs" whose
// queue "mail" holds a dead letter and two ready jobs.
func withQueue(t *testing.T) (*Handler, *queue.Memory, queue.JobID) {
	t.Helper()
	ctx := context.Background()
	q, err := queue.NewMemory(queue.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	dead, err := q.Enqueue(ctx, queue.Job{Queue: "mail", Type: "send", MaxAttempts: 1,
		Payload: []byte("secret-payload"), Headers: map[string]string{"auth": "secret-header"}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := q.Dequeue(ctx, []string{"mail"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Fail(ctx, errors.New("smtp refused")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := q.Enqueue(ctx, queue.Job{Queue: "mail", Type: "send"}); err != nil {
			t.Fatal(err)
		}
	}
	h := newHandler(t, open())
	h.Queues("jobs", q)
	return h, q, dead
}

// TestCSRF checks that an action is refused unless it carries the token
// of the page's cookie and comes from the page's origin.
func TestCSRF(t *testing.T) {
	h, q, _ := withQueue(t)
	s := openPage(t, h)
	pause := queueAction{Store: "jobs", Queue: "mail", Action: "pause"}
	for _, tc := range []struct {
		name string
		req  func() *http.Request
		want int
	}{
		{"no cookie, no token", func() *http.Request { return session{}.post(pause) }, 403},
		{"no token", func() *http.Request { return session{cookie: s.cookie}.post(pause) }, 403},
		{"no cookie", func() *http.Request { return session{token: s.token}.post(pause) }, 403},
		{"token of another cookie", func() *http.Request {
			return session{cookie: &http.Cookie{Name: csrfCookie, Value: randomToken()}, token: s.token}.post(pause)
		}, 403},
		{"cross-site", func() *http.Request {
			r := s.post(pause)
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			return r
		}, 403},
		{"other origin", func() *http.Request {
			r := s.post(pause)
			r.Header.Del("Sec-Fetch-Site")
			r.Header.Set("Origin", "https://evil.example")
			return r
		}, 403},
		{"a form", func() *http.Request {
			r := s.post(pause)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, 415},
		{"GET", func() *http.Request {
			r := s.post(pause)
			r.Method = "GET"
			return r
		}, 405},
	} {
		resp := do(h, tc.req())
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if c, _ := q.Counts(context.Background(), "mail"); c.Paused {
		t.Fatal("a refused action paused the queue")
	}
	if resp := do(h, s.post(pause)); resp.StatusCode != 200 {
		t.Fatalf("the page's own action: status %d %q", resp.StatusCode, body(t, resp))
	}
	if c, _ := q.Counts(context.Background(), "mail"); !c.Paused {
		t.Fatal("the page's own pause did not pause the queue")
	}
}

// TestQueueActions checks each action on a queue.Memory: what a user
// relies on is what the queue does after the button. It runs in a
// synctest bubble, so that "Dequeue waits" is a wait for as long as one
// likes, at no cost.
func TestQueueActions(t *testing.T) { synctest.Test(t, testQueueActions) }

func testQueueActions(t *testing.T) {
	ctx := context.Background()
	h, q, dead := withQueue(t)
	s := openPage(t, h)
	act := func(a queueAction) (int, actionResult) {
		resp := do(h, s.post(a))
		return resp.StatusCode, result(t, resp)
	}

	// The panel lists the dead letter without its payload or headers.
	st := h.state(h.read(ctx, true))
	if len(st.Queues) != 1 || len(st.Queues[0].DeadLetters) != 1 || st.Queues[0].DeadLetters[0].ID != string(dead) {
		t.Fatalf("panels %+v, want mail with dead letter %s", st.Queues, dead)
	}
	if p := st.Queues[0]; p.Ready != 2 || p.Dead != 1 || p.Pending != 2 || p.DeadLetters[0].Error != "smtp refused" {
		t.Errorf("mail panel %+v", p)
	}
	raw, _ := json.Marshal(st)
	if strings.Contains(string(raw), "secret") {
		t.Errorf("the figures show a payload or header: %s", raw)
	}

	// Retry moves the dead letter back to ready.
	if code, res := act(queueAction{Store: "jobs", Queue: "mail", Action: "retry", ID: string(dead)}); code != 200 || !res.OK {
		t.Fatalf("retry: %d %+v", code, res)
	}
	if info, err := q.Status(ctx, dead); err != nil || info.State != queue.StateReady {
		t.Fatalf("after retry the job is %v (%v), want ready", info.State, err)
	}
	if c, _ := q.Counts(ctx, "mail"); c.Dead != 0 || c.Ready != 3 {
		t.Errorf("after retry: %+v, want 3 ready and none dead", c)
	}
	// A second retry of the same job finds no dead letter.
	if code, res := act(queueAction{Store: "jobs", Queue: "mail", Action: "retry", ID: string(dead)}); code != 404 || res.OK {
		t.Errorf("retry of a job not dead: %d %+v, want 404", code, res)
	}

	// Pause stops Dequeue; resume lets it take the job.
	if code, res := act(queueAction{Store: "jobs", Queue: "mail", Action: "pause"}); code != 200 || !res.OK {
		t.Fatalf("pause: %d %+v", code, res)
	}
	short, cancel := context.WithTimeout(ctx, time.Hour)
	d, err := q.Dequeue(short, []string{"mail"}, time.Minute)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dequeue of a paused queue with 3 ready jobs = %v, %v; want it to wait out its hour", d, err)
	}
	if st := h.state(h.read(ctx, true)); !st.Queues[0].Paused {
		t.Error("the panel does not show the queue paused")
	}
	if code, res := act(queueAction{Store: "jobs", Queue: "mail", Action: "resume"}); code != 200 || !res.OK {
		t.Fatalf("resume: %d %+v", code, res)
	}
	d, err = q.Dequeue(ctx, []string{"mail"}, time.Minute)
	if err != nil {
		t.Fatalf("Dequeue after resume: %v", err)
	}

	// Delete removes a dead letter for good.
	if err := d.Fail(ctx, queue.Permanent(errors.New("bad address"))); err != nil {
		t.Fatal(err)
	}
	if code, res := act(queueAction{Store: "jobs", Queue: "mail", Action: "delete", ID: string(d.ID)}); code != 200 || !res.OK {
		t.Fatalf("delete: %d %+v", code, res)
	}
	if _, err := q.Status(ctx, d.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("after delete, Status = %v, want ErrNotFound", err)
	}

	// Mistakes are told apart.
	for _, tc := range []struct {
		a    queueAction
		want int
	}{
		{queueAction{Store: "nope", Queue: "mail", Action: "pause"}, 404},
		{queueAction{Store: "jobs", Queue: "nope", Action: "pause"}, 404},
		{queueAction{Store: "jobs", Queue: "mail", Action: "explode"}, 400},
		{queueAction{Store: "jobs", Queue: "mail", Action: "retry"}, 400},
		{queueAction{Store: "jobs", Queue: "mail", Action: "pause", ID: "x"}, 400},
	} {
		if code, res := act(tc.a); code != tc.want || res.OK {
			t.Errorf("%+v: %d %+v, want %d", tc.a, code, res, tc.want)
		}
	}
	if _, err := q.Counts(ctx, "nope"); err != nil {
		t.Fatal(err)
	}
	if names, _ := q.Queues(ctx); len(names) != 1 {
		t.Errorf("queues %v: an action on an unknown queue made one", names)
	}
}

// TestQueueBulkActions checks retry-all and delete-all.
func TestQueueBulkActions(t *testing.T) {
	ctx := context.Background()
	h, q, _ := withQueue(t)
	s := openPage(t, h)
	resp := do(h, s.post(queueAction{Store: "jobs", Queue: "mail", Action: "retry-all"}))
	if res := result(t, resp); !res.OK || !strings.Contains(res.Message, "requeued 1") {
		t.Fatalf("retry-all: %+v", res)
	}
	if c, _ := q.Counts(ctx, "mail"); c.Dead != 0 || c.Ready != 3 {
		t.Errorf("after retry-all: %+v", c)
	}
	for range 3 {
		d, err := q.Dequeue(ctx, []string{"mail"}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Fail(ctx, queue.Permanent(errors.New("no"))); err != nil {
			t.Fatal(err)
		}
	}
	resp = do(h, s.post(queueAction{Store: "jobs", Queue: "mail", Action: "delete-all"}))
	if res := result(t, resp); !res.OK || !strings.Contains(res.Message, "deleted 3") {
		t.Fatalf("delete-all: %+v", res)
	}
	if c, _ := q.Counts(ctx, "mail"); c.Dead != 0 || c.Pending() != 0 {
		t.Errorf("after delete-all: %+v", c)
	}
}
