package balance_test

// Real-time tests in this file: TestLoadReporterCountsInflight,
// TestLoadReporterPanicDecrements, TestLoadProberSharedView,
// TestLoadProberGauge, TestLoadProberBackendDies, TestLoadProberBadReports
// and TestLoadProberNoLeak (reports served and probed over real HTTP on
// loopback; they wait for what they expect with generous bounds and assert
// no duration). The prober's timing is tested on the fake clock
// (TestLoadProberTiming).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/scaleout/scaleout/balance"
	"github.com/scaleout/scaleout/internal/testenv"
)

// lrClone is a real backend on loopback with a LoadReporter mounted. GET
// /hold blocks until letGo, which is how the tests create load.
type lrClone struct {
	srv     *httptest.Server
	rep     *balance.LoadReporter
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func lrStart(t testing.TB, rep *balance.LoadReporter) *lrClone {
	t.Helper()
	if rep == nil {
		rep = &balance.LoadReporter{}
	}
	c := &lrClone{rep: rep, entered: make(chan struct{}, 100), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		c.entered <- struct{}{}
		select {
		case <-c.release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	c.srv = httptest.NewServer(rep.Middleware(mux))
	t.Cleanup(func() {
		c.letGo()
		c.srv.Close()
	})
	return c
}

func (c *lrClone) addr() string { return c.srv.Listener.Addr().String() }

// hold starts n requests that stay in flight until letGo.
func (c *lrClone) hold(t testing.TB, n int) {
	t.Helper()
	for range n {
		c.wg.Go(func() {
			resp, err := c.srv.Client().Get(c.srv.URL + "/hold")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	for range n {
		select {
		case <-c.entered:
		case <-time.After(5 * time.Second):
			t.Fatal("held request did not arrive")
		}
	}
}

func (c *lrClone) letGo() {
	c.once.Do(func() { close(c.release) })
	c.wg.Wait()
}

func lrGet(t testing.TB, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func TestLoadReporterCountsInflight(t *testing.T) {
	c := lrStart(t, &balance.LoadReporter{Header: true})

	resp, body := lrGet(t, c.srv.URL+balance.DefaultLoadPath)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	require.Empty(t, resp.Header.Get(balance.LoadHeader), "the report is not counted")
	rep, err := balance.ParseLoadReport(body)
	require.NoError(t, err)
	require.Zero(t, rep.Inflight)
	require.WithinDuration(t, time.Now(), rep.Time, time.Minute)

	c.hold(t, 3)
	require.EqualValues(t, 3, c.rep.Inflight())
	_, body = lrGet(t, c.srv.URL+balance.DefaultLoadPath)
	rep, err = balance.ParseLoadReport(body)
	require.NoError(t, err)
	require.EqualValues(t, 3, rep.Inflight, "three held; the probe does not count itself")

	resp, _ = lrGet(t, c.srv.URL+"/")
	require.Equal(t, "inflight=4", resp.Header.Get(balance.LoadHeader))

	c.letGo()
	require.Eventually(t, func() bool { return c.rep.Inflight() == 0 }, 5*time.Second, time.Millisecond)
}

func TestLoadReporterHandler(t *testing.T) {
	for _, tc := range []struct {
		gauge float64
		want  float64
	}{
		{0.42, 0.42}, {7, 7}, {math.NaN(), 0}, {-1, 0}, {math.Inf(1), math.MaxFloat64},
	} {
		rep := &balance.LoadReporter{Gauge: func() float64 { return tc.gauge }}
		rec := httptest.NewRecorder()
		rep.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
		require.Equal(t, http.StatusOK, rec.Code)
		got, err := balance.ParseLoadReport(rec.Body.Bytes())
		require.NoError(t, err, "gauge %v", tc.gauge)
		require.Equal(t, tc.want, got.Gauge, "gauge %v", tc.gauge)
	}

	rep := &balance.LoadReporter{}
	rec := httptest.NewRecorder()
	rep.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	rec = httptest.NewRecorder()
	rep.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Zero(t, rec.Body.Len())

	// A custom Path moves the report; the old path reaches the app.
	custom := &balance.LoadReporter{Path: "/_load"}
	h := custom.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/_load", nil))
	require.Contains(t, rec.Body.String(), `"inflight":0`)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, balance.DefaultLoadPath, nil))
	require.Equal(t, "app", rec.Body.String())
}

func TestLoadReporterPanicDecrements(t *testing.T) {
	rep := &balance.LoadReporter{}
	h := rep.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	func() {
		defer func() { require.Equal(t, http.ErrAbortHandler, recover()) }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	require.Zero(t, rep.Inflight())
}

func lrRun(t *testing.T, p *balance.LoadProber) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Error("Run did not return")
		}
	})
}

func lrBackends(cs ...*lrClone) []balance.Backend {
	bs := make([]balance.Backend, len(cs))
	for i, c := range cs {
		bs[i] = balance.Backend{Addr: c.addr()}
	}
	return bs
}

// TestLoadProberSharedView is the point of load reports: two balancer
// instances, each with its own prober, see the same load on the same
// backends, including the requests the other one sent, and a
// LeastLoaded fed by a prober sends new work to the idle backend.
func TestLoadProberSharedView(t *testing.T) {
	a, b, c := lrStart(t, nil), lrStart(t, nil), lrStart(t, nil)
	set := lrBackends(a, b, c)
	var probers []*balance.LoadProber
	for range 2 {
		p, err := balance.NewLoadProber(balance.LoadProberConfig{Interval: 10 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, p.Update(set))
		lrRun(t, p)
		probers = append(probers, p)
	}
	a.hold(t, 3)
	b.hold(t, 1)
	want := []float64{3, 1, 0}
	for i, p := range probers {
		require.Eventually(t, func() bool {
			for j, bk := range set {
				if p.Load(bk.Addr) != want[j] {
					return false
				}
			}
			return true
		}, 5*time.Second, 5*time.Millisecond, "prober %d", i)
		st, ok := p.Status(a.addr())
		require.True(t, ok)
		require.False(t, st.Stale)
		require.NoError(t, st.Err)
		require.EqualValues(t, 3, st.Report.Inflight)
	}

	lb := balance.NewLeastLoaded(balance.LeastLoadedConfig{Load: probers[1].Load})
	require.NoError(t, lb.Update(set))
	for range 20 {
		ch, err := lb.Pick(t.Context(), "")
		require.NoError(t, err)
		require.Equal(t, c.addr(), ch.Backend().Addr, "the only idle backend")
		ch.Done(nil)
	}

	a.letGo()
	b.letGo()
	for _, p := range probers {
		require.Eventually(t, func() bool { return p.Load(a.addr()) == 0 && p.Load(b.addr()) == 0 },
			5*time.Second, 5*time.Millisecond)
	}
}

func TestLoadProberGauge(t *testing.T) {
	var gauge atomic.Int64 // milli-units
	c := lrStart(t, &balance.LoadReporter{Gauge: func() float64 { return float64(gauge.Load()) / 1000 }})
	gauge.Store(2500)
	p, err := balance.NewLoadProber(balance.LoadProberConfig{Interval: 10 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, p.Update(lrBackends(c)))
	lrRun(t, p)
	c.hold(t, 1)
	require.Eventually(t, func() bool { return p.Load(c.addr()) == 3.5 }, 5*time.Second, 5*time.Millisecond)

	// A custom Score: the gauge alone.
	p2, err := balance.NewLoadProber(balance.LoadProberConfig{Interval: 10 * time.Millisecond,
		Score: func(r balance.LoadReport) float64 { return r.Gauge }})
	require.NoError(t, err)
	require.NoError(t, p2.Update(lrBackends(c)))
	lrRun(t, p2)
	require.Eventually(t, func() bool { return p2.Load(c.addr()) == 2.5 }, 5*time.Second, 5*time.Millisecond)
}

// TestLoadProberBackendDies: a backend that stops answering reads Unknown
// once its last report is older than MaxAge; with Unknown = +Inf a
// LeastLoaded stops sending it work.
func TestLoadProberBackendDies(t *testing.T) {
	for _, unknown := range []float64{0, math.Inf(1)} {
		t.Run(fmt.Sprint("unknown=", unknown), func(t *testing.T) {
			live, dying := lrStart(t, nil), lrStart(t, nil)
			live.hold(t, 2)
			set := lrBackends(live, dying)
			p, err := balance.NewLoadProber(balance.LoadProberConfig{
				Interval: 10 * time.Millisecond, Timeout: 200 * time.Millisecond,
				MaxAge: 50 * time.Millisecond, Unknown: unknown,
			})
			require.NoError(t, err)
			require.NoError(t, p.Update(set))
			lrRun(t, p)
			require.Eventually(t, func() bool {
				st, _ := p.Status(dying.addr())
				return !st.At.IsZero() && p.Load(live.addr()) == 2
			}, 5*time.Second, 5*time.Millisecond)
			require.Zero(t, p.Load(dying.addr()))

			dying.letGo()
			dying.srv.Close()
			require.Eventually(t, func() bool {
				st, _ := p.Status(dying.addr())
				return st.Stale
			}, 5*time.Second, 5*time.Millisecond)
			st, _ := p.Status(dying.addr())
			require.Error(t, st.Err)
			require.Equal(t, unknown, st.Load)
			require.Equal(t, unknown, p.Load(dying.addr()))
			require.EqualValues(t, 0, st.Report.Inflight, "the last good report is kept for inspection")

			if math.IsInf(unknown, 1) {
				lb := balance.NewLeastLoaded(balance.LeastLoadedConfig{Load: p.Load})
				require.NoError(t, lb.Update(set))
				ch, err := lb.Pick(t.Context(), "")
				require.NoError(t, err)
				require.Equal(t, live.addr(), ch.Backend().Addr, "busy beats unknown when Unknown is +Inf")
				ch.Done(nil)
			}
		})
	}
}

// lrScript is a RoundTripper that answers load polls from a script, for
// the fake clock of synctest (no real I/O).
type lrScript struct {
	mu    sync.Mutex
	body  map[string]string // host → body; absent is a connection error
	calls map[string][]time.Duration
	start time.Time
}

func (s *lrScript) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[r.URL.Host] = append(s.calls[r.URL.Host], time.Since(s.start))
	body, ok := s.body[r.URL.Host]
	if !ok {
		return nil, errors.New("connection refused")
	}
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(body)), Header: http.Header{}, Request: r}, nil
}

func (s *lrScript) set(host, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if body == "" {
		delete(s.body, host)
	} else {
		s.body[host] = body
	}
}

func (s *lrScript) callTimes(host string) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.calls[host]...)
}

