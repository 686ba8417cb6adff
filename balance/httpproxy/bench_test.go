package httpproxy

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/scaleout/scaleout/balance"
)

// benchBackends are three loopback backends answering a short body.
func benchBackends(b *testing.B) []balance.Backend {
	var bs []balance.Backend
	for range 3 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("hello from a clone"))
		}))
		b.Cleanup(srv.Close)
		bs = append(bs, balance.Backend{Addr: srv.Listener.Addr().String()})
	}
	return bs
}

// BenchmarkProxy is one GET per op through Proxy.ServeHTTP, round robin
// over three loopback backends.
func BenchmarkProxy(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"plain", Config{}},
		{"sticky-new", Config{StickyCookie: "lb"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			lb := balance.NewRoundRobin()
			if err := lb.Update(benchBackends(b)); err != nil {
				b.Fatal(err)
			}
			bc.cfg.ErrorLog = quiet
			p, err := New(lb, bc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer p.CloseIdleConnections()
			benchHandler(b, p, nil)
		})
	}
	b.Run("sticky-pinned", func(b *testing.B) {
		lb := balance.NewRoundRobin()
		if err := lb.Update(benchBackends(b)); err != nil {
			b.Fatal(err)
		}
		p, err := New(lb, Config{StickyCookie: "lb", ErrorLog: quiet})
		if err != nil {
			b.Fatal(err)
		}
		defer p.CloseIdleConnections()
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		benchHandler(b, p, rec.Result().Cookies()[0])
	})
}

// BenchmarkHTTPUtil is the reference: httputil.ReverseProxy with an
// atomic round-robin Rewrite over the same backends and the very Transport
// a Proxy builds, as it comes ("plain", a 32 KiB copy buffer allocated per
// request) and with the sync.Pool BufferPool any user adds ("pool"), the
// stronger of the two and the one BenchmarkProxy/plain is held against.
func BenchmarkHTTPUtil(b *testing.B) {
	for _, pooled := range []bool{false, true} {
		name := "plain"
		if pooled {
			name = "pool"
		}
		b.Run(name, func(b *testing.B) {
			benchHandler(b, newHTTPUtil(b, benchBackends(b), pooled), nil)
		})
	}
}

// newHTTPUtil returns the reference proxy over bs (see BenchmarkHTTPUtil).
func newHTTPUtil(b testing.TB, bs []balance.Backend, pooled bool) *httputil.ReverseProxy {
	urls := make([]*url.URL, len(bs))
	for i, be := range bs {
		urls[i] = &url.URL{Scheme: "http", Host: be.Addr}
	}
	var cfg Config
	if err := cfg.defaults(); err != nil {
		b.Fatal(err)
	}
	tr := newTransport(&cfg)
	b.Cleanup(tr.CloseIdleConnections)
	var next atomic.Uint64
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := urls[(next.Add(1)-1)%uint64(len(urls))]
			pr.Out.URL.Scheme = t.Scheme
			pr.Out.URL.Host = t.Host
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: tr,
	}
	if pooled {
		rp.BufferPool = bufferPool{}
	}
	return rp
}

// benchHandler serves GET / through h in parallel, b.N times in all, and
// reports cpu-ns/op besides the wall time: the process's CPU time (the
// proxy's and the in-process backends') per request.
func benchHandler(b *testing.B, h http.Handler, cookie *http.Cookie) {
	b.ReportAllocs()
	cpu0 := cpuTime()
	defer func() {
		if cpu := cpuTime() - cpu0; cpu > 0 {
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		}
	}()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}
