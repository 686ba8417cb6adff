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

// BenchmarkBareReverseProxy is the baseline: httputil.ReverseProxy with an
// atomic round-robin Rewrite over the same backends, default transport
// tuned the same way.
func BenchmarkBareReverseProxy(b *testing.B) {
	bs := benchBackends(b)
	urls := make([]*url.URL, len(bs))
	for i, be := range bs {
		urls[i] = &url.URL{Scheme: "http", Host: be.Addr}
	}
	var next atomic.Uint64
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = DefaultIdleConnsPerBackend
	defer tr.CloseIdleConnections()
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(urls[(next.Add(1)-1)%uint64(len(urls))])
			pr.SetXForwarded()
		},
		Transport: tr,
	}
	benchHandler(b, rp, nil)
}

func benchHandler(b *testing.B, h http.Handler, cookie *http.Cookie) {
	b.ReportAllocs()
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
