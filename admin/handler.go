package admin

import (
	"cmp"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scaleout/scaleout/failover"
	"github.com/scaleout/scaleout/observe"
	"github.com/scaleout/scaleout/queue"
)

// Defaults of Config.
const (
	DefaultInterval = 5 * time.Second
	DefaultWindow   = 10 * time.Minute
	DefaultTitle    = "scaleout admin"
)

// maxPoints bounds the points a chart keeps, whatever Window/Interval.
const maxPoints = 3600

var (
	// ErrInvalidConfig is returned by New for a negative Interval or
	// Window.
	ErrInvalidConfig = errors.New("admin: invalid config")
	// ErrAlreadyRunning is what Run returns at once while another Run of
	// the same Handler runs.
	ErrAlreadyRunning = errors.New("admin: already running")
)

// Config configures a Handler. Its zero value is valid, and serves nothing:
// set Authorize, or AllowLoopback.
type Config struct {
	// Authorize decides whether a request may see the page and act on
	// what it shows: nil lets it through, an error refuses it with 403
	// and the error's text. It is called for every request, the page, its
	// static files, the figures it polls and the actions it posts. A
	// service that authenticates in a middleware of its own checks here
	// what that middleware put in the request's context.
	//
	// With neither Authorize nor AllowLoopback, the Handler refuses every
	// request with 403 and a message saying what to set: an admin page
	// that pauses queues is never open by default.
	Authorize func(r *http.Request) error
	// AllowLoopback serves, without Authorize, requests from this machine:
	// those whose peer address is a loopback address, whose Host is
	// localhost or a loopback address (a page of another site that had its
	// name resolve to 127.0.0.1 is refused: DNS rebinding), and which
	// carry no Forwarded or X-Forwarded-For header (a reverse proxy on
	// this machine makes every client look local). Other requests go to
	// Authorize, if set, and are refused otherwise.
	AllowLoopback bool
	// Interval is the time between two samples of the charts and of the
	// rates the panels show (throughput, hit ratio, latency): default
	// DefaultInterval.
	Interval time.Duration
	// Window is how far back the charts go: default DefaultWindow. A chart
	// keeps Window/Interval points, at most 3600.
	Window time.Duration
	// Title is the page's title: default DefaultTitle.
	Title string
	// Logger logs the actions taken from the page (which queue was
	// paused, which dead letter requeued, from which address); nil means
	// slog.Default(). Sources that fail to answer are shown on the page.
	Logger *slog.Logger
}

// Handler is the admin page and its JSON API: an http.Handler to mount
// under a prefix of the user's choice. Register what it shows with Meter,
// Queues and Election; call Run for the charts and rates. Its methods are
// safe for concurrent use.
type Handler struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	page   *template.Template
	cross  *http.CrossOriginProtection
	points int

	running atomic.Bool

	mu        sync.Mutex
	meters    []*meterSource
	queues    []*queueSource
	elections []*electionSource
	hist      history
}

type meterSource struct {
	name string
	rec  *observe.Recorder
}

type queueSource struct {
	name string
	in   queue.Inspector
}

type electionSource struct {
	name string
	e    failover.Elector
	self string

	// Under Handler.mu: the leader (or vacancy) last seen, and since when
	// the Handler has seen it. changed tells a change the Handler saw
	// happen from the first reading, when the leader led already.
	seen    failover.Leader
	since   time.Time
	known   bool
	changed bool
}

//go:embed assets
var assets embed.FS