// TestLoadProberTiming checks on a fake clock: the poll interval, the
// last good report kept for MaxAge through failures and no longer, an
// added backend polled at once, and every load Unknown after Run.
func TestLoadProberTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		script := &lrScript{body: map[string]string{"a:1": `{"inflight":5}`}, calls: map[string][]time.Duration{}, start: time.Now()}
		p, err := balance.NewLoadProber(balance.LoadProberConfig{
			Interval: time.Second, MaxAge: 3 * time.Second, Unknown: -1,
			Client: &http.Client{Transport: script},
		})
		require.NoError(t, err)
		require.NoError(t, p.Update([]balance.Backend{{Addr: "a:1"}}))
		require.Equal(t, -1.0, p.Load("a:1"), "not polled yet")

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		synctest.Wait()
		require.Equal(t, 5.0, p.Load("a:1"))

		script.set("a:1", "") // a:1 stops answering after its poll at 0s
		for _, at := range []int{1, 2, 3} {
			time.Sleep(time.Second)
			synctest.Wait()
			require.Equal(t, 5.0, p.Load("a:1"), "at %ds the report is %ds old: still counts", at, at)
			st, _ := p.Status("a:1")
			require.Error(t, st.Err)
			require.False(t, st.Stale)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, -1.0, p.Load("a:1"), "at 4s the report is older than MaxAge")
		st, _ := p.Status("a:1")
		require.True(t, st.Stale)

		script.set("a:1", `{"inflight":1,"gauge":0.5}`)
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, 1.5, p.Load("a:1"))
		require.Equal(t, []time.Duration{0, 1e9, 2e9, 3e9, 4e9, 5e9}, script.callTimes("a:1"))

		// An added backend is polled at once, not at the next tick.
		script.set("b:1", `{"inflight":2}`)
		time.Sleep(300 * time.Millisecond)
		require.NoError(t, p.Update([]balance.Backend{{Addr: "a:1"}, {Addr: "b:1"}}))
		synctest.Wait()
		require.Equal(t, []time.Duration{5300 * time.Millisecond}, script.callTimes("b:1"))
		require.Equal(t, 2.0, p.Load("b:1"))
		require.Equal(t, 1.5, p.Load("a:1"), "kept across Update")

		// A removed backend is forgotten.
		require.NoError(t, p.Update([]balance.Backend{{Addr: "b:1"}}))
		_, ok := p.Status("a:1")
		require.False(t, ok)
		require.Equal(t, -1.0, p.Load("a:1"))

		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		require.Equal(t, -1.0, p.Load("b:1"), "nobody refreshes it now")
		st, _ = p.Status("b:1")
		require.True(t, st.Stale)
	})
}

