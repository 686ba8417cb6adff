package balance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Load reporting is load-based balancing by asking each server how busy
// it is: each backend publishes its own load with a LoadReporter, and
// every balancer instance polls it with a LoadProber. Because the number comes from the backend, several
// balancers (or proxies) in front of the same clones share one view of
// how busy each clone is, where each balancer's own in-flight count only
// sees its own share of the traffic.

// DefaultLoadPath is where LoadReporter.Middleware serves the load report
// and where LoadProber looks for it, unless configured otherwise. It sits
// under /debug/ with expvar and pprof: an operational endpoint for the
// private network, which balance/httpproxy does not forward (its
// DefaultPrivatePaths), so per-clone in-flight counts are not readable
// through it. Behind another proxy, keep /debug/ private, or serve
// Handler on a private port instead.
const DefaultLoadPath = "/debug/load"

// LoadHeader is the response header LoadReporter sets when Header is on.
const LoadHeader = "X-Load"

// maxLoadReport bounds the body a LoadProber reads.
const maxLoadReport = 4 << 10

// A LoadReport is one backend's load at one moment, as LoadReporter
// serves it in JSON: {"inflight":3,"gauge":0.42,"time":"..."}.
type LoadReport struct {
	// Inflight is the number of requests the backend is serving.
	Inflight int64 `json:"inflight"`
	// Gauge is the backend's own measure (LoadReporter.Gauge), 0 without
	// one. It is never negative.
	Gauge float64 `json:"gauge,omitempty"`
	// Time is when the backend made the report, by its clock.
	Time time.Time `json:"time"`
}

// Load is the report as one number in request equivalents: Inflight +
// Gauge. It is what LoadProber.Load returns unless LoadProberConfig.Score
// says otherwise.
func (r LoadReport) Load() float64 { return float64(r.Inflight) + r.Gauge }

// ParseLoadReport decodes a report as LoadReporter serves it. Unknown
// fields are ignored, so reports can grow; a negative inflight or gauge
// is an error.
func ParseLoadReport(data []byte) (LoadReport, error) {
	var r LoadReport
	if err := json.Unmarshal(data, &r); err != nil {
		return LoadReport{}, fmt.Errorf("balance: load report: %w", err)
	}
	if r.Inflight < 0 || r.Gauge < 0 || math.IsNaN(r.Gauge) || math.IsInf(r.Gauge, 0) {
		return LoadReport{}, fmt.Errorf("balance: load report: negative load (inflight %d, gauge %g)", r.Inflight, r.Gauge)
	}
	return r, nil
}

// LoadReporter publishes a backend's load. Mount its Middleware around
// the backend's handler: it counts the requests in flight and serves the
// current LoadReport as JSON at Path. The zero value is ready to use;
// set the fields before the first request and do not change them after.
//
// Requests for Path are answered by the reporter and not counted, so a
// probe never sees itself. Handler serves the same report, to mount on
// another mux (for example on a private port) instead.
type LoadReporter struct {
	// Path is where Middleware serves the report; "" means
	// DefaultLoadPath.
	Path string
	// Gauge, when set, adds the backend's own measure to the report, in
	// request equivalents (a queue length is one already; scale a CPU
	// fraction, e.g. by the number of cores). It is called once per
	// report, concurrently, and must be safe for that. A NaN or negative
	// result reports 0, +Inf reports the largest float64.
	Gauge func() float64
	// Header, when true, sets "X-Load: inflight=N" on every response
	// through Middleware, N counting the request itself, for proxies and
	// logs that read load in band (balance/httpproxy removes it from what
	// clients get). It costs a header per response; off by default.
	Header bool

	inflight atomic.Int64
}

// Middleware returns next wrapped to count requests in flight (a request
// counts from when it reaches the middleware until next returns, panics
// included) and to serve the load report at Path.
func (r *LoadReporter) Middleware(next http.Handler) http.Handler {
	path := r.Path
	if path == "" {
		path = DefaultLoadPath
	}
	report := r.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == path {
			report.ServeHTTP(w, req)
			return
		}
		n := r.inflight.Add(1)
		defer r.inflight.Add(-1)
		if r.Header {
			w.Header().Set(LoadHeader, "inflight="+strconv.FormatInt(n, 10))
		}
		next.ServeHTTP(w, req)
	})
}

// Inflight returns the number of requests in flight through Middleware.
func (r *LoadReporter) Inflight() int64 { return r.inflight.Load() }

// Report returns the current load.
func (r *LoadReporter) Report() LoadReport {
	rep := LoadReport{Inflight: r.inflight.Load(), Time: time.Now()}
	if r.Gauge != nil {
		g := r.Gauge()
		switch {
		case math.IsNaN(g) || g < 0:
			g = 0
		case math.IsInf(g, 1):
			g = math.MaxFloat64
		}
		rep.Gauge = g
	}
	return rep
}