// New returns a Handler; it starts nothing (Run samples the charts).
func New(cfg Config) (*Handler, error) {
	if cfg.Interval < 0 || cfg.Window < 0 {
		return nil, fmt.Errorf("%w: Interval %v and Window %v must not be negative", ErrInvalidConfig, cfg.Interval, cfg.Window)
	}
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.Window = cmp.Or(cfg.Window, DefaultWindow)
	cfg.Title = cmp.Or(cfg.Title, DefaultTitle)
	h := &Handler{cfg: cfg, log: cfg.Logger, cross: http.NewCrossOriginProtection()}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.points = int(min(max(cfg.Window/cfg.Interval, 2), maxPoints))
	h.hist = newHistory(h.points)
	h.page = template.Must(template.ParseFS(assets, "assets/index.html"))
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, err
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /{$}", h.servePage)
	h.mux.Handle("GET /static/", http.StripPrefix("/static", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /api/state", h.serveState)
	h.mux.HandleFunc("POST /api/queue", h.serveQueueAction)
	return h, nil
}

// Meter returns the Meter of the instance name, to pass in the Configs of
// the primitives whose figures the page shows: every metric reported
// through it is kept in memory, and those of balance, cache, replica and
// failover make a panel of their package under name (session and
// httpproxy metrics are kept but have no panel). The same name returns
// the same Meter. To feed a metrics system too, pass
// observe.Tee(h.Meter(name), yours).
//
// Name is how the panels join what belongs together: the queue metrics of
// the Meter named like a queue store given to Queues (its handler
// latency) and the failover metrics of the Meter named like an Election
// (terms won, leader changes) show in that panel. Give each instance whose
// figures must stay apart a Meter of its own, as package observe says.
func (h *Handler) Meter(name string) observe.Meter {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.meters {
		if m.name == name {
			return m.rec
		}
	}
	m := &meterSource{name: name, rec: observe.NewRecorder()}
	h.meters = append(h.meters, m)
	return m.rec
}

// Queues shows every queue that in lists (Inspector.Queues), under name:
// its depth by state, its throughput, its oldest ready job, its dead
// letters with buttons to requeue or delete them, and a button to pause
// and resume it. The handler latency comes from the queue metrics of
// Meter(name), when the queue reports there. Registering a name again
// replaces what it showed.
func (h *Handler) Queues(name string, in queue.Inspector) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &queueSource{name: name, in: in}
	if i := slices.IndexFunc(h.queues, func(q *queueSource) bool { return q.name == name }); i >= 0 {
		h.queues[i] = s
		return
	}
	h.queues = append(h.queues, s)
}

// Election shows the election e takes part in, under name: who leads, with
// which fencing token, since when (as first seen by the Handler, to within
// its Interval), and this process's role, leader when the leader's ID is
// candidateID (this process's failover.Config.ID; "" when this process
// only watches). Registering a name again replaces what it showed.
func (h *Handler) Election(name string, e failover.Elector, candidateID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &electionSource{name: name, e: e, self: candidateID}
	if i := slices.IndexFunc(h.elections, func(x *electionSource) bool { return x.name == name }); i >= 0 {
		h.elections[i] = s
		return
	}
	h.elections = append(h.elections, s)
}

// ServeHTTP serves the page, its files, its figures and its actions, to
// requests that Config lets through, under whatever prefix the caller
// strips (http.StripPrefix).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if err := h.authorize(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if r.URL.Path == "" {
		// Mounted as StripPrefix("/admin", h) and asked for /admin: the
		// page's relative links need the slash.
		// The Location is relative to what the browser asked for, which
		// http.Redirect would resolve against the stripped path.
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil && path.Base(u.Path) != "/" {
			w.Header().Set("Location", url.PathEscape(path.Base(u.Path))+"/")
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		http.NotFound(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// securityHeaders confines the page to its own origin: scripts, styles and
// requests from the Handler only (no inline script), never framed, no
// referrer sent with links, nothing cached.
func securityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
}

// servePage serves the page, with a CSRF token for its actions.
func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	token := h.pageToken(w, r)
	poll := min(max(h.cfg.Interval/2, 250*time.Millisecond), 2*time.Second)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	err := h.page.Execute(w, map[string]any{
		"Title":  h.cfg.Title,
		"Token":  token,
		"PollMS": poll.Milliseconds(),
	})
	if err != nil {
		h.log.Warn("admin: writing the page", slog.Any("err", err))
	}
}

// randomToken returns 256 random bits as text.
func randomToken() string { return rand.Text() + rand.Text() }
