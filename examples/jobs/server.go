package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"html/template"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/queue"
)

// The queues and job types of the example.
const (
	reportQueue = "reports" // slow work a user asked for
	pageQueue   = "pages"   // periodic precomputation
	prerender   = "prerender"
)

// ReportRequest is the payload of a report job: what POST /reports asks
// for.
type ReportRequest struct {
	Customer string `json:"customer"`
	Month    string `json:"month"` // YYYY-MM; default the current month
}

// Report is a report job's result.
type Report struct {
	Customer string  `json:"customer"`
	Month    string  `json:"month"`
	Orders   int     `json:"orders"`
	Revenue  float64 `json:"revenue"`
	TookMS   int64   `json:"took_ms"` // the handler's time
}

// PageRequest is the payload of the periodic prerender job.
type PageRequest struct {
	Page string `json:"page"`
}

// The typed job types: the payload is JSON of the Go type, decoded for
// the handler.
var (
	reportType = queue.NewType[ReportRequest]("report", nil)
	pageType   = queue.NewType[PageRequest](prerender, nil)
)

// page is a rendered front page.
type page struct {
	HTML       []byte
	Generation int64  // renders so far, the one at startup included
	By         string // "startup" or the scheduled job's ID
	At         time.Time
}

// app is the web service and the job handlers around one JobQueue.
type app struct {
	q       queue.JobQueue
	pg      *pgStore      // with -pg: requests and their jobs written in one transaction
	work    time.Duration // a report's time, ±50 %
	maxWait time.Duration // longest ?wait= honored
	log     *slog.Logger

	page      atomic.Pointer[page]
	renders   atomic.Int64 // pages rendered by the scheduled job
	generated atomic.Int64 // pages rendered, the startup one included
	reports   atomic.Int64 // reports this process's worker finished
}

// routes is the HTTP API:
//
//	POST /reports          {"customer":..,"month":..} → 202, Location: /jobs/<id>
//	GET  /jobs/<id>        the job's status as JSON (404 when unknown)
//	GET  /jobs/<id>?wait=d long poll: answers once the job ended, or after d
//	GET  /                 the pre-rendered front page
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /reports", a.postReport)
	mux.HandleFunc("GET /jobs/{id}", a.getJob)
	mux.HandleFunc("GET /{$}", a.getPage)
	return mux
}

// accepted is the body of a 202.
type accepted struct {
	ID        queue.JobID `json:"id"`
	StatusURL string      `json:"status_url"`
	Message   string      `json:"message"`
}

// status is a job's JobInfo as the API shows it.
type status struct {
	ID         queue.JobID     `json:"id"`
	Type       string          `json:"type"`
	State      queue.State     `json:"state"`
	Attempts   int             `json:"attempts"`
	Error      string          `json:"error,omitempty"` // never the job's LastErr: see failureNote
	Result     json.RawMessage `json:"result,omitempty"`
	EnqueuedAt time.Time       `json:"enqueued_at,omitzero"`
	StartedAt  time.Time       `json:"started_at,omitzero"`
	EndedAt    time.Time       `json:"ended_at,omitzero"`
}

func statusOf(in queue.JobInfo) status {
	s := status{
		ID: in.ID, Type: in.Type, State: in.State, Attempts: in.Attempt, Error: failureNote(in),
		EnqueuedAt: in.EnqueuedAt, StartedAt: in.StartedAt, EndedAt: in.EndedAt,
	}
	if len(in.Result) > 0 {
		if json.Valid(in.Result) {
			s.Result = in.Result
		} else {
			s.Result, _ = json.Marshal(string(in.Result)) // a string never fails
		}
	}
	return s
}

// failureNote is what the API tells a client of a failed attempt. The
// job's LastErr holds whatever its handler's error said (a database's
// address, a query, a panic's value), which is for operators (Status, the
// worker's log), not for the web: clients get a fixed sentence.
func failureNote(in queue.JobInfo) string {
	switch {
	case in.LastErr == "" || in.State == queue.StateDone:
		return ""
	case in.State == queue.StateDead:
		return "the job failed and will not be retried"
	default:
		return "an attempt failed; the job will be retried"
	}
}

func statusURL(id queue.JobID) string { return "/jobs/" + string(id) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away
}