// Handler serves the current LoadReport as JSON to GET and HEAD, with
// Cache-Control: no-store, and 405 to other methods.
func (r *LoadReporter) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.Marshal(r.Report())
		if err != nil { // not reached: the report has no NaN or Inf
			http.Error(w, "load report unavailable", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Length", strconv.Itoa(len(body)+1))
		if req.Method == http.MethodGet {
			_, _ = w.Write(append(body, '\n'))
		}
	})
}

// LoadProberConfig configures NewLoadProber. The zero value is the
// default.
type LoadProberConfig struct {
	// Path is the report's path on each backend; "" means
	// DefaultLoadPath.
	Path string
	// Scheme is "http" (the default) or "https".
	Scheme string
	// Interval is the time between polls of every backend; 0 means 1s.
	Interval time.Duration
	// Timeout bounds one poll; 0 means 500ms.
	Timeout time.Duration
	// MaxAge is how long the last good report of a backend that stopped
	// answering still counts; 0 means 3 × Interval. After it, the
	// backend's load is Unknown.
	MaxAge time.Duration
	// Unknown is the load of a backend with no report younger than
	// MaxAge (never reported, failing, or the prober not running). The
	// default 0 lets a balancer fall back on its own count (LeastLoaded
	// takes the larger of both), and leaves ejecting a dead backend to
	// health checks. math.Inf(1) instead steers all traffic away from a
	// backend that cannot report, as long as another one can.
	Unknown float64
	// Score turns a report into the number Load returns; nil means
	// LoadReport.Load (inflight + gauge). It is called from Run.
	Score func(LoadReport) float64
	// Client makes the polls; nil means a client of the prober's own,
	// whose idle connections Run closes when it returns. A caller's
	// client is used as is.
	Client *http.Client
}

// A LoadStatus is what a LoadProber knows of one backend.
type LoadStatus struct {
	// Report is the last good report, zero if none.
	Report LoadReport
	// At is when the prober received Report (by the prober's clock),
	// zero if never.
	At time.Time
	// Err is the last poll's error, nil if it succeeded.
	Err error
	// Stale is true when Load returns Unknown: no good report within
	// MaxAge, or the prober is not running.
	Stale bool
	// Load is what Load returns for the backend.
	Load float64
}

// LoadProber polls the load report of every backend in its set (see
// LoadReporter) and keeps the latest, for load-aware balancers: pass
// Load as LeastLoadedConfig.Load. Give it the same backends as the
// balancer, with Update (DNS discovery feeds both through Updaters), and
// run Run.
//
// A failed poll (connection error, timeout, non-200 status, malformed
// report) keeps the backend's last good report for MaxAge, so one lost
// poll does not change the picture; after that the backend reads as
// Unknown and LoadStatus says Stale. The prober never removes a backend:
// that is for health checks. LoadProber is safe for concurrent use; Load
// is one map read and one atomic load, cheap enough for every pick.
type LoadProber struct {
	cfg     LoadProberConfig
	client  *http.Client
	ownsCli bool
	running atomic.Bool
	kick    chan struct{} // Update asks Run for a round now

	mu       sync.Mutex // serialises Update and the rounds' snapshot
	backends []Backend
	view     atomic.Pointer[map[string]*probeState]
}

// probeState is one backend's latest load.
type probeState struct {
	load atomic.Uint64 // float64 bits of Load's answer

	mu     sync.Mutex
	status LoadStatus
}

// NewLoadProber validates cfg and returns a prober with no backends. It
// fails with an error wrapping ErrInvalidConfig for negative durations,
// a NaN Unknown, or a Scheme other than http and https.
func NewLoadProber(cfg LoadProberConfig) (*LoadProber, error) {
	if cfg.Interval < 0 || cfg.Timeout < 0 || cfg.MaxAge < 0 {
		return nil, fmt.Errorf("%w: load prober: negative duration", ErrInvalidConfig)
	}
	if math.IsNaN(cfg.Unknown) {
		return nil, fmt.Errorf("%w: load prober: Unknown is NaN", ErrInvalidConfig)
	}
	switch cfg.Scheme {
	case "":
		cfg.Scheme = "http"
	case "http", "https":
	default:
		return nil, fmt.Errorf("%w: load prober: Scheme %q", ErrInvalidConfig, cfg.Scheme)
	}
	if cfg.Path == "" {
		cfg.Path = DefaultLoadPath
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 3 * cfg.Interval
	}
	if cfg.Score == nil {
		cfg.Score = LoadReport.Load
	}
	p := &LoadProber{cfg: cfg, client: cfg.Client, kick: make(chan struct{}, 1)}
	if p.client == nil {
		p.client = &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     max(2*cfg.Interval, 30*time.Second),
		}}
		p.ownsCli = true
	}
	p.view.Store(&map[string]*probeState{})
	return p, nil
}