func TestLoadProberBadReports(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		wantErr string
	}{
		{"server error", 500, `{"inflight":1}`, "status 500"},
		{"not found", 404, "no such page", "status 404"},
		{"not json", 200, "<html>", "load report"},
		{"negative", 200, `{"inflight":-1}`, "negative"},
		{"too long", 200, `{"inflight":1,"pad":"` + strings.Repeat("x", 8<<10) + `"}`, "load report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			addr := srv.Listener.Addr().String()
			p, err := balance.NewLoadProber(balance.LoadProberConfig{Interval: 10 * time.Millisecond, Unknown: 42})
			require.NoError(t, err)
			require.NoError(t, p.Update([]balance.Backend{{Addr: addr}}))
			lrRun(t, p)
			require.Eventually(t, func() bool {
				st, _ := p.Status(addr)
				return st.Err != nil
			}, 5*time.Second, 5*time.Millisecond)
			st, _ := p.Status(addr)
			require.ErrorContains(t, st.Err, tc.wantErr)
			require.True(t, st.Stale)
			require.Equal(t, 42.0, p.Load(addr))
		})
	}
}

func TestLoadProberConfig(t *testing.T) {
	for _, cfg := range []balance.LoadProberConfig{
		{Interval: -1}, {Timeout: -1}, {MaxAge: -1}, {Unknown: math.NaN()}, {Scheme: "ftp"},
	} {
		_, err := balance.NewLoadProber(cfg)
		require.ErrorIs(t, err, balance.ErrInvalidConfig, "%+v", cfg)
	}
	p, err := balance.NewLoadProber(balance.LoadProberConfig{})
	require.NoError(t, err)
	require.ErrorIs(t, p.Update([]balance.Backend{{Addr: "a"}, {Addr: "a"}}), balance.ErrInvalidBackend)
	require.ErrorIs(t, p.Update([]balance.Backend{{Addr: ""}}), balance.ErrInvalidBackend)
	require.Zero(t, p.Load("nowhere"))

	polled := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case polled <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()
	require.NoError(t, p.Update([]balance.Backend{{Addr: srv.Listener.Addr().String()}}))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-polled // Run is running
	require.ErrorIs(t, p.Run(ctx), balance.ErrAlreadyRunning, "a second Run is refused at once")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

// TestLoadProberNoLeak: after Run returns no goroutine of the prober is
// left, including its keep-alive connections.
func TestLoadProberNoLeak(t *testing.T) {
	defer testenv.CheckGoroutines(t)()
	func() {
		cs := []*lrClone{lrStart(t, nil), lrStart(t, nil)}
		defer func() {
			for _, c := range cs {
				c.srv.Close()
			}
		}()
		p, err := balance.NewLoadProber(balance.LoadProberConfig{Interval: 5 * time.Millisecond})
		require.NoError(t, err)
		require.NoError(t, p.Update(lrBackends(cs...)))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		require.Eventually(t, func() bool {
			st, _ := p.Status(cs[1].addr())
			return !st.At.IsZero()
		}, 5*time.Second, time.Millisecond)
		time.Sleep(20 * time.Millisecond)
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	}()
}

func FuzzParseLoadReport(f *testing.F) {
	f.Add([]byte(`{"inflight":3,"gauge":0.42,"time":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"inflight":0}`))
	f.Add([]byte(`{"inflight":-1}`))
	f.Add([]byte(`{"gauge":1e308,"extra":[1,2]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := balance.ParseLoadReport(data)
		if err != nil {
			return
		}
		if r.Inflight < 0 || r.Gauge < 0 || math.IsNaN(r.Load()) {
			t.Fatalf("accepted a bad report %+v from %q", r, data)
		}
		// What it accepts survives a round trip.
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := balance.ParseLoadReport(enc)
		if err != nil || r2.Inflight != r.Inflight || r2.Gauge != r.Gauge || !r2.Time.Equal(r.Time) {
			t.Fatalf("round trip of %+v: %+v, %v", r, r2, err)
		}
	})
}

func BenchmarkLoadProberLoad(b *testing.B) {
	p, err := balance.NewLoadProber(balance.LoadProberConfig{})
	require.NoError(b, err)
	set := make([]balance.Backend, 10)
	for i := range set {
		set[i].Addr = fmt.Sprintf("10.0.0.%d:8080", i)
	}
	require.NoError(b, p.Update(set))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			_ = p.Load(set[i%len(set)].Addr)
			i++
		}
	})
}

func BenchmarkLoadReporterMiddleware(b *testing.B) {
	rep := &balance.LoadReporter{}
	h := rep.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// ExampleLoadReporter mounts a load report on a backend.
func ExampleLoadReporter() {
	queue := make(chan struct{}, 10)
	rep := &balance.LoadReporter{
		// The backend's own measure, in request equivalents.
		Gauge: func() float64 { return float64(len(queue)) },
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	backend := rep.Middleware(app) // serves the report at /debug/load

	queue <- struct{}{}
	rec := httptest.NewRecorder()
	backend.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, balance.DefaultLoadPath, nil))
	report, _ := balance.ParseLoadReport(rec.Body.Bytes())
	fmt.Printf("inflight=%d gauge=%g load=%g\n", report.Inflight, report.Gauge, report.Load())
	// Output: inflight=0 gauge=1 load=1
}

// ExampleLoadProber feeds a LeastLoaded balancer with the load the
// backends report, so several balancers share one view of it.
func ExampleLoadProber() {
	// Two clones; the first is busy with two requests.
	busy := &balance.LoadReporter{Gauge: func() float64 { return 2 }}
	idle := &balance.LoadReporter{}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	s1 := httptest.NewServer(busy.Middleware(hello))
	defer s1.Close()
	s2 := httptest.NewServer(idle.Middleware(hello))
	defer s2.Close()
	set := []balance.Backend{{Addr: s1.Listener.Addr().String()}, {Addr: s2.Listener.Addr().String()}}

	prober, _ := balance.NewLoadProber(balance.LoadProberConfig{Interval: 100 * time.Millisecond})
	_ = prober.Update(set)
	lb := balance.NewLeastLoaded(balance.LeastLoadedConfig{Load: prober.Load})
	_ = lb.Update(set)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = prober.Run(ctx) }()
	for {
		if st, _ := prober.Status(set[0].Addr); !st.Stale {
			break
		}
		time.Sleep(time.Millisecond)
	}

	picks := map[string]int{}
	for range 10 {
		c, _ := lb.Pick(ctx, "")
		picks[map[bool]string{true: "busy", false: "idle"}[c.Backend().Addr == set[0].Addr]]++
		c.Done(nil)
	}
	fmt.Println("load of the busy clone:", prober.Load(set[0].Addr))
	fmt.Println("picks:", picks)
	cancel()
	<-done
	// Output:
	// load of the busy clone: 2
	// picks: map[idle:10]
}