func (a *app) postReport(w http.ResponseWriter, r *http.Request) {
	var req ReportRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, "want a JSON body {\"customer\": ..., \"month\": \"YYYY-MM\"}: "+err.Error(), http.StatusBadRequest)
		return
	}
	if req.Customer = strings.TrimSpace(req.Customer); req.Customer == "" || len(req.Customer) > 100 {
		http.Error(w, "customer: want 1 to 100 bytes", http.StatusBadRequest)
		return
	}
	if req.Month == "" {
		req.Month = time.Now().UTC().Format("2006-01")
	} else if _, err := time.Parse("2006-01", req.Month); err != nil {
		http.Error(w, "month: want YYYY-MM", http.StatusBadRequest)
		return
	}
	// The ID is the queue's: random (80 bits from crypto/rand), so a
	// status URL cannot be guessed from another.
	opts := queue.Job{
		Queue:       reportQueue,
		MaxAttempts: 3,
		Timeout:     time.Minute,
		Retention:   time.Hour, // the status URL answers for an hour after the end
	}
	var id queue.JobID
	var err error
	if a.pg != nil {
		id, err = a.pg.saveAndEnqueue(r.Context(), req, opts)
	} else {
		id, err = reportType.Enqueue(r.Context(), a.q, req, opts)
	}
	if err != nil {
		a.log.Error("jobs: enqueueing a report", "err", err)
		http.Error(w, "the job queue is unavailable, try again", http.StatusServiceUnavailable)
		return
	}
	url := statusURL(id)
	w.Header().Set("Location", url)
	writeJSON(w, http.StatusAccepted, accepted{ID: id, StatusURL: url, Message: "your report is being prepared"})
}

func (a *app) getJob(w http.ResponseWriter, r *http.Request) {
	id := queue.JobID(r.PathValue("id"))
	var info queue.JobInfo
	var err error
	answered := false
	if ws := r.URL.Query().Get("wait"); ws != "" {
		d, perr := time.ParseDuration(ws)
		if perr != nil || d < 0 {
			http.Error(w, "wait: want a duration such as 10s", http.StatusBadRequest)
			return
		}
		// Long poll: block on the queue's Wait (no polling: it returns
		// when the job ends, from whichever process ran it), for at most
		// d, then answer whatever the state is.
		ctx, cancel := context.WithTimeout(r.Context(), min(d, a.maxWait))
		info, err = a.q.Wait(ctx, id)
		cancel()
		// Ran out, or the client left, or the server is shutting down:
		// answer the current state below.
		answered = !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
	}
	if !answered {
		// The request's context may be done already (shutdown).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		info, err = a.q.Status(ctx, id)
		cancel()
	}
	switch {
	case errors.Is(err, queue.ErrNotFound):
		http.Error(w, "no such job (or it ended more than its retention ago)", http.StatusNotFound)
		return
	case err != nil:
		a.log.Error("jobs: reading a job's status", "job", id, "err", err)
		http.Error(w, "the job queue is unavailable, try again", http.StatusServiceUnavailable)
		return
	}
	if !info.State.Final() {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, http.StatusOK, statusOf(info))
}

func (a *app) getPage(w http.ResponseWriter, r *http.Request) {
	p := a.page.Load()
	if p == nil {
		http.Error(w, "the front page is not rendered yet", http.StatusServiceUnavailable)
		return
	}
	// Serving is a pointer load: all the work was done ahead of time.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Generation", fmt.Sprint(p.Generation))
	w.Header().Set("X-Rendered-By", p.By)
	_, _ = w.Write(p.HTML)
}

// handleReport is the report job's handler: slow work (a sleep standing
// for queries and rendering) with a small result. It is idempotent (the
// same request gives the same figures), as an at-least-once handler must
// be.
func (a *app) handleReport(ctx context.Context, req ReportRequest, d *queue.Delivery) ([]byte, error) {
	start := time.Now()
	took := time.Duration(float64(a.work) * (0.5 + mrand.Float64()))
	t := time.NewTimer(took)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, context.Cause(ctx) // retried (or released at shutdown)
	case <-t.C:
	}
	h := fnv.New64a()
	h.Write([]byte(req.Customer + "/" + req.Month))
	sum := h.Sum64()
	rep := Report{
		Customer: req.Customer,
		Month:    req.Month,
		Orders:   int(sum%90) + 10,
		Revenue:  float64(sum%1_000_000) / 100,
		TookMS:   time.Since(start).Milliseconds(),
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return nil, queue.Permanent(err)
	}
	a.reports.Add(1)
	return b, nil
}

var frontPage = template.Must(template.New("front").Parse(`<!doctype html>
<html><head><title>Front page</title></head>
<body>
<h1>Front page</h1>
<p>Pre-rendered at {{.At.Format "15:04:05.000"}} (generation {{.Generation}}, by {{.By}}).
Serving it costs nothing: requests read the last rendering.</p>
<p>Reports finished by this process so far: {{.Reports}}.</p>
</body></html>
`))

// render builds the front page and swaps it in.
func (a *app) render(by string) error {
	gen := a.generated.Add(1)
	p := &page{Generation: gen, By: by, At: time.Now()}
	var sb strings.Builder
	err := frontPage.Execute(&sb, struct {
		*page
		Reports int64
	}{p, a.reports.Load()})
	if err != nil {
		return err
	}
	p.HTML = []byte(sb.String())
	a.page.Store(p)
	return nil
}

// handlePage is the prerender job's handler, run by whichever worker
// takes the slot's job.
func (a *app) handlePage(_ context.Context, req PageRequest, d *queue.Delivery) error {
	if req.Page != "front" {
		return queue.Permanent(fmt.Errorf("unknown page %q", req.Page))
	}
	if err := a.render(string(d.ID)); err != nil {
		return queue.Permanent(err)
	}
	a.renders.Add(1)
	return nil
}