// Update replaces the set of backends to poll. A backend keeps its last
// report across updates by Addr; a new one reads Unknown until its first
// poll, which a running prober makes at once. It fails with
// ErrInvalidBackend like Balancer.Update, leaving the previous set.
func (p *LoadProber) Update(backends []Backend) error {
	if err := validate(backends); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.view.Load()
	next := make(map[string]*probeState, len(backends))
	added := false
	for _, b := range backends {
		st := old[b.Addr]
		if st == nil {
			st = &probeState{}
			st.status = LoadStatus{Stale: true, Load: p.cfg.Unknown}
			st.load.Store(math.Float64bits(p.cfg.Unknown))
			added = true
		}
		next[b.Addr] = st
	}
	p.backends = append(p.backends[:0:0], backends...)
	p.view.Store(&next)
	if added {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// Load returns the backend's latest load (see LoadProberConfig.Score),
// or Unknown when it has no report younger than MaxAge or is not in the
// set.
func (p *LoadProber) Load(addr string) float64 {
	st := (*p.view.Load())[addr]
	if st == nil {
		return p.cfg.Unknown
	}
	return math.Float64frombits(st.load.Load())
}

// Status returns what the prober knows of the backend, and false when it
// is not in the set.
func (p *LoadProber) Status(addr string) (LoadStatus, bool) {
	st := (*p.view.Load())[addr]
	if st == nil {
		return LoadStatus{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.status, true
}

// Run polls every backend now and then every Interval (and at once after
// an Update that adds backends) until ctx is done. Polls of one round run
// concurrently; a round waits for all of them. When Run returns, every
// backend reads Unknown until Run runs again: a load nobody refreshes is
// no load report. Run returns ctx's error once every poll has returned,
// or ErrAlreadyRunning at once when a Run of p is in progress.
func (p *LoadProber) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer p.running.Store(false)
	defer p.forget()
	if p.ownsCli {
		defer p.client.CloseIdleConnections()
	}
	ticker := time.NewTicker(p.cfg.Interval)
	defer ticker.Stop()
	for {
		p.round(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		case <-p.kick:
		}
	}
}

// probeConcurrency bounds the polls in flight in one round.
const probeConcurrency = 32

// round polls every backend once.
func (p *LoadProber) round(ctx context.Context) {
	select { // this round covers every Update so far
	case <-p.kick:
	default:
	}
	p.mu.Lock()
	backends := p.backends
	view := *p.view.Load()
	p.mu.Unlock()
	sem := make(chan struct{}, probeConcurrency)
	var wg sync.WaitGroup
	for _, b := range backends {
		st := view[b.Addr]
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			rep, err := p.poll(ctx, b.Addr)
			if ctx.Err() != nil {
				return // stopping: not the backend's fault
			}
			p.record(st, rep, err, time.Now())
		})
	}
	wg.Wait()
}

// record folds one poll's outcome into a backend's state.
func (p *LoadProber) record(st *probeState, rep LoadReport, err error, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := &st.status
	s.Err = err
	if err == nil {
		s.Report, s.At, s.Stale, s.Load = rep, now, false, p.cfg.Score(rep)
	} else if s.At.IsZero() || now.Sub(s.At) > p.cfg.MaxAge {
		s.Stale, s.Load = true, p.cfg.Unknown
	}
	st.load.Store(math.Float64bits(s.Load))
}

// forget marks every backend Unknown when Run stops.
func (p *LoadProber) forget() {
	for _, st := range *p.view.Load() {
		st.mu.Lock()
		st.status.Stale, st.status.Load = true, p.cfg.Unknown
		st.load.Store(math.Float64bits(p.cfg.Unknown))
		st.mu.Unlock()
	}
}

// errLoadStatus is a poll answered with a status other than 200.
var errLoadStatus = errors.New("balance: load report: unexpected status")

// poll fetches one backend's report.
func (p *LoadProber) poll(ctx context.Context, addr string) (LoadReport, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.Scheme+"://"+addr+p.cfg.Path, nil)
	if err != nil {
		return LoadReport{}, fmt.Errorf("balance: load report of %s: %w", addr, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return LoadReport{}, fmt.Errorf("balance: load report of %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLoadReport))
	if err != nil {
		return LoadReport{}, fmt.Errorf("balance: load report of %s: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return LoadReport{}, fmt.Errorf("%w %d from %s", errLoadStatus, resp.StatusCode, addr)
	}
	rep, err := ParseLoadReport(body)
	if err != nil {
		return LoadReport{}, fmt.Errorf("%w (from %s)", err, addr)
	}
	return rep, nil
}
